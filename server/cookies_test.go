package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/servertest"
)

// jar is the shared test cookie jar, which sends Secure and __Host- cookies
// over the plain-http test server.
type jar = servertest.Jar

// browse sends a request with the jar's cookies and keeps what is set.
func (e *env) browse(j *jar, method, path, body string, hdr ...string) response {
	e.t.Helper()
	r := e.call(method, path, "", body, append(hdr, "Cookie", j.Header())...)
	j.Update(r.cookies)
	return r
}

func (e *env) cookieLogin() (*jar, response) {
	e.t.Helper()
	j := servertest.NewJar(nil)
	r := e.browse(j, "POST", "/login", `{"username":"test","password":"test","cookies":true}`).want(e.t, 200, "")
	return j, r
}

func TestCookieLoginSetsSecureCookies(t *testing.T) {
	e := newEnv(t)
	_, r := e.cookieLogin()
	if r.str("access_token") != "" || r.str("refresh_token") != "" {
		t.Fatalf("cookie login put tokens in the body: %s", r.raw)
	}
	if r.str("session_id") == "" || r.body["user"] == nil {
		t.Fatalf("cookie login body = %s", r.raw)
	}
	got := map[string]*http.Cookie{}
	for _, c := range r.cookies {
		got[c.Name] = c
	}
	for name, httpOnly := range map[string]bool{"__Host-lk_access": true, "__Host-lk_refresh": true, "__Host-lk_csrf": false} {
		c := got[name]
		if c == nil {
			t.Fatalf("no %s cookie among %v", name, r.header["Set-Cookie"])
		}
		if !c.Secure || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode || c.HttpOnly != httpOnly {
			t.Errorf("%s: Secure=%v Path=%q Domain=%q SameSite=%v HttpOnly=%v", name, c.Secure, c.Path, c.Domain, c.SameSite, c.HttpOnly)
		}
		if c.Value == "" || c.MaxAge <= 0 {
			t.Errorf("%s: value %q, MaxAge %d", name, c.Value, c.MaxAge)
		}
	}
	if a, rf := got["__Host-lk_access"].MaxAge, got["__Host-lk_refresh"].MaxAge; a != 900 || rf != 30*24*3600 {
		t.Errorf("lifetimes: access %d s, refresh %d s; want the tokens' 900 and 2592000", a, rf)
	}
}

func TestInsecureCookieNames(t *testing.T) {
	e := newEnv(t, func(s *setup) { s.insecureCookies = true })
	_, r := e.cookieLogin()
	for _, c := range r.cookies {
		if strings.HasPrefix(c.Name, "__Host-") || c.Secure {
			t.Fatalf("--cookie-secure=false still sets %s (Secure=%v)", c.Name, c.Secure)
		}
	}
	if len(r.cookies) != 3 {
		t.Fatalf("%d cookies, want 3", len(r.cookies))
	}
}

func TestCookieCSRF(t *testing.T) {
	e := newEnv(t)
	j, _ := e.cookieLogin()
	e.browse(j, "GET", "/protected", "").want(t, 200, "") // safe methods need no CSRF header
	r := e.browse(j, "POST", "/logout", "").want(t, 403, "csrf_failed")
	if !strings.Contains(r.str("message"), "X-CSRF-Token") {
		t.Fatalf("the message does not say what is missing: %q", r.str("message"))
	}
	r = e.browse(j, "POST", "/logout", "", "X-CSRF-Token", "wrong").want(t, 403, "csrf_failed")
	if !strings.Contains(r.str("message"), "does not match") {
		t.Fatalf("mismatch message = %q", r.str("message"))
	}
	// Another session's CSRF token, echoed consistently in cookie and header, is refused.
	other, _ := e.cookieLogin()
	forged := j.Clone()
	forged.Set("__Host-lk_csrf", other.Get("__Host-lk_csrf"))
	e.browse(forged, "POST", "/logout", "", "X-CSRF-Token", other.Get("__Host-lk_csrf")).want(t, 403, "csrf_failed")
	// A cross-site request is refused even with the right token.
	e.browse(j, "POST", "/logout", "", "X-CSRF-Token", j.Get("__Host-lk_csrf"), "Sec-Fetch-Site", "cross-site").want(t, 403, "csrf_failed")
	// The right token logs out and clears the cookies.
	r = e.browse(j, "POST", "/logout", "", "X-CSRF-Token", j.Get("__Host-lk_csrf")).want(t, 204, "")
	if j.Get("__Host-lk_access") != "" || j.Get("__Host-lk_refresh") != "" {
		t.Fatalf("logout did not clear the cookies: %v", r.header["Set-Cookie"])
	}
	// Bearer requests are not subject to CSRF.
	p := e.login("test", "test")
	e.call("POST", "/logout", p.access, "", "Sec-Fetch-Site", "same-origin").want(t, 204, "")
}

func TestCookieRefreshEndpoint(t *testing.T) {
	e := newEnv(t)
	j, _ := e.cookieLogin()
	before := j.Get("__Host-lk_refresh")
	e.browse(j, "POST", "/refresh", "").want(t, 403, "csrf_failed")
	r := e.browse(j, "POST", "/refresh", "", "X-CSRF-Token", j.Get("__Host-lk_csrf")).want(t, 200, "")
	if r.str("refresh_token") != "" || r.str("access_token") != "" {
		t.Fatalf("cookie refresh put tokens in the body: %s", r.raw)
	}
	if after := j.Get("__Host-lk_refresh"); after == "" || after == before {
		t.Fatal("the refresh cookie was not rotated")
	}
	e.browse(j, "GET", "/protected", "").want(t, 200, "")
}

// An expired access cookie with a valid refresh cookie: the request succeeds
// and the response carries rotated cookies.
func TestImplicitRefresh(t *testing.T) {
	e := newEnv(t)
	j, _ := e.cookieLogin()
	oldRefresh, oldAccess := j.Get("__Host-lk_refresh"), j.Get("__Host-lk_access")
	e.clock.Add(16 * time.Minute)
	r := e.browse(j, "GET", "/me", "").want(t, 200, "")
	if r.str("username") != "test" {
		t.Fatalf("me = %s", r.raw)
	}
	if j.Get("__Host-lk_refresh") == oldRefresh || j.Get("__Host-lk_access") == oldAccess {
		t.Fatal("the implicit refresh did not rotate the cookies")
	}
	// The browser drops an expired access cookie: the refresh cookie alone suffices.
	e.clock.Add(16 * time.Minute)
	j.Delete("__Host-lk_access")
	e.browse(j, "GET", "/protected", "").want(t, 200, "")
	if j.Get("__Host-lk_access") == "" {
		t.Fatal("no new access cookie")
	}
	// An unsafe request without the CSRF header is not refreshed implicitly.
	e.clock.Add(16 * time.Minute)
	e.browse(j, "POST", "/logout", "").want(t, 403, "csrf_failed")
}

// A page firing several requests at once after expiry: all succeed, all get the
// same rotated refresh cookie, the session advances once.
func TestImplicitRefreshConcurrent(t *testing.T) {
	e := newEnv(t)
	j, _ := e.cookieLogin()
	e.clock.Add(16 * time.Minute)
	const n = 8
	jars := make([]*jar, n)
	var wg sync.WaitGroup
	for i := range n {
		jars[i] = j.Clone()
		wg.Go(func() { e.browse(jars[i], "GET", "/protected", "").want(t, 200, "") })
	}
	wg.Wait()
	for i := range n {
		if jars[i].Get("__Host-lk_refresh") != jars[0].Get("__Host-lk_refresh") {
			t.Fatal("concurrent implicit refreshes forked the session")
		}
	}
	e.browse(jars[0], "GET", "/protected", "").want(t, 200, "")
}

// Implicit refresh never outlives the absolute session lifetime.
func TestImplicitRefreshStopsAtSessionEnd(t *testing.T) {
	e := newEnv(t)
	j, _ := e.cookieLogin()
	e.clock.Add(31 * 24 * time.Hour)
	r := e.browse(j, "GET", "/protected", "").want(t, 401, "session_expired")
	if j.Get("__Host-lk_refresh") != "" {
		t.Fatalf("dead refresh cookie kept: %v", r.header["Set-Cookie"])
	}
}

// Cookie mode with binding: the access cookie outlives its token so the next
// refresh can present it, and a page's concurrent requests near expiry all
// succeed (the shared access cookie is not revoked by the first refresh).
func TestCookieModeWithBinding(t *testing.T) {
	e := newEnv(t, func(s *setup) { s.cfg = func(c *latchkey.Config) { c.BindAccess = true } })
	j, r := e.cookieLogin()
	for _, c := range r.cookies {
		if c.Name == "__Host-lk_access" && c.MaxAge != 30*24*3600 {
			t.Fatalf("with binding the access cookie lives %d s, want the refresh cookie's 2592000", c.MaxAge)
		}
	}
	e.clock.Add(15*time.Minute - 15*time.Second) // within the early-refresh window
	const n = 8
	jars := make([]*jar, n)
	var wg sync.WaitGroup
	for i := range n {
		jars[i] = j.Clone()
		wg.Go(func() { e.browse(jars[i], "GET", "/protected", "").want(t, 200, "") })
	}
	wg.Wait()
}

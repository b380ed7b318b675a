package server_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/servertest"
)

func form(v url.Values) (string, []string) {
	return v.Encode(), []string{"Content-Type", "application/x-www-form-urlencoded"}
}

func TestAccountPage(t *testing.T) {
	e := newEnv(t)
	j := servertest.NewJar(nil)
	r := e.browse(j, "GET", "/account", "")
	if r.status != 200 || !strings.Contains(string(r.raw), `id="sign-in"`) {
		t.Fatalf("account page without a session = %d %.200s", r.status, r.raw)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP = %q", csp)
	}
	body, hdr := form(url.Values{"username": {"test"}, "password": {"wrong"}})
	r = e.browse(j, "POST", "/account/login", body, hdr...)
	if r.status != 401 || !strings.Contains(string(r.raw), `role="alert"`) {
		t.Fatalf("wrong password = %d %.300s", r.status, r.raw)
	}
	r = e.browse(j, "POST", "/account/login", body, append(hdr, "Sec-Fetch-Site", "cross-site")...)
	if r.status != 403 {
		t.Fatalf("cross-site sign-in = %d", r.status)
	}
	body, hdr = form(url.Values{"username": {"test"}, "password": {"test"}})
	r = e.browse(j, "POST", "/account/login", body, hdr...)
	if r.status != 303 || r.header.Get("Location") != "/account" || j.Get("__Host-lk_refresh") == "" {
		t.Fatalf("sign-in = %d %v", r.status, r.header)
	}
	if r = e.browse(j, "GET", "/account", ""); !strings.Contains(string(r.raw), "Signed in as") {
		t.Fatalf("account page after sign-in: %.300s", r.raw)
	}
	other := e.login("test", "test")
	// Revoking without the CSRF field is refused; with it, it works.
	e.browse(j, "POST", "/account/sessions/"+other.session+"/revoke", "x=1", hdr...).want(t, 403, "csrf_failed")
	body, hdr = form(url.Values{"csrf_token": {j.Get("__Host-lk_csrf")}})
	r = e.browse(j, "POST", "/account/sessions/"+other.session+"/revoke", body, hdr...)
	if r.status != 303 {
		t.Fatalf("revoke = %d %.300s", r.status, r.raw)
	}
	if r = e.browse(j, "GET", r.header.Get("Location"), ""); !strings.Contains(string(r.raw), "was signed out") || strings.Contains(string(r.raw), other.session) {
		t.Fatalf("account page after revoking: %.300s", r.raw)
	}
	e.call("GET", "/protected", other.access, "").want(t, 401, "token_revoked")
	// A forged sign-out without cookies clears nothing.
	r = e.call("POST", "/account/logout", "", "scope=global", hdr...)
	for _, c := range r.cookies {
		if c.MaxAge < 0 {
			t.Fatalf("an unauthenticated sign-out cleared cookie %s", c.Name)
		}
	}
	r = e.browse(j, "POST", "/account/logout", body, hdr...)
	if r.status != 303 || j.Get("__Host-lk_access") != "" {
		t.Fatalf("sign-out = %d, cookies %v", r.status, j)
	}
}

// Signing out lands on the sign-in form with a line saying what happened.
func TestAccountSignOutConfirmed(t *testing.T) {
	e := newEnv(t)
	for scope, want := range map[string]string{"": "signed out on this device", "global": "signed out everywhere"} {
		j := servertest.NewJar(nil)
		body, hdr := form(url.Values{"username": {"test"}, "password": {"test"}})
		e.browse(j, "POST", "/account/login", body, append(hdr, "Origin", e.url)...).want(t, 303, "")
		body, hdr = form(url.Values{"csrf_token": {j.Get("lk_csrf")}, "scope": {scope}})
		if j.Get("lk_csrf") == "" {
			body, hdr = form(url.Values{"csrf_token": {j.Get("__Host-lk_csrf")}, "scope": {scope}})
		}
		r := e.browse(j, "POST", "/account/logout", body, append(hdr, "Origin", e.url)...).want(t, 303, "")
		loc := r.header.Get("Location")
		page := string(e.browse(j, "GET", loc, "").raw)
		if !strings.Contains(page, `id="sign-in"`) || !strings.Contains(page, want) {
			t.Fatalf("scope %q: after %s the page says:\n%.1500s", scope, loc, page)
		}
	}
}

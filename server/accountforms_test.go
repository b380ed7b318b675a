package server_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/servertest"
)

// csrfOf is the jar's CSRF cookie.
func csrfOf(j *servertest.Jar) string { return j.Get("__Host-lk_csrf") }

// pageSignIn signs j in through the account page's form.
func (e *env) pageSignIn(t *testing.T, j *servertest.Jar, user, pw string) {
	t.Helper()
	body, hdr := form(url.Values{"username": {user}, "password": {pw}})
	e.browse(j, "POST", "/account/login", body, append(hdr, "Origin", e.url)...).want(t, 303, "")
}

// post sends a same-origin form post from j.
func (e *env) post(j *servertest.Jar, path string, v url.Values) response {
	body, hdr := form(v)
	return e.browse(j, "POST", path, body, append(hdr, "Origin", e.url)...)
}

func page(r response) string { return string(r.raw) }

func TestAccountCreate(t *testing.T) {
	e := newEnv(t)
	j := servertest.NewJar(nil)
	if p := page(e.browse(j, "GET", "/account", "")); !strings.Contains(p, `id="create-account"`) {
		t.Fatalf("registration is open but the page has no create-account form:\n%.1500s", p)
	}
	// A weak password: shown by the password field, the name kept.
	r := e.post(j, "/account/register", url.Values{"username": {"newbie"}, "password": {"short"}})
	if p := page(r); r.status != 400 || !strings.Contains(p, `id="signup-password-error"`) || !strings.Contains(p, `value="newbie"`) ||
		!strings.Contains(p, `aria-invalid="true"`) {
		t.Fatalf("weak password = %d:\n%.3000s", r.status, p)
	}
	// A taken name, with markup in it: shown by the username field, escaped.
	evil := `<img src=x onerror=alert(1)>"`
	e.call("POST", "/register", "", `{"username":"<img src=x onerror=alert(1)>\"","password":"long enough"}`).want(t, 201, "")
	r = e.post(j, "/account/register", url.Values{"username": {evil}, "password": {"long enough"}})
	p := page(r)
	if r.status != 409 || !strings.Contains(p, `id="new-username-error"`) || strings.Contains(p, "<img") ||
		!strings.Contains(p, `value="&lt;img src=x onerror=alert(1)&gt;&#34;"`) {
		t.Fatalf("taken username = %d:\n%.3000s", r.status, p)
	}
	// A good one: created and signed in.
	r = e.post(j, "/account/register", url.Values{"username": {"Newbie"}, "password": {"long enough"}})
	if r.status != 303 || r.header.Get("Location") != "/account?done=created" || csrfOf(j) == "" {
		t.Fatalf("create = %d %v", r.status, r.header)
	}
	if p := page(e.browse(j, "GET", "/account?done=created", "")); !strings.Contains(p, "Signed in as <span id=\"username\">newbie</span>") || !strings.Contains(p, "account was created") {
		t.Fatalf("after creating:\n%.2000s", p)
	}
	// Markup in a signed-in name is shown as text.
	k := servertest.NewJar(nil)
	e.pageSignIn(t, k, `<img src=x onerror=alert(1)>"`, "long enough")
	if p := page(e.browse(k, "GET", "/account", "")); strings.Contains(p, "<img") || !strings.Contains(p, "&lt;img src=x") {
		t.Fatalf("a name with markup is not escaped:\n%.1000s", p)
	}
}

func TestAccountCreateClosed(t *testing.T) {
	e := newEnv(t, func(s *setup) { s.closedSignup = true })
	j := servertest.NewJar(nil)
	if p := page(e.browse(j, "GET", "/account", "")); strings.Contains(p, "Create") || strings.Contains(p, "/account/register") {
		t.Fatalf("registration is closed but the page offers it:\n%.3000s", p)
	}
	r := e.post(j, "/account/register", url.Values{"username": {"newbie"}, "password": {"long enough"}})
	if p := page(r); r.status != 403 || !strings.Contains(p, "closed") || strings.Contains(p, `id="create-account"`) || j.Get("__Host-lk_refresh") != "" {
		t.Fatalf("create with registration closed = %d:\n%.2000s", r.status, p)
	}
	e.call("POST", "/login", "", `{"username":"newbie","password":"long enough"}`).want(t, 401, "invalid_credentials")
}

func TestAccountChangePassword(t *testing.T) {
	e := newEnv(t)
	j := servertest.NewJar(nil)
	e.pageSignIn(t, j, "test", "test")
	other := e.login("test", "test")
	if p := page(e.browse(j, "GET", "/account", "")); !strings.Contains(p, `id="change-password"`) {
		t.Fatalf("a fresh sign-in shows no change-password form:\n%.3000s", p)
	}
	csrf := csrfOf(j)
	r := e.post(j, "/account/password", url.Values{"csrf_token": {csrf}, "old_password": {"wrong"}, "new_password": {"a new password"}})
	if p := page(r); r.status != 401 || !strings.Contains(p, `id="old-password-error"`) {
		t.Fatalf("wrong current password = %d:\n%.3000s", r.status, p)
	}
	r = e.post(j, "/account/password", url.Values{"csrf_token": {csrf}, "old_password": {"test"}, "new_password": {"short"}})
	if p := page(r); r.status != 400 || !strings.Contains(p, `id="new-password-error"`) {
		t.Fatalf("weak new password = %d:\n%.3000s", r.status, p)
	}
	e.login("test", "test") // unchanged so far
	r = e.post(j, "/account/password", url.Values{"csrf_token": {csrf}, "old_password": {"test"}, "new_password": {"a new password"}})
	if r.status != 303 || r.header.Get("Location") != "/account?done=password" {
		t.Fatalf("change = %d %.500s", r.status, r.raw)
	}
	if p := page(e.browse(j, "GET", "/account?done=password", "")); !strings.Contains(p, "Every other session of your account was signed out") {
		t.Fatalf("after the change:\n%.2000s", p)
	}
	time.Sleep(100 * time.Millisecond) // the revocation delay is 50 ms
	e.call("GET", "/protected", other.access, "").want(t, 401, "token_revoked")
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`).want(t, 401, "invalid_credentials")
	e.login("test", "a new password")
}

// Once the access token is no longer fresh the page asks for the password
// again; a change posted anyway is refused and changes nothing.
func TestAccountPasswordNeedsRecentSignIn(t *testing.T) {
	e := newEnv(t)
	j := servertest.NewJar(nil)
	e.pageSignIn(t, j, "test", "test")
	e.clock.Add(16 * time.Minute) // past the access token: the next request refreshes
	p := page(e.browse(j, "GET", "/account", ""))
	if strings.Contains(p, `id="change-password"`) || !strings.Contains(p, `id="reauth-prompt"`) {
		t.Fatalf("a stale sign-in shows:\n%.3000s", p)
	}
	r := e.post(j, "/account/password", url.Values{"csrf_token": {csrfOf(j)}, "old_password": {"test"}, "new_password": {"a new password"}})
	if p := page(r); r.status != 403 || !strings.Contains(p, "needs a recent sign-in") || !strings.Contains(p, `id="reauth"`) {
		t.Fatalf("a change without a recent sign-in = %d:\n%.3000s", r.status, p)
	}
	e.login("test", "test")
	r = e.post(j, "/account/reauth", url.Values{"csrf_token": {csrfOf(j)}, "password": {"wrong"}})
	if p := page(r); r.status != 401 || !strings.Contains(p, `id="reauth-error"`) {
		t.Fatalf("re-authentication with a wrong password = %d:\n%.3000s", r.status, p)
	}
	old := j.Get("__Host-lk_refresh")
	r = e.post(j, "/account/reauth", url.Values{"csrf_token": {csrfOf(j)}, "password": {"test"}})
	if r.status != 303 || r.header.Get("Location") != "/account?done=reauth#password" || j.Get("__Host-lk_refresh") == old {
		t.Fatalf("re-authentication = %d %v", r.status, r.header)
	}
	e.refresh(old).want(t, 401, "token_revoked") // the replaced session is over
	if p := page(e.browse(j, "GET", "/account?done=reauth", "")); !strings.Contains(p, `id="change-password"`) {
		t.Fatalf("after re-authenticating:\n%.3000s", p)
	}
	e.post(j, "/account/password", url.Values{"csrf_token": {csrfOf(j)}, "old_password": {"test"}, "new_password": {"a new password"}}).want(t, 303, "")
	e.login("test", "a new password")
}

// Every form of the page refuses a post from another site, and every form of
// a signed-in page one without its CSRF token or with a wrong one; none of
// them changes anything.
func TestAccountFormsRefuseCrossSite(t *testing.T) {
	e := newEnv(t)
	j := servertest.NewJar(nil)
	e.pageSignIn(t, j, "test", "test")
	other := e.login("test", "test")
	csrf := csrfOf(j)
	forms := []struct {
		path    string
		v       url.Values
		session bool // needs a signed-in browser (and so the CSRF token)
	}{
		{"/account/login", url.Values{"username": {"test"}, "password": {"test"}}, false},
		{"/account/register", url.Values{"username": {"forged"}, "password": {"long enough"}}, false},
		{"/account/logout", url.Values{"scope": {"global"}}, true},
		{"/account/sessions/" + other.session + "/revoke", url.Values{}, true},
		{"/account/password", url.Values{"old_password": {"test"}, "new_password": {"forged password"}}, true},
		{"/account/reauth", url.Values{"password": {"test"}}, true},
	}
	for _, f := range forms {
		for _, site := range []string{"Origin", "Sec-Fetch-Site"} {
			v := url.Values{"csrf_token": {csrf}}
			for k, x := range f.v {
				v[k] = x
			}
			body, hdr := form(v)
			value := "https://evil.example"
			if site == "Sec-Fetch-Site" {
				value = "cross-site"
			}
			e.browse(j, "POST", f.path, body, append(hdr, site, value)...).want(t, 403, "csrf_failed")
		}
		if !f.session {
			continue
		}
		for _, token := range []string{"", "forged", csrf + "x"} {
			v := url.Values{}
			if token != "" {
				v.Set("csrf_token", token)
			}
			for k, x := range f.v {
				v[k] = x
			}
			if r := e.post(j, f.path, v); r.status != 403 || r.str("error") != "csrf_failed" {
				t.Errorf("%s with CSRF token %q = %d %.200s, want 403 csrf_failed", f.path, token, r.status, r.raw)
			}
		}
	}
	// Nothing happened: both sessions live, the password is the same, no
	// account was made.
	e.call("GET", "/protected", other.access, "").want(t, 200, "")
	if p := page(e.browse(j, "GET", "/account", "")); !strings.Contains(p, "Signed in as") {
		t.Fatalf("the forged posts signed the page out:\n%.500s", p)
	}
	e.login("test", "test")
	e.call("POST", "/login", "", `{"username":"forged","password":"long enough"}`).want(t, 401, "invalid_credentials")
}

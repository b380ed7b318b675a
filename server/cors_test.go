package server_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

// The origins of a page on another port, as a browser sends them.
const (
	listedOrigin   = "http://localhost:5173"
	unlistedOrigin = "http://localhost:6666"
)

func withCORS(origins ...string) func(*setup) {
	return func(s *setup) { s.corsOrigins = origins }
}

// corsHeaders are the Access-Control-* headers of a response.
func corsHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = v
		}
	}
	return out
}

func wantVaryOrigin(t *testing.T, h http.Header) {
	t.Helper()
	if !slices.ContainsFunc(h.Values("Vary"), func(v string) bool { return strings.Contains(v, "Origin") }) {
		t.Errorf("Vary = %q, want Origin in it", h.Values("Vary"))
	}
}

func TestCORSListedOriginReadsResponses(t *testing.T) {
	e := newEnv(t, withCORS("https://app.example.com", listedOrigin))
	p := e.login("test", "test")
	for _, r := range []response{
		e.call("GET", "/me", p.access, "", "Origin", listedOrigin).want(t, 200, ""),
		// Errors too: the app must read the code and WWW-Authenticate.
		e.call("GET", "/me", "", "", "Origin", listedOrigin).want(t, 401, "missing_token"),
		e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "Origin", listedOrigin).want(t, 200, ""),
	} {
		want := http.Header{
			"Access-Control-Allow-Origin":      {listedOrigin},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Expose-Headers":    {"Www-Authenticate, Retry-After, Dpop-Nonce"},
		}
		if got := corsHeaders(r.header); !equalHeaders(got, want) {
			t.Errorf("%d: CORS headers %v, want %v", r.status, got, want)
		}
		wantVaryOrigin(t, r.header)
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestCORSUnlistedOriginGetsNoHeaders(t *testing.T) {
	e := newEnv(t, withCORS(listedOrigin))
	p := e.login("test", "test")
	for _, origin := range []string{unlistedOrigin, "null", "http://localhost:5173.evil.example", "https://localhost:5173"} {
		r := e.call("GET", "/me", p.access, "", "Origin", origin).want(t, 200, "")
		if got := corsHeaders(r.header); len(got) != 0 {
			t.Errorf("Origin %s: CORS headers %v, want none", origin, got)
		}
		r = e.call("OPTIONS", "/me", "", "", "Origin", origin, "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "authorization")
		if r.status != 204 || len(corsHeaders(r.header)) != 0 {
			t.Errorf("Origin %s: preflight %d with %v, want 204 with no Access-Control-* header", origin, r.status, corsHeaders(r.header))
		}
	}
}

func TestCORSPreflight(t *testing.T) {
	e := newEnv(t, withCORS(listedOrigin))
	for _, c := range []struct{ path, method, headers, methods string }{
		{"/me", "GET", "authorization", "GET, HEAD"},
		{"/login", "POST", "content-type", "POST"},
		{"/logout", "POST", "content-type,x-csrf-token", "POST"},
		{"/sessions/0123456789abcdef0123456789abcdef", "DELETE", "authorization", "DELETE"},
		{"/oauth/token", "POST", "", "POST"},
	} {
		hdr := []string{"Origin", listedOrigin, "Access-Control-Request-Method", c.method}
		if c.headers != "" {
			hdr = append(hdr, "Access-Control-Request-Headers", c.headers)
		}
		r := e.call("OPTIONS", c.path, "", "", hdr...)
		want := http.Header{
			"Access-Control-Allow-Origin":      {listedOrigin},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Allow-Methods":     {c.methods},
			"Access-Control-Allow-Headers":     {"Authorization, Content-Type, DPoP, X-CSRF-Token"},
			"Access-Control-Max-Age":           {"600"},
		}
		if got := corsHeaders(r.header); r.status != 204 || !equalHeaders(got, want) {
			t.Errorf("preflight %s %s: %d %v, want 204 %v", c.method, c.path, r.status, got, want)
		}
		wantVaryOrigin(t, r.header)
		if len(r.raw) != 0 {
			t.Errorf("preflight %s: body %q", c.path, r.raw)
		}
	}
	// A method or header the route does not take: no allow headers.
	for _, hdr := range [][]string{
		{"Access-Control-Request-Method", "DELETE"},
		{"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "x-unknown"},
	} {
		r := e.call("OPTIONS", "/me", "", "", append(hdr, "Origin", listedOrigin)...)
		if got := corsHeaders(r.header); r.status != 204 || len(got) != 0 {
			t.Errorf("preflight %v on /me: %d %v, want 204 and no Access-Control-* header", hdr, r.status, got)
		}
	}
}

// An OPTIONS request that is no preflight keeps the 405 contract, and without
// CORSOrigins a preflight is one too.
func TestCORSOptionsWithoutPreflight(t *testing.T) {
	e := newEnv(t, withCORS(listedOrigin))
	r := e.call("OPTIONS", "/me", "", "", "Origin", listedOrigin).want(t, 405, "method_not_allowed")
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	plain := newEnv(t)
	r = plain.call("OPTIONS", "/me", "", "", "Origin", listedOrigin, "Access-Control-Request-Method", "GET").want(t, 405, "method_not_allowed")
	if got := corsHeaders(r.header); len(got) != 0 {
		t.Errorf("without CORSOrigins: CORS headers %v", got)
	}
	r = plain.call("GET", "/healthz", "", "", "Origin", listedOrigin)
	if got := corsHeaders(r.header); len(got) != 0 {
		t.Errorf("without CORSOrigins: CORS headers %v", got)
	}
}

// A listed origin is trusted by the cookie sessions' cross-origin check
// (with the CSRF token from the login body); an unlisted one is not.
func TestCORSCookieSessionFromSiblingOrigin(t *testing.T) {
	e := newEnv(t, withCORS(listedOrigin))
	j, r := e.cookieLogin()
	csrf := r.str("csrf_token")
	if csrf == "" || csrf != j.Get("__Host-lk_csrf") {
		t.Fatalf("login body csrf_token %q, cookie %q: want the cookie's value", csrf, j.Get("__Host-lk_csrf"))
	}
	r = e.browse(j, "POST", "/refresh", "", "Origin", listedOrigin, "Sec-Fetch-Site", "same-site", "X-CSRF-Token", csrf).want(t, 200, "")
	if r.str("csrf_token") != csrf {
		t.Errorf("refresh body csrf_token %q, want the session's %q", r.str("csrf_token"), csrf)
	}
	if r.header.Get("Access-Control-Allow-Origin") != listedOrigin {
		t.Errorf("refresh from the listed origin: Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	for _, origin := range []string{unlistedOrigin, "https://localhost:5173"} {
		r = e.browse(j, "POST", "/logout", "", "Origin", origin, "Sec-Fetch-Site", "same-site", "X-CSRF-Token", csrf).want(t, 403, "csrf_failed")
		if len(corsHeaders(r.header)) != 0 {
			t.Errorf("refusal to %s carries CORS headers %v", origin, corsHeaders(r.header))
		}
	}
	// Still the CSRF token: trust in the origin does not replace it.
	e.browse(j, "POST", "/logout", "", "Origin", listedOrigin, "Sec-Fetch-Site", "same-site").want(t, 403, "csrf_failed")
	e.browse(j, "POST", "/logout", "", "Origin", listedOrigin, "Sec-Fetch-Site", "same-site", "X-CSRF-Token", csrf).want(t, 204, "")
}

func TestCORSOriginsValidated(t *testing.T) {
	for _, good := range []string{"https://app.example.com", "http://localhost:5173", "http://127.0.0.1:3000", "https://[::1]:8443"} {
		if got, err := server.ParseCORSOrigins(" " + good + " ,"); err != nil || !slices.Equal(got, []string{good}) {
			t.Errorf("ParseCORSOrigins(%q) = %q, %v", good, got, err)
		}
	}
	for _, bad := range []string{"*", "https://*.example.com", "https://app.example.com/", "https://app.example.com/x",
		"app.example.com", "ftp://app.example.com", "https://user@app.example.com", "https://app.example.com:443",
		"http://app.example.com:80", "https://App.example.com", "https://app.example.com?x", "https://app.example.com:x",
		"https://", "null"} {
		if _, err := server.ParseCORSOrigins(bad); err == nil {
			t.Errorf("ParseCORSOrigins(%q) accepted it", bad)
		}
	}
	// New refuses them too.
	e := newEnv(t)
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, err := users.New(users.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(server.Config{Auth: e.auth, Users: u, CORSOrigins: []string{"*"}}); err == nil || !strings.Contains(err.Error(), "CORSOrigins") {
		t.Errorf("server.New with CORSOrigins *: %v, want an error naming CORSOrigins", err)
	}
}

// A path the API does not have answers a listed origin's page a readable 404
// (and its preflight whatever method it tries), not "Failed to fetch".
func TestCORSNotFound(t *testing.T) {
	e := newEnv(t, withCORS(listedOrigin))
	r := e.call("GET", "/nope", "", "", "Origin", listedOrigin).want(t, 404, "not_found")
	want := http.Header{
		"Access-Control-Allow-Origin":      {listedOrigin},
		"Access-Control-Allow-Credentials": {"true"},
		"Access-Control-Expose-Headers":    {"Www-Authenticate, Retry-After, Dpop-Nonce"},
	}
	if got := corsHeaders(r.header); !equalHeaders(got, want) {
		t.Errorf("404: CORS headers %v, want %v", got, want)
	}
	wantVaryOrigin(t, r.header)
	r = e.call("OPTIONS", "/nope/deeper", "", "", "Origin", listedOrigin, "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "authorization,content-type")
	want = http.Header{
		"Access-Control-Allow-Origin":      {listedOrigin},
		"Access-Control-Allow-Credentials": {"true"},
		"Access-Control-Allow-Methods":     {"GET, HEAD, POST, PUT, PATCH, DELETE"},
		"Access-Control-Allow-Headers":     {"Authorization, Content-Type, DPoP, X-CSRF-Token"},
		"Access-Control-Max-Age":           {"600"},
	}
	if got := corsHeaders(r.header); r.status != 204 || !equalHeaders(got, want) {
		t.Errorf("preflight to /nope/deeper: %d %v, want 204 %v", r.status, got, want)
	}
	r = e.call("DELETE", "/nope", "", "", "Origin", listedOrigin).want(t, 404, "not_found")
	if r.header.Get("Access-Control-Allow-Origin") != listedOrigin {
		t.Errorf("DELETE /nope: Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	// An OPTIONS that is no preflight is still a 404.
	e.call("OPTIONS", "/nope", "", "", "Origin", listedOrigin).want(t, 404, "not_found")
	// Unlisted origins, and a server without CORSOrigins, get no header.
	r = e.call("GET", "/nope", "", "", "Origin", unlistedOrigin).want(t, 404, "not_found")
	if got := corsHeaders(r.header); len(got) != 0 {
		t.Errorf("404 to an unlisted origin: CORS headers %v", got)
	}
	r = e.call("OPTIONS", "/nope", "", "", "Origin", unlistedOrigin, "Access-Control-Request-Method", "GET")
	if got := corsHeaders(r.header); r.status != 204 || len(got) != 0 {
		t.Errorf("preflight from an unlisted origin: %d %v", r.status, got)
	}
	r = newEnv(t).call("GET", "/nope", "", "", "Origin", listedOrigin).want(t, 404, "not_found")
	if got := corsHeaders(r.header); len(got) != 0 {
		t.Errorf("without CORSOrigins: CORS headers %v", got)
	}
}

// GET /me gives a cookie session its CSRF token back (a sibling origin's page
// that reloaded has lost the one from the login body), and only a cookie
// session.
func TestMeCSRFTokenForCookieSessions(t *testing.T) {
	e := newEnv(t, withCORS(listedOrigin))
	j, _ := e.cookieLogin()
	csrf := j.Get("__Host-lk_csrf")
	r := e.browse(j, "GET", "/me", "", "Origin", listedOrigin, "Sec-Fetch-Site", "same-site").want(t, 200, "")
	if r.str("csrf_token") != csrf || csrf == "" {
		t.Errorf("cookie /me csrf_token %q, want the cookie's %q", r.str("csrf_token"), csrf)
	}
	// After the access cookie expired: refreshed implicitly, still cookie mode.
	e.clock.Add(time.Hour)
	old := j.Get("__Host-lk_refresh")
	r = e.browse(j, "GET", "/me", "", "Origin", listedOrigin, "Sec-Fetch-Site", "same-site").want(t, 200, "")
	if j.Get("__Host-lk_refresh") == old {
		t.Errorf("no implicit refresh happened")
	}
	if r.str("csrf_token") != csrf {
		t.Errorf("implicitly refreshed /me csrf_token %q, want %q", r.str("csrf_token"), csrf)
	}
	// Bearer, even with the cookies alongside: no CSRF token.
	p := e.login("test", "test")
	for _, r := range []response{
		e.call("GET", "/me", p.access, "").want(t, 200, ""),
		e.call("GET", "/me", p.access, "", "Cookie", j.Header()).want(t, 200, ""),
		e.call("GET", "/me", "", `{"access_token":"`+p.access+`"}`).want(t, 200, ""),
	} {
		if _, ok := r.body["csrf_token"]; ok {
			t.Errorf("/me without cookie authentication has csrf_token: %s", r.raw)
		}
	}
}

// An OAuth client's registered origins: its pages may call the OAuth
// endpoints and the token routes as that client, with CORS headers but never
// credentials; a page elsewhere, or acting as another client, is refused
// before the grant runs; the first-party routes stay closed to them.
func TestCORSClientOrigins(t *testing.T) {
	e := newEnv(t)
	const spaOrigin = "https://spa.example.com"
	if _, _, err := e.clients.Add(t.Context(), "spa", oauth.Options{Origins: []string{spaOrigin}}); err != nil {
		t.Fatal(err)
	}
	password := []string{"grant_type", "password", "username", "test", "password", "test"}
	from := func(origin string) []string { return []string{"H:Origin", origin, "H:Sec-Fetch-Site", "cross-site"} }

	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/me", "/.well-known/jwks.json", "/.well-known/oauth-authorization-server"} {
		method := "POST"
		if strings.HasPrefix(path, "/.well-known") || path == "/me" {
			method = "GET"
		}
		r := e.call("OPTIONS", path, "", "", "Origin", spaOrigin, "Access-Control-Request-Method", method,
			"Access-Control-Request-Headers", "authorization,content-type")
		if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != spaOrigin ||
			r.header.Get("Access-Control-Allow-Credentials") != "" || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight %s from the client's origin: %d %v, want 204 naming it, without credentials", path, r.status, corsHeaders(r.header))
		}
		wantVaryOrigin(t, r.header)
		r = e.call("OPTIONS", path, "", "", "Origin", unlistedOrigin, "Access-Control-Request-Method", method)
		if len(corsHeaders(r.header)) != 0 {
			t.Errorf("preflight %s from an origin no client lists: %v", path, corsHeaders(r.header))
		}
	}
	// The first-party routes are not the client's.
	for _, path := range []string{"/login", "/refresh", "/register", "/account/login"} {
		r := e.call("OPTIONS", path, "", "", "Origin", spaOrigin, "Access-Control-Request-Method", "POST")
		if len(corsHeaders(r.header)) != 0 {
			t.Errorf("preflight %s from a client's origin: %v, want no CORS header", path, corsHeaders(r.header))
		}
	}

	r := e.oauthCall("/oauth/token", append(append([]string{"client_id", "spa"}, password...), from(spaOrigin)...)...).wantOAuth(t, 200, "")
	if r.header.Get("Access-Control-Allow-Origin") != spaOrigin || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("token response to the client's page: %v", corsHeaders(r.header))
	}
	access, refresh := r.str("access_token"), r.str("refresh_token")
	me := e.call("GET", "/me", access, "", "Origin", spaOrigin).want(t, 200, "")
	if me.header.Get("Access-Control-Allow-Origin") != spaOrigin || me.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("/me to the client's page: %v", corsHeaders(me.header))
	}

	// Another origin, or another client from this origin: refused before the
	// grant runs, so the refresh token is not spent.
	for name, kv := range map[string][]string{
		"a page on another origin":          append([]string{"client_id", "spa", "grant_type", "refresh_token", "refresh_token", refresh}, from(unlistedOrigin)...),
		"a client that lists no origin":     append([]string{"client_id", "app", "grant_type", "refresh_token", "refresh_token", refresh}, from(spaOrigin)...),
		"a sibling origin of the same site": append([]string{"client_id", "spa", "grant_type", "refresh_token", "refresh_token", refresh}, "H:Origin", "https://evil.example.com", "H:Sec-Fetch-Site", "same-site"),
	} {
		r := e.oauthCall("/oauth/token", kv...).wantOAuth(t, 400, "unauthorized_client")
		if len(corsHeaders(r.header)) != 0 && r.header.Get("Access-Control-Allow-Origin") != spaOrigin {
			t.Errorf("%s: refusal carries %v", name, corsHeaders(r.header))
		}
	}
	e.oauthCall("/oauth/token", "client_id", "spa", "grant_type", "refresh_token", "refresh_token", refresh, "H:Origin", spaOrigin, "H:Sec-Fetch-Site", "cross-site").wantOAuth(t, 200, "")
	// Outside a browser (no Origin) nothing changes.
	e.oauthCall("/oauth/token", append([]string{"client_id", "app"}, password...)...).wantOAuth(t, 200, "")

	// An origin given to a client later is allowed within the cache's
	// lifetime, on every node; before that, a preflight from it is refused.
	const later = "https://later.example.com"
	if _, _, err := e.clients.Add(t.Context(), "later", oauth.Options{Origins: []string{later}}); err != nil {
		t.Fatal(err)
	}
	preflight := func() string {
		return e.call("OPTIONS", "/oauth/token", "", "", "Origin", later, "Access-Control-Request-Method", "POST").header.Get("Access-Control-Allow-Origin")
	}
	if got := preflight(); got != "" {
		t.Logf("the new origin was allowed at once (%q): the cache had not been read yet", got)
	}
	e.clock.Add(11 * time.Second)
	if got := preflight(); got != later {
		t.Errorf("after the cache's lifetime the new client's origin gets %q", got)
	}
	// A malformed origin is refused at registration.
	for _, bad := range []string{"https://spa.example.com/", "*", "https://*.example.com"} {
		if _, _, err := e.clients.Add(t.Context(), "bad", oauth.Options{Origins: []string{bad}}); !errors.Is(err, latchkey.ErrInvalidRequest) {
			t.Errorf("Add with origin %q = %v, want invalid_request", bad, err)
		}
	}
}

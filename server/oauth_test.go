package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/oauth"
)

// oauthCall posts a form to an OAuth endpoint. kv are form pairs; a "basic"
// pair sets HTTP Basic credentials "id:secret" (form-encoded as RFC 6749
// §2.3.1 asks) instead of a form field, and a pair whose key starts with
// "H:" sets the request header named by the rest of the key.
func (e *env) oauthCall(path string, kv ...string) response {
	e.t.Helper()
	form := url.Values{}
	var basic string
	var hdr []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "basic" {
			basic = kv[i+1]
			continue
		}
		if name, ok := strings.CutPrefix(kv[i], "H:"); ok {
			hdr = append(hdr, name, kv[i+1])
			continue
		}
		form.Add(kv[i], kv[i+1])
	}
	req, err := http.NewRequest("POST", e.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		id, secret, _ := strings.Cut(basic, ":")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(req)
}

// do sends req and reads the answer; the server must never answer 5xx.
func (e *env) do(req *http.Request) response {
	e.t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r response
	r.status, r.header = resp.StatusCode, resp.Header
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil && resp.ContentLength != 0 {
		e.t.Fatalf("%s %s: body is not JSON: %v", req.Method, req.URL.Path, err)
	}
	r.raw, _ = json.Marshal(r.body)
	if r.status >= 500 {
		e.t.Fatalf("%s %s = %d %s: the server must never answer 5xx", req.Method, req.URL.Path, r.status, r.raw)
	}
	return r
}

// wantOAuth checks an OAuth answer: the status, the RFC 6749 error code (""
// for a success), exactly the fields of §5.2 on errors, and no caching.
func (r response) wantOAuth(t testing.TB, status int, code string) response {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d %q", r.status, r.raw, status, code)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Fatalf("Cache-Control %q, Pragma %q: want no-store, no-cache", r.header.Get("Cache-Control"), r.header.Get("Pragma"))
	}
	if code != "" {
		if keys := slices.Sorted(maps.Keys(r.body)); !slices.Equal(keys, []string{"error", "error_description"}) || r.str("error_description") == "" {
			t.Fatalf("error body %s: want exactly error and a non-empty error_description", r.raw)
		}
	}
	if status == 401 && r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("a 401 has no WWW-Authenticate challenge")
	}
	return r
}

// claims decodes an access token's payload, unverified (the server verified it).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) oauthLogin(client ...string) pair {
	e.t.Helper()
	if len(client) == 0 {
		client = []string{"client_id", "app"}
	}
	r := e.oauthCall("/oauth/token", append([]string{"grant_type", "password", "username", "test", "password", "test"}, client...)...).wantOAuth(e.t, 200, "")
	return pair{access: r.str("access_token"), refresh: r.str("refresh_token")}
}

func TestOAuthPasswordGrant(t *testing.T) {
	e := newEnv(t)
	r := e.oauthCall("/oauth/token", "grant_type", "password", "username", "test", "password", "test", "client_id", "app").wantOAuth(t, 200, "")
	if keys := slices.Sorted(maps.Keys(r.body)); !slices.Equal(keys, []string{"access_token", "expires_in", "refresh_token", "scope", "token_type"}) {
		t.Fatalf("token response fields %v", keys)
	}
	if r.str("token_type") != "Bearer" || r.str("scope") != "account" || r.body["expires_in"] != float64(15*60) {
		t.Fatalf("token response %s", r.raw)
	}
	c := claims(t, r.str("access_token"))
	if c["client_id"] != "app" || c["iss"] != "http://latchkey.test" || c["scope"] != "account" {
		t.Fatalf("access token claims %v: want client_id app, the issuer and scope account", c)
	}
	e.call("GET", "/protected", r.str("access_token"), "").want(t, 200, "")
	// The session is listed like any other.
	ss := e.call("GET", "/sessions", r.str("access_token"), "").want(t, 200, "")
	if n := len(ss.body["sessions"].([]any)); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	// A first-party token is no OAuth grant: it has neither claim.
	first := e.call("POST", "/login", "", `{"username":"test","password":"test"}`).want(t, 200, "")
	if c := claims(t, first.str("access_token")); c["client_id"] != nil || c["scope"] != nil {
		t.Fatalf("first-party access token claims %v: want no client_id and no scope", c)
	}
	// scope "account" may be asked for; nothing else exists.
	e.oauthCall("/oauth/token", "grant_type", "password", "username", "test", "password", "test", "client_id", "app", "scope", "account").wantOAuth(t, 200, "")
	e.oauthCall("/oauth/token", "grant_type", "password", "username", "test", "password", "test", "client_id", "app", "scope", "account admin").wantOAuth(t, 400, "invalid_scope")
	// A wrong password is the grant's fault, not the client's.
	e.oauthCall("/oauth/token", "grant_type", "password", "username", "test", "password", "nope", "client_id", "app").wantOAuth(t, 400, "invalid_grant")
	e.oauthCall("/oauth/token", "grant_type", "password", "username", "nobody", "password", "nope", "client_id", "app").wantOAuth(t, 400, "invalid_grant")
	e.oauthCall("/oauth/token", "grant_type", "password", "username", "test", "client_id", "app").wantOAuth(t, 400, "invalid_request")
}

func TestOAuthClientAuthentication(t *testing.T) {
	e := newEnv(t)
	grant := []string{"grant_type", "password", "username", "test", "password", "test"}
	with := func(kv ...string) []string { return append(slices.Clone(grant), kv...) }
	// A confidential client with its secret in HTTP Basic.
	e.oauthCall("/oauth/token", with("basic", "rs:"+e.rsSecret)...).wantOAuth(t, 200, "")
	// A public client may also name itself in Basic with an empty secret (what
	// golang.org/x/oauth2 sends for it).
	e.oauthCall("/oauth/token", with("basic", "app:")...).wantOAuth(t, 200, "")
	for name, kv := range map[string][]string{
		"wrong secret":                  {"basic", "rs:" + e.otherSecret},
		"confidential without a secret": {"client_id", "rs"},
		"another client's secret":       {"basic", "other:" + e.rsSecret},
		"public client with a secret":   {"basic", "app:guess"},
		"unknown client":                {"client_id", "nobody"},
		"unknown client in Basic":       {"basic", "nobody:x"},
		"no client at all":              nil,
		"malformed client id":           {"client_id", "a b"},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.oauthCall("/oauth/token", with(kv...)...).wantOAuth(t, 401, "invalid_client")
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="latchkey"`) {
				t.Fatalf("WWW-Authenticate %q, want the Basic scheme", got)
			}
		})
	}
	// A Bearer header is no client authentication.
	req, _ := http.NewRequest("POST", e.url+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"password"}, "client_id": {"app"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer x")
	e.do(req).wantOAuth(t, 401, "invalid_client")
	// The secret never travels in the body, and the two ids must agree.
	e.oauthCall("/oauth/token", with("client_id", "rs", "client_secret", e.rsSecret)...).wantOAuth(t, 400, "invalid_request")
	e.oauthCall("/oauth/token", with("basic", "rs:"+e.rsSecret, "client_id", "app")...).wantOAuth(t, 400, "invalid_request")
}

func TestOAuthMalformedRequests(t *testing.T) {
	e := newEnv(t)
	e.oauthCall("/oauth/token", "client_id", "app").wantOAuth(t, 400, "invalid_request")
	e.oauthCall("/oauth/token", "grant_type", "authorization_code", "code", "x", "client_id", "app").wantOAuth(t, 400, "unsupported_grant_type")
	e.oauthCall("/oauth/token", "grant_type", "client_credentials", "basic", "rs:"+e.rsSecret).wantOAuth(t, 400, "unsupported_grant_type")
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "client_id", "app").wantOAuth(t, 400, "invalid_request")
	// A repeated parameter is refused even when the request is otherwise whole.
	e.oauthCall("/oauth/token", "grant_type", "password", "grant_type", "password", "username", "test", "password", "test", "client_id", "app").wantOAuth(t, 400, "invalid_request")
	e.oauthCall("/oauth/token", "grant_type", "password", "username", "test", "password", "test", "client_id", "app", "client_id", "app").wantOAuth(t, 400, "invalid_request")
	// An empty parameter counts as absent (RFC 6749 §3.1).
	e.oauthCall("/oauth/token", "grant_type", "password", "username", "test", "password", "test", "client_id", "app", "client_secret", "", "scope", "").wantOAuth(t, 200, "")
	e.oauthCall("/oauth/token", "grant_type", "password", "username", "test", "password", "test", "basic", "app:", "client_id", "").wantOAuth(t, 200, "")
	send := func(contentType, path, body string) response {
		req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return e.do(req)
	}
	send("application/json", "/oauth/token", `{"grant_type":"password"}`).wantOAuth(t, 400, "invalid_request")
	send("", "/oauth/token", "grant_type=password").wantOAuth(t, 400, "invalid_request")
	send("application/x-www-form-urlencoded", "/oauth/token", "grant_type=password&username=%zz").wantOAuth(t, 400, "invalid_request")
	send("application/x-www-form-urlencoded", "/oauth/token", strings.Repeat("a", 20<<10)).wantOAuth(t, 400, "invalid_request")
	// Credentials in the URL are refused, even with a valid body.
	send("application/x-www-form-urlencoded", "/oauth/token?password=test",
		"grant_type=password&username=test&password=test&client_id=app").wantOAuth(t, 400, "invalid_request")
	send("application/x-www-form-urlencoded; charset=UTF-8", "/oauth/token",
		"grant_type=password&username=test&password=test&client_id=app").wantOAuth(t, 200, "")
	send("application/x-www-form-urlencoded; charset=ISO-8859-1", "/oauth/token",
		"grant_type=password&username=test&password=test&client_id=app").wantOAuth(t, 400, "invalid_request")
	// Only POST.
	for _, p := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"} {
		r := e.call("GET", p, "", "").want(t, 405, "method_not_allowed")
		if r.header.Get("Allow") != "POST" {
			t.Fatalf("GET %s: Allow %q", p, r.header.Get("Allow"))
		}
	}
}

func TestOAuthRefreshGrant(t *testing.T) {
	e := newEnv(t)
	p := e.oauthLogin()
	refresh := func(rt string, client ...string) response {
		if len(client) == 0 {
			client = []string{"client_id", "app"}
		}
		return e.oauthCall("/oauth/token", append([]string{"grant_type", "refresh_token", "refresh_token", rt}, client...)...)
	}
	r := refresh(p.refresh).wantOAuth(t, 200, "")
	n := pair{access: r.str("access_token"), refresh: r.str("refresh_token")}
	if n.refresh == p.refresh || r.str("scope") != "account" {
		t.Fatalf("refresh response %s: want a rotated refresh token and the scope", r.raw)
	}
	if c := claims(t, n.access); c["scope"] != "account" || c["client_id"] != "app" {
		t.Fatalf("refreshed access token claims %v: want scope account and client_id app", c)
	}
	// The same grace window as /refresh: a retry gets the same successor.
	e.clock.Add(5 * time.Second)
	if again := refresh(p.refresh).wantOAuth(t, 200, ""); again.str("refresh_token") != n.refresh {
		t.Fatal("a retry inside the grace window got another refresh token")
	}
	// Only the client it was issued to may refresh it: another (authenticated)
	// client, and the first-party /refresh, are refused without harm.
	refresh(n.refresh, "basic", "rs:"+e.rsSecret).wantOAuth(t, 400, "invalid_grant")
	e.refresh(n.refresh).want(t, 401, "invalid_token")
	first := e.login("test", "test")
	refresh(first.refresh).wantOAuth(t, 400, "invalid_grant")
	e.refresh(first.refresh).want(t, 200, "")
	// An old generation shown by another client, or at /refresh, after the
	// grace window is refused without being taken for reuse: the session lives.
	e.clock.Add(time.Minute)
	refresh(p.refresh, "basic", "rs:"+e.rsSecret).wantOAuth(t, 400, "invalid_grant")
	e.refresh(p.refresh).want(t, 401, "invalid_token")
	r = refresh(n.refresh).wantOAuth(t, 200, "")
	n = pair{access: r.str("access_token"), refresh: r.str("refresh_token")}
	// A scope wider than the grant is refused.
	refresh(n.refresh, "client_id", "app", "scope", "admin").wantOAuth(t, 400, "invalid_scope")
	// Reuse after the window revokes the session, as on /refresh.
	e.clock.Add(time.Minute)
	refresh(p.refresh).wantOAuth(t, 400, "invalid_grant")
	refresh(n.refresh).wantOAuth(t, 400, "invalid_grant")
	e.call("GET", "/protected", n.access, "").want(t, 401, "token_revoked")
	// An access token is not a refresh token.
	q := e.oauthLogin()
	refresh(q.access).wantOAuth(t, 400, "invalid_grant")
	refresh(q.refresh).wantOAuth(t, 200, "")
}

// With --bind-access, the refresh grant needs the session's access token too.
func TestOAuthRefreshGrantBinding(t *testing.T) {
	e := newEnv(t, func(s *setup) { s.cfg = func(c *latchkey.Config) { c.BindAccess = true } })
	p := e.oauthLogin()
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", p.refresh, "client_id", "app").wantOAuth(t, 400, "invalid_request")
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", p.refresh, "access_token", p.access, "client_id", "app").wantOAuth(t, 200, "")
}

func TestOAuthRevoke(t *testing.T) {
	e := newEnv(t)
	p := e.oauthLogin()
	// A refresh token: its session ends, access tokens included.
	e.oauthCall("/oauth/revoke", "token", p.refresh, "token_type_hint", "refresh_token", "client_id", "app").wantOAuth(t, 200, "")
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", p.refresh, "client_id", "app").wantOAuth(t, 400, "invalid_grant")
	e.call("GET", "/protected", p.access, "").want(t, 401, "token_revoked")
	// Again, and unknown or forged tokens: 200, nothing to do.
	for _, tok := range []string{p.refresh, "garbage", "lk_rt_AAAA", p.access + "x"} {
		e.oauthCall("/oauth/revoke", "token", tok, "client_id", "app").wantOAuth(t, 200, "")
	}
	// An access token alone: it stops working, its session does not.
	q := e.oauthLogin()
	e.oauthCall("/oauth/revoke", "token", q.access, "token_type_hint", "refresh_token", "client_id", "app").wantOAuth(t, 200, "")
	e.call("GET", "/protected", q.access, "").want(t, 401, "token_revoked")
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", q.refresh, "client_id", "app").wantOAuth(t, 200, "")
	// Another client's tokens, and first-party ones, are refused and stay valid.
	theirs := e.oauthLogin("basic", "rs:"+e.rsSecret)
	first := e.login("test", "test")
	for _, tok := range []string{theirs.refresh, theirs.access, first.refresh, first.access} {
		e.oauthCall("/oauth/revoke", "token", tok, "client_id", "app").wantOAuth(t, 400, "unauthorized_client")
	}
	e.call("GET", "/protected", theirs.access, "").want(t, 200, "")
	e.call("GET", "/protected", first.access, "").want(t, 200, "")
	// The client must be known, and the token given.
	e.oauthCall("/oauth/revoke", "token", theirs.refresh).wantOAuth(t, 401, "invalid_client")
	e.oauthCall("/oauth/revoke", "token", theirs.refresh, "basic", "rs:wrong").wantOAuth(t, 401, "invalid_client")
	e.oauthCall("/oauth/revoke", "basic", "rs:"+e.rsSecret).wantOAuth(t, 400, "invalid_request")
	e.oauthCall("/oauth/revoke", "token", theirs.refresh, "basic", "rs:"+e.rsSecret).wantOAuth(t, 200, "")
	e.call("GET", "/protected", theirs.access, "").want(t, 401, "token_revoked")
}

func TestOAuthIntrospect(t *testing.T) {
	e := newEnv(t)
	rs := "rs:" + e.rsSecret
	p := e.oauthLogin()
	inactive := func(r response) {
		t.Helper()
		r.wantOAuth(t, 200, "")
		if string(r.raw) != `{"active":false}` {
			t.Fatalf("inactive token answered %s: want only {\"active\":false}", r.raw)
		}
	}
	r := e.oauthCall("/oauth/introspect", "token", p.access, "basic", rs).wantOAuth(t, 200, "")
	c := claims(t, p.access)
	want := map[string]any{"active": true, "scope": "account", "client_id": "app", "username": "test", "token_type": "Bearer",
		"exp": c["exp"], "iat": c["iat"], "sub": c["sub"], "aud": "latchkey", "iss": "http://latchkey.test", "jti": c["jti"], "sid": c["sid"]}
	if !maps.Equal(r.body, want) {
		t.Fatalf("introspection %s\nwant %v", r.raw, want)
	}
	// A first-party access token is active too, but it is no OAuth grant: it
	// shows no scope and no client, as the token itself carries neither.
	first := e.call("POST", "/login", "", `{"username":"test","password":"test"}`).want(t, 200, "")
	fr := e.oauthCall("/oauth/introspect", "token", first.str("access_token"), "basic", rs).wantOAuth(t, 200, "")
	if fr.body["active"] != true || fr.body["scope"] != nil || fr.body["client_id"] != nil || fr.str("username") != "test" {
		t.Fatalf("first-party access token introspection %s: want active, no scope, no client_id", fr.raw)
	}
	// A refresh token, shown by its own client only; showing an old generation
	// is no use of it (the session survives).
	own := e.oauthLogin("basic", rs)
	rr := e.oauthCall("/oauth/introspect", "token", own.refresh, "token_type_hint", "refresh_token", "basic", rs).wantOAuth(t, 200, "")
	if rr.body["active"] != true || rr.str("token_type") != "refresh_token" || rr.str("client_id") != "rs" || rr.str("username") != "test" {
		t.Fatalf("refresh token introspection %s", rr.raw)
	}
	inactive(e.oauthCall("/oauth/introspect", "token", p.refresh, "basic", rs))
	next := e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", own.refresh, "basic", rs).wantOAuth(t, 200, "")
	e.clock.Add(time.Minute)
	inactive(e.oauthCall("/oauth/introspect", "token", own.refresh, "basic", rs))
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", next.str("refresh_token"), "basic", rs).wantOAuth(t, 200, "")
	// Garbage, expired and revoked tokens say nothing more than inactive.
	for _, tok := range []string{"garbage", "lk_rt_AAAA", forged(p.access)} {
		inactive(e.oauthCall("/oauth/introspect", "token", tok, "basic", rs))
	}
	q := e.oauthLogin("basic", rs)
	e.call("POST", "/logout", q.access, "").want(t, 204, "")
	inactive(e.oauthCall("/oauth/introspect", "token", q.access, "basic", rs))
	inactive(e.oauthCall("/oauth/introspect", "token", q.refresh, "basic", rs))
	e.clock.Add(20 * time.Minute)
	inactive(e.oauthCall("/oauth/introspect", "token", p.access, "basic", rs))
	// Confidential clients only.
	e.oauthCall("/oauth/introspect", "token", p.access, "client_id", "app").wantOAuth(t, 401, "invalid_client")
	e.oauthCall("/oauth/introspect", "token", p.access, "basic", "app:").wantOAuth(t, 401, "invalid_client")
	e.oauthCall("/oauth/introspect", "token", p.access, "basic", "rs:wrong").wantOAuth(t, 401, "invalid_client")
	e.oauthCall("/oauth/introspect", "basic", rs).wantOAuth(t, 400, "invalid_request")
}

func TestOAuthMetadata(t *testing.T) {
	e := newEnv(t)
	r := e.call("GET", "/.well-known/oauth-authorization-server", "", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("metadata: %d %s", r.status, r.header.Get("Content-Type"))
	}
	iss := claims(t, e.oauthLogin().access)["iss"]
	if r.body["issuer"] != iss {
		t.Fatalf("issuer %v, but tokens carry iss %v", r.body["issuer"], iss)
	}
	for field, path := range map[string]string{"token_endpoint": "/oauth/token", "revocation_endpoint": "/oauth/revoke",
		"introspection_endpoint": "/oauth/introspect", "jwks_uri": "/.well-known/jwks.json"} {
		if r.str(field) != iss.(string)+path {
			t.Fatalf("%s = %q, want %q", field, r.str(field), iss.(string)+path)
		}
		// Each named endpoint exists at that path of this server.
		if got := e.call("GET", path, "", ""); got.status == 404 {
			t.Fatalf("%s %s is not served", field, path)
		}
	}
	list := func(field string) []string {
		var out []string
		for _, v := range r.body[field].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := list("grant_types_supported"); !slices.Equal(got, []string{"password", "refresh_token"}) {
		t.Fatalf("grant types %v", got)
	}
	if got := list("access_token_signing_alg_values_supported"); !slices.Equal(got, []string{"EdDSA"}) {
		t.Fatalf("signing algorithms %v", got)
	}
	if got := list("introspection_endpoint_auth_methods_supported"); !slices.Equal(got, []string{"client_secret_basic"}) {
		t.Fatalf("introspection auth methods %v", got)
	}
}

// A client removed and registered again under the same id is a new client:
// the sessions of the old one neither refresh, nor revoke, nor introspect.
func TestOAuthReregisteredClientInheritsNothing(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	_, secret, err := e.clients.Add(ctx, "gone", oauth.Options{Confidential: true})
	if err != nil {
		t.Fatal(err)
	}
	old := e.oauthLogin("basic", "gone:"+secret)
	if err := e.clients.Remove(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", old.refresh, "basic", "gone:"+secret).wantOAuth(t, 401, "invalid_client")
	r := e.oauthCall("/oauth/introspect", "token", old.access, "basic", "rs:"+e.rsSecret).wantOAuth(t, 200, "")
	if r.body["active"] != false {
		t.Fatalf("a removed client's access token introspects as %s", r.raw)
	}
	e.clock.Add(time.Second)
	if _, _, err := e.clients.Add(ctx, "gone", oauth.Options{}); err != nil { // now public: no secret needed
		t.Fatal(err)
	}
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", old.refresh, "client_id", "gone").wantOAuth(t, 400, "invalid_grant")
	e.oauthCall("/oauth/revoke", "token", old.refresh, "client_id", "gone").wantOAuth(t, 400, "unauthorized_client")
	r = e.oauthCall("/oauth/introspect", "token", old.access, "basic", "rs:"+e.rsSecret).wantOAuth(t, 200, "")
	if r.body["active"] != false {
		t.Fatalf("an earlier registration's access token introspects as %s", r.raw)
	}
	// The new registration's own sessions work.
	fresh := e.oauthLogin("client_id", "gone")
	e.oauthCall("/oauth/token", "grant_type", "refresh_token", "refresh_token", fresh.refresh, "client_id", "gone").wantOAuth(t, 200, "")
}

// A refresh token past its session's idle timeout is inactive.
func TestOAuthIntrospectExpiredRefreshToken(t *testing.T) {
	e := newEnv(t)
	rs := "rs:" + e.rsSecret
	p := e.oauthLogin("basic", rs)
	r := e.oauthCall("/oauth/introspect", "token", p.refresh, "basic", rs).wantOAuth(t, 200, "")
	if r.body["active"] != true {
		t.Fatalf("a live refresh token: %s", r.raw)
	}
	e.clock.Add(latchkey.DefaultRefreshTTL + time.Second)
	r = e.oauthCall("/oauth/introspect", "token", p.refresh, "basic", rs).wantOAuth(t, 200, "")
	if string(r.raw) != `{"active":false}` {
		t.Fatalf("an idle-expired refresh token: %s", r.raw)
	}
}

// forged changes a character in the middle of a JWS's signature, never in its
// last character's unused padding bits, so the signature surely breaks.
func forged(jws string) string {
	i := strings.LastIndexByte(jws, '.') + 10
	c := byte('A')
	if jws[i] == 'A' {
		c = 'B'
	}
	return jws[:i] + string(c) + jws[i+1:]
}

// An issuer with a path has its metadata where RFC 8414 §3.1 puts it: the
// well-known prefix followed by the issuer's path.
func TestOAuthMetadataIssuerPath(t *testing.T) {
	e := newEnv(t, func(s *setup) { s.cfg = func(c *latchkey.Config) { c.Issuer = "https://auth.example/tenant/a/" } })
	for _, path := range []string{"/.well-known/oauth-authorization-server/tenant/a", "/.well-known/oauth-authorization-server"} {
		r := e.call("GET", path, "", "").want(t, 200, "")
		if r.str("issuer") != "https://auth.example/tenant/a/" || r.str("token_endpoint") != "https://auth.example/tenant/a/oauth/token" {
			t.Fatalf("GET %s: %s", path, r.raw)
		}
	}
	e.call("GET", "/.well-known/oauth-authorization-server/tenant", "", "").want(t, 404, "not_found")
	// Issuers no route can hold get none, and the server still starts; one
	// with a path says so in the log.
	for iss, warns := range map[string]bool{"latchkey": false, "https://a.example": false, "https://a.example/x y": true,
		"https://a.example/{x}": true, "https://a.example/a/../b": true, "https://a.example/%2e": true} {
		var logs bytes.Buffer
		e := newEnv(t, func(s *setup) {
			s.cfg = func(c *latchkey.Config) { c.Issuer = iss }
			s.logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		// Read before any request: the server logs requests as they end.
		if got := strings.Contains(logs.String(), "no RFC 8414 metadata route"); got != warns {
			t.Errorf("issuer %q: warned %v, want %v; log:\n%s", iss, got, warns, logs.String())
		}
		if r := e.call("GET", "/.well-known/oauth-authorization-server", "", "").want(t, 200, ""); r.str("issuer") != iss {
			t.Fatalf("issuer %q: metadata %s", iss, r.raw)
		}
	}
}

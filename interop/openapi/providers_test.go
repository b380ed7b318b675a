package openapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/interop/internal/testop"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/store/sqlite"
)

// RFC 8693 names.
const (
	tokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	idTokenType     = "urn:ietf:params:oauth:token-type:id_token"
	accessTokenType = "urn:ietf:params:oauth:token-type:access_token"
)

// startOP starts a real OpenID provider with the public client "native"
// (whose second redirect URI is latchkey's callback on any loopback port)
// and the users alice, bob, carol and dave.
func startOP(t testing.TB) *testop.OP {
	t.Helper()
	var users []testop.User
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		users = append(users, testop.User{Username: name, Password: name + " password", Email: name + "@example.com"})
	}
	return testop.Start(t, testop.Options{
		Clients: []testop.Client{{ID: "native", RedirectURIs: []string{testop.DefaultRedirectURI, "http://127.0.0.1/account/callback"}}},
		Users:   users,
	})
}

// startWithProvider starts latchkey with op as its provider "example". warm
// fetches the provider's documents first, as `latchkey serve` does at start.
func startWithProvider(t testing.TB, op *testop.OP, o servertest.Options, warm bool) *servertest.Env {
	t.Helper()
	return startWithProviderAs(t, "example", op, o, warm)
}

// startWithProviderAs is startWithProvider with the provider called name.
func startWithProviderAs(t testing.TB, name string, op *testop.OP, o servertest.Options, warm bool) *servertest.Env {
	t.Helper()
	o.Providers = func(t testing.TB, issuer string) []*provider.Provider {
		p, err := provider.New(provider.Config{Name: name, Issuer: op.Issuer(), ClientIDs: []string{"native"}}, provider.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if warm {
			p.Warm(context.Background())
		}
		return []*provider.Provider{p}
	}
	return servertest.Start(t, o)
}

// TestOpenAPIMatchesProviderResponses is TestOpenAPIMatchesResponses for a
// server with an OpenID Connect provider: sign-in with its ID tokens (POST
// /login, the token exchange), the identities API and the account page's
// browser flow, against a real provider.
func TestOpenAPIMatchesProviderResponses(t *testing.T) {
	op := startOP(t)
	e := startWithProvider(t, op, servertest.Options{ProviderSignup: true}, true)
	c := newOASChecker(t, e)
	c.providers = true
	ctForm := []string{"Content-Type", "application/x-www-form-urlencoded"}
	login := func(t *testing.T, user, nonce string) pair {
		t.Helper()
		body := `{"provider":"example","id_token":"` + op.IDToken(t, "native", user, hashed(nonce)) + `"`
		if nonce != "" {
			body += `,"nonce":"` + nonce + `"`
		}
		r := c.check(t, c.req("POST", "/login", body+"}"))
		wantStatus(t, r, 200, "")
		return pairOf(t, r)
	}

	t.Run("routing", func(t *testing.T) {
		for p, item := range c.doc.Paths.Map() {
			if providersOnly(item) {
				wantStatus(t, c.check(t, c.req("PATCH", concrete(p), "")), 405, "method_not_allowed")
			}
		}
	})

	t.Run("login", func(t *testing.T) {
		// The token carries the hex SHA-256 of the nonce the app sends.
		tok := op.IDToken(t, "native", "alice", hashed("n-1"))
		r := c.check(t, c.req("POST", "/login", `{"provider":"example","id_token":"`+tok+`","nonce":"n-1"}`))
		wantStatus(t, r, 200, "")
		if p := pairOf(t, r); p.access == "" || p.refresh == "" {
			t.Errorf("provider login body = %s", bodyOf(t, r))
		}
		// The same token again: single use.
		r = c.check(t, c.req("POST", "/login", `{"provider":"example","id_token":"`+tok+`","nonce":"n-1"}`))
		wantStatus(t, r, 401, "invalid_token")
		if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, "used already") {
			t.Errorf("replayed ID token: WWW-Authenticate = %q", ch)
		}
		// The nonce must match; the token's own nonce sent back does not;
		// a token without one takes none.
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "alice", hashed("n-2"))+`","nonce":"other"}`)), 401, "invalid_token")
		own := hashed("n-4")
		r = c.check(t, c.req("POST", "/login", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "alice", own)+`","nonce":"`+own+`"}`))
		wantStatus(t, r, 401, "invalid_token")
		if m, _ := jsonOf(t, r)["message"].(string); !strings.Contains(m, "nonce does not match") {
			t.Errorf("the token's own nonce sent back: %q", m)
		}
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "alice", "")+`","nonce":"n-3"}`)), 401, "invalid_token")
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"provider":"example","id_token":"garbage"}`)), 401, "invalid_token")
		// The grant form selects the same grant; cookie mode works as with a password.
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"grant":"id_token","provider":"example","id_token":"`+op.IDToken(t, "native", "alice", "")+`"}`)), 200, "")
		j := servertest.NewJar(nil)
		r = c.browse(t, j, c.req("POST", "/login", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "alice", "")+`","cookies":true}`))
		wantStatus(t, r, 200, "")
		if b := jsonOf(t, r); b["access_token"] != nil || j.Get("__Host-lk_access") == "" {
			t.Errorf("cookie login: body %v, cookies %v", b, j)
		}
		// Malformed requests.
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"provider":"nope","id_token":"`+op.IDToken(t, "native", "alice", "")+`"}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"provider":"example"}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"id_token":"x.y.z"}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"provider":"example","id_token":5}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"provider":"Example!","id_token":"x.y.z"}`)), 400, "invalid_request")
	})

	t.Run("sign-up closed", func(t *testing.T) {
		closed := startWithProvider(t, op, servertest.Options{ProviderSignup: false}, true)
		cc := newOASChecker(t, closed)
		cc.providers = true
		wantStatus(t, cc.check(t, cc.req("POST", "/login", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "bob", "")+`"}`)), 403, "registration_closed")
	})

	t.Run("provider down", func(t *testing.T) {
		down := startOP(t)
		tok := down.IDToken(t, "native", "alice", "")
		down.SetDown(true)
		de := startWithProvider(t, down, servertest.Options{ProviderSignup: true}, false)
		dc := newOASChecker(t, de)
		dc.providers = true
		wantStatus(t, dc.check(t, dc.req("POST", "/login", `{"provider":"example","id_token":"`+tok+`"}`)), 503, "unavailable")
		form := url.Values{"grant_type": {tokenExchange}, "client_id": {"app"}, "subject_token": {tok}, "subject_token_type": {idTokenType}}.Encode()
		wantStatus(t, dc.check(t, dc.req("POST", "/oauth/token", form, ctForm...)), 503, "temporarily_unavailable")
		// Without the provider's discovery document, no browser flow yet;
		// once the provider is back, the flow starts.
		wantStatus(t, dc.check(t, dc.req("GET", "/account/signin/example", "")), 503, "")
		dj := servertest.NewJar(nil)
		dc.browse(t, dj, dc.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
		wantStatus(t, linkStart(t, dc, dj, "example"), 503, "")
		down.SetDown(false)
		deadline := time.Now().Add(15 * time.Second)
		for {
			r := dc.check(t, dc.req("GET", "/account/signin/example", ""))
			if r.StatusCode == 302 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the browser sign-in did not come back with the provider: %d", r.StatusCode)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	t.Run("token exchange", func(t *testing.T) {
		form := func(kv ...string) string {
			v := url.Values{"grant_type": {tokenExchange}, "client_id": {"app"}, "subject_token_type": {idTokenType}}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return v.Encode()
		}
		tok := op.IDToken(t, "native", "alice", "")
		r := c.check(t, c.req("POST", "/oauth/token", form("subject_token", tok), ctForm...))
		wantStatus(t, r, 200, "")
		if got := jsonOf(t, r)["issued_token_type"]; got != accessTokenType {
			t.Errorf("issued_token_type = %v", got)
		}
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("subject_token", tok), ctForm...)), 400, "invalid_grant")
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("subject_token", "garbage"), ctForm...)), 400, "invalid_grant")
		r = c.check(t, c.req("POST", "/oauth/token", form("subject_token", op.IDToken(t, "native", "alice", hashed("n")), "nonce", "n", "provider", "example",
			"requested_token_type", accessTokenType, "audience", "latchkey", "resource", servertest.Issuer, "scope", "account"), ctForm...))
		wantStatus(t, r, 200, "")
		if got := jsonOf(t, r)["issued_token_type"]; got != accessTokenType {
			t.Errorf("issued_token_type = %v", got)
		}
		tok = op.IDToken(t, "native", "alice", "")
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("subject_token", tok, "audience", "elsewhere"), ctForm...)), 400, "invalid_target")
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("subject_token", tok, "resource", "https://elsewhere.example"), ctForm...)), 400, "invalid_target")
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("subject_token", tok, "provider", "nope"), ctForm...)), 400, "invalid_request")
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("subject_token", tok, "actor_token", "x", "actor_token_type", idTokenType), ctForm...)), 400, "invalid_request")
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form(), ctForm...)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/oauth/token", form("subject_token", tok, "subject_token_type", accessTokenType), ctForm...)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/oauth/token", form("subject_token", tok, "requested_token_type", idTokenType), ctForm...)), 400, "invalid_request")
		// The token was never spent: it still signs in.
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("subject_token", tok), ctForm...)), 200, "")
		own := hashed("n-5")
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("subject_token", op.IDToken(t, "native", "alice", own), "nonce", own), ctForm...)), 400, "invalid_grant")

		md := jsonOf(t, c.check(t, c.req("GET", "/.well-known/oauth-authorization-server", "")))
		if gts := strs(md["grant_types_supported"]); !slices.Contains(gts, tokenExchange) {
			t.Errorf("grant_types_supported with providers = %v", gts)
		}
	})

	t.Run("token exchange with sign-up closed", func(t *testing.T) {
		closed := startWithProvider(t, op, servertest.Options{ProviderSignup: false}, true)
		cc := newOASChecker(t, closed)
		cc.providers = true
		form := url.Values{"grant_type": {tokenExchange}, "client_id": {"app"}, "subject_token": {op.IDToken(t, "native", "carol", "")},
			"subject_token_type": {idTokenType}}.Encode()
		r := cc.check(t, cc.req("POST", "/oauth/token", form, ctForm...))
		wantStatus(t, r, 400, "invalid_grant")
	})

	t.Run("identities", func(t *testing.T) {
		a := login(t, "alice", "")
		auth := []string{"Authorization", "Bearer " + a.access}
		r := c.check(t, c.req("GET", "/identities", "", auth...))
		wantStatus(t, r, 200, "")
		ids := identitiesOf(t, r)
		if len(ids) != 1 || ids[0]["provider"] != "example" || ids[0]["email"] != "alice@example.com" {
			t.Fatalf("alice's identities = %v", ids)
		}
		aliceID := ids[0]["id"].(string)
		wantStatus(t, c.check(t, c.req("HEAD", "/identities", "", auth...)), 200, "")
		wantStatus(t, c.check(t, c.req("GET", "/identities", "")), 401, "missing_token")
		wantStatus(t, c.check(t, c.req("HEAD", "/identities", "")), 401, "")
		wantStatus(t, c.check(t, c.req("GET", "/identities", "", "Authorization", "Bearer garbage")), 401, "invalid_token")

		// Only a fresh token links.
		refreshed := pairOf(t, c.check(t, c.req("POST", "/refresh", "", "Authorization", "Bearer "+a.refresh)))
		link := func(user, nonce string) string {
			b := `{"provider":"example","id_token":"` + op.IDToken(t, "native", user, hashed(nonce)) + `"`
			if nonce != "" {
				b += `,"nonce":"` + nonce + `"`
			}
			return b + "}"
		}
		wantStatus(t, c.check(t, c.req("POST", "/identities", link("bob", ""), "Authorization", "Bearer "+refreshed.access)), 403, "fresh_token_required")
		wantStatus(t, c.check(t, c.req("POST", "/identities", link("bob", ""))), 401, "missing_token")
		a = login(t, "alice", "")
		auth = []string{"Authorization", "Bearer " + a.access}
		// alice's account has no password: its one identity stays.
		wantStatus(t, c.check(t, c.req("DELETE", "/identities/"+aliceID, "", auth...)), 400, "invalid_request")

		bobBody := link("bob", "n")
		r = c.check(t, c.req("POST", "/identities", bobBody, auth...))
		wantStatus(t, r, 201, "")
		bobID, _ := jsonOf(t, r)["id"].(string)
		wantStatus(t, c.check(t, c.req("POST", "/identities", bobBody, auth...)), 401, "invalid_token")
		r = c.check(t, c.req("POST", "/identities", link("bob", ""), auth...)) // linked here already
		wantStatus(t, r, 201, "")
		if id := jsonOf(t, r)["id"]; id != bobID {
			t.Errorf("linking bob again made %v, want %s", id, bobID)
		}
		wantStatus(t, c.check(t, c.req("POST", "/identities", `{"provider":"nope","id_token":"x.y.z"}`, auth...)), 400, "invalid_request")
		wantStatus(t, c.check(t, c.req("POST", "/identities", `{"provider":"example","id_token":"garbage"}`, auth...)), 401, "invalid_token")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/identities", `{"provider":"example"}`, auth...)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/identities", `{`, auth...)), 400, "invalid_request")
		// bob is alice's now: another account cannot take him.
		test := c.login(t)
		wantStatus(t, c.check(t, c.req("POST", "/identities", link("bob", ""), "Authorization", "Bearer "+test.access)), 400, "invalid_request")
		// An account with a password can drop its only identity.
		r = c.check(t, c.req("POST", "/identities", link("dave", ""), "Authorization", "Bearer "+test.access))
		wantStatus(t, r, 201, "")
		daveID, _ := jsonOf(t, r)["id"].(string)
		wantStatus(t, c.check(t, c.req("DELETE", "/identities/"+daveID, "", "Authorization", "Bearer "+test.access)), 204, "")

		if ids := identitiesOf(t, c.check(t, c.req("GET", "/identities", "", auth...))); len(ids) != 2 {
			t.Errorf("alice's identities after a link = %v", ids)
		}
		wantStatus(t, c.check(t, c.req("DELETE", "/identities/"+aliceID, "", "Authorization", "Bearer "+test.access)), 404, "not_found")
		wantStatus(t, c.check(t, c.req("DELETE", "/identities/"+aliceID, "", auth...)), 204, "")
		wantStatus(t, c.check(t, c.req("DELETE", "/identities/"+aliceID, "", auth...)), 404, "not_found")
		wantStatus(t, c.check(t, c.req("DELETE", "/identities/nonexistent", "", auth...)), 404, "not_found")
		wantStatus(t, c.check(t, c.req("DELETE", "/identities/"+bobID, "")), 401, "missing_token")
		wantStatus(t, c.check(t, c.req("DELETE", "/identities/"+bobID, "", auth...)), 400, "invalid_request")

		// Cookies need the CSRF header.
		j := servertest.NewJar(nil)
		c.browse(t, j, c.req("POST", "/login", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "bob", "")+`","cookies":true}`))
		wantStatus(t, c.browse(t, j, c.req("GET", "/identities", "")), 200, "")
		wantStatus(t, c.browse(t, j, c.req("DELETE", "/identities/"+bobID, "")), 403, "csrf_failed")
		wantStatus(t, c.browse(t, j, c.req("POST", "/identities", link("carol", ""))), 403, "csrf_failed")
		wantStatus(t, c.browse(t, j, c.req("POST", "/identities", link("carol", ""), "X-CSRF-Token", j.Get("__Host-lk_csrf"))), 201, "")
		wantStatus(t, c.browse(t, j, c.req("DELETE", "/identities/"+bobID, "", "X-CSRF-Token", j.Get("__Host-lk_csrf"))), 204, "")
	})

	t.Run("identities by issuer", func(t *testing.T) {
		// Identities are kept by issuer: a server on the same store shows
		// them by its own name for that issuer, or by the issuer when it has
		// no provider with it.
		first := startWithProvider(t, op, servertest.Options{}, true)
		fc := newOASChecker(t, first)
		fc.providers = true
		r := fc.check(t, fc.req("POST", "/identities", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "dave", "")+`"}`,
			"Authorization", "Bearer "+fc.login(t).access))
		wantStatus(t, r, 201, "")
		shared := func(t testing.TB) servertest.Store {
			db, err := sqlite.Open(context.Background(), first.DBPath)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		other := startOP(t)
		for _, tc := range []struct {
			name string
			op   *testop.OP
			want string
		}{
			{"renamed", op, "renamed"},
			{"example", other, op.Issuer()},
		} {
			ne := startWithProviderAs(t, tc.name, tc.op, servertest.Options{Store: shared, Secret: first.Secret}, false)
			nc := newOASChecker(t, ne)
			nc.providers = true
			ids := identitiesOf(t, nc.check(t, nc.req("GET", "/identities", "", "Authorization", "Bearer "+nc.login(t).access)))
			if len(ids) != 1 || ids[0]["provider"] != tc.want {
				t.Errorf("%s at %s: identities %v, want provider %q", tc.name, tc.op.Issuer(), ids, tc.want)
			}
		}
	})

	t.Run("account page", func(t *testing.T) {
		j := servertest.NewJar(nil)
		r := c.browse(t, j, c.req("GET", "/account", ""))
		if !strings.Contains(string(bodyOf(t, r)), `id="signin-example"`) {
			t.Errorf("the sign-in form has no provider button: %.300s", bodyOf(t, r))
		}
		r = c.browse(t, j, c.req("GET", "/account/signin/example", ""))
		wantStatus(t, r, 302, "")
		if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, op.Issuer()+"/") {
			t.Errorf("sign-in Location = %q", loc)
		}
		if j.Get("__Host-lk_signin") == "" {
			t.Errorf("the sign-in set no flow cookie: %v", r.Header["Set-Cookie"])
		}
		wantStatus(t, c.browse(t, j, c.req("HEAD", "/account/signin/example", "")), 302, "")
		wantStatus(t, c.browse(t, j, c.req("GET", "/account/signin/nope", "")), 404, "")
		wantStatus(t, c.browse(t, j, c.req("HEAD", "/account/signin/nope", "")), 404, "")
		// A link another site could send only signs in, and not even that
		// when it asks for a link.
		r = c.browse(t, j, c.req("GET", "/account/signin/example?link=1", ""))
		wantStatus(t, r, 400, "")
		if b := string(bodyOf(t, r)); !strings.Contains(b, "Link button") {
			t.Errorf("GET with link: %.300s", b)
		}
		wantStatus(t, c.browse(t, j, c.req("HEAD", "/account/signin/example?link=", "")), 400, "")
		// A callback whose state does not match the flow, and one without a flow.
		wantStatus(t, c.browse(t, j, c.req("GET", "/account/callback?state=forged&code=x", "")), 400, "")
		if j.Get("__Host-lk_signin") != "" {
			t.Error("a failed callback left the flow cookie")
		}
		wantStatus(t, c.browse(t, j, c.req("GET", "/account/callback", "")), 400, "")
		wantStatus(t, c.check(t, c.req("GET", "/account/callback?state=x&code=y", "")), 400, "")
		wantStatus(t, c.check(t, c.req("HEAD", "/account/callback", "")), 400, "")

		// Linking starts with the account page's form: a same-origin post
		// with the CSRF token, from a signed-in browser whose sign-in is recent.
		r = c.check(t, c.req("POST", "/account/signin/example", "csrf_token=x", ctForm...))
		wantStatus(t, r, 401, "missing_token")
		if ch := r.Header.Get("WWW-Authenticate"); ch != `Bearer realm="latchkey"` {
			t.Errorf("link start without a session: WWW-Authenticate = %q", ch)
		}
		wantStatus(t, c.checkOutside(t, c.req("POST", "/account/signin/example", `{`)), 400, "invalid_request")
		stale := servertest.NewJar(nil)
		c.browse(t, stale, c.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
		wantStatus(t, c.browse(t, stale, c.req("POST", "/account/signin/example", "x=1", ctForm...)), 403, "csrf_failed")
		wantStatus(t, linkStart(t, c, stale, "example", "Sec-Fetch-Site", "cross-site"), 403, "csrf_failed")
		r = linkStart(t, c, stale, "example")
		wantStatus(t, r, 200, "")
		if to := continueURL(t, r); !strings.HasPrefix(to, op.Issuer()+"/") {
			t.Errorf("the link goes on to %q", to)
		}
		if stale.Get("__Host-lk_signin") == "" || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("link start: flow cookie %q, headers %v", stale.Get("__Host-lk_signin"), r.Header)
		}
		// A refreshed token of a session begun moments ago will do; one of
		// a session begun a while ago will not.
		wantStatus(t, c.browse(t, stale, c.req("POST", "/refresh", "", "X-CSRF-Token", stale.Get("__Host-lk_csrf"))), 200, "")
		wantStatus(t, linkStart(t, c, stale, "example"), 200, "")
		e.Clock.Add(11 * time.Minute)
		r = linkStart(t, c, stale, "example")
		wantStatus(t, r, 403, "")
		if b := string(bodyOf(t, r)); !strings.Contains(b, "recent sign-in") || !strings.Contains(b, `id="username"`) {
			t.Errorf("link start of an old session: %.300s", b)
		}
		recent := servertest.NewJar(nil)
		c.browse(t, recent, c.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
		wantStatus(t, linkStart(t, c, recent, "nope"), 404, "")
		wantStatus(t, linkStart(t, c, recent, "example"), 200, "")

		// The unlink form refuses what the other forms refuse.
		wantStatus(t, c.check(t, c.req("POST", "/account/identities/0123456789abcdef0123456789abcdef/unlink", "csrf_token=x", ctForm...)), 401, "missing_token")
		wantStatus(t, c.browse(t, stale, c.req("POST", "/account/identities/0123456789abcdef0123456789abcdef/unlink", "x=1", ctForm...)), 403, "csrf_failed")
		csrf := url.Values{"csrf_token": {stale.Get("__Host-lk_csrf")}}.Encode()
		wantStatus(t, c.browse(t, stale, c.req("POST", "/account/identities/0123456789abcdef0123456789abcdef/unlink", csrf, ctForm...)), 404, "")
		wantStatus(t, c.browse(t, stale, c.req("POST", "/account/identities/0123456789abcdef0123456789abcdef/unlink", csrf, append(slices.Clone(ctForm), "Sec-Fetch-Site", "cross-site")...)), 403, "csrf_failed")
	})

	t.Run("browser flow", func(t *testing.T) {
		// The provider sends the browser back under the issuer: the server's
		// own URL here.
		be := startWithProvider(t, op, servertest.Options{ProviderSignup: true, IssuerIsURL: true}, true)
		bc := newOASChecker(t, be)
		bc.providers = true
		ctForm := []string{"Content-Type", "application/x-www-form-urlencoded"}
		authorize := func(t *testing.T, at, user string) *url.URL {
			t.Helper()
			back := op.Authorize(t, at, user)
			if !strings.HasPrefix(back.String(), be.URL+"/account/callback?") {
				t.Fatalf("the provider sent the browser to %s", back)
			}
			return back
		}
		signIn := func(t *testing.T, j *servertest.Jar, user string) *url.URL {
			t.Helper()
			r := bc.browse(t, j, bc.req("GET", "/account/signin/example", ""))
			wantStatus(t, r, 302, "")
			return authorize(t, r.Header.Get("Location"), user)
		}
		link := func(t *testing.T, j *servertest.Jar, user string) *url.URL {
			t.Helper()
			r := linkStart(t, bc, j, "example")
			wantStatus(t, r, 200, "")
			return authorize(t, continueURL(t, r), user)
		}
		j := servertest.NewJar(nil)
		// The provider refuses: the page says so, with the challenge of a 401.
		r := bc.browse(t, j, bc.req("GET", "/account/signin/example", ""))
		state, _ := url.ParseQuery(strings.SplitN(r.Header.Get("Location"), "?", 2)[1])
		r = bc.browse(t, j, bc.req("GET", "/account/callback?"+url.Values{"state": {state.Get("state")}, "error": {"access_denied"}}.Encode(), ""))
		wantStatus(t, r, 401, "")
		if ch := r.Header.Get("WWW-Authenticate"); ch != `Bearer realm="latchkey"` {
			t.Errorf("the 401 page: WWW-Authenticate = %q", ch)
		}

		back := signIn(t, j, "carol")
		r = bc.browse(t, j, bc.req("GET", back.RequestURI(), ""))
		wantStatus(t, r, 303, "")
		if r.Header.Get("Location") != "/account" || j.Get("__Host-lk_access") == "" || j.Get("__Host-lk_signin") != "" {
			t.Fatalf("callback: Location %q, cookies %v", r.Header.Get("Location"), j)
		}
		// The code is spent.
		wantStatus(t, bc.browse(t, servertest.NewJar(nil), bc.req("GET", back.RequestURI(), "")), 400, "")

		// The provider sign-in is recent: it links.
		back = link(t, j, "dave")
		r = bc.browse(t, j, bc.req("GET", back.RequestURI(), ""))
		wantStatus(t, r, 303, "")
		if r.Header.Get("Location") != "/account?done=linked" {
			t.Fatalf("link callback: Location %q", r.Header.Get("Location"))
		}
		r = bc.browse(t, j, bc.req("GET", "/account?done=linked", ""))
		if b := string(bodyOf(t, r)); !strings.Contains(b, `id="identities"`) || !strings.Contains(b, `id="link-example"`) {
			t.Errorf("the account page lists no identities or no Link button: %.300s", b)
		}
		ids := identitiesOf(t, bc.browse(t, j, bc.req("GET", "/identities", "")))
		if len(ids) != 2 {
			t.Fatalf("identities after the browser link = %v", ids)
		}
		// A link of an identity that is another account's fails on the page.
		other := servertest.NewJar(nil)
		bc.browse(t, other, bc.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
		back = link(t, other, "dave")
		wantStatus(t, bc.browse(t, other, bc.req("GET", back.RequestURI(), "")), 400, "")
		// A link finishes only in a browser signed in as the user who
		// started it: not in one without a session, nor as another user.
		back = link(t, other, "bob")
		wantStatus(t, bc.browse(t, servertest.NewJar(map[string]string{"__Host-lk_signin": other.Get("__Host-lk_signin")}), bc.req("GET", back.RequestURI(), "")), 400, "")
		back = link(t, other, "bob")
		j.Set("__Host-lk_signin", other.Get("__Host-lk_signin"))
		wantStatus(t, bc.browse(t, j, bc.req("GET", back.RequestURI(), "")), 400, "")

		csrf := url.Values{"csrf_token": {j.Get("__Host-lk_csrf")}}.Encode()
		r = bc.browse(t, j, bc.req("POST", "/account/identities/"+ids[0]["id"].(string)+"/unlink", csrf, ctForm...))
		wantStatus(t, r, 303, "")
		wantStatus(t, bc.browse(t, j, bc.req("GET", r.Header.Get("Location"), "")), 200, "")
		// The last one stays.
		wantStatus(t, bc.browse(t, j, bc.req("POST", "/account/identities/"+ids[1]["id"].(string)+"/unlink", csrf, ctForm...)), 400, "")
		wantStatus(t, bc.browse(t, j, bc.req("POST", "/account/identities/"+ids[0]["id"].(string)+"/unlink", csrf, ctForm...)), 404, "")
	})
}

// linkStart posts the account page's Link form for provider with the
// browser j's cookies and CSRF token (and the headers hdr).
func linkStart(t testing.TB, c *oasChecker, j *servertest.Jar, provider string, hdr ...string) *http.Response {
	t.Helper()
	body := url.Values{"csrf_token": {j.Get("__Host-lk_csrf")}}.Encode()
	return c.browse(t, j, c.req("POST", "/account/signin/"+provider, body, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...))
}

// continueURL is where the page that POST /account/signin/{provider}
// answers sends the browser: its meta refresh, which its continue link
// must agree with.
func continueURL(t testing.TB, r *http.Response) string {
	t.Helper()
	b := string(bodyOf(t, r))
	meta := regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`).FindStringSubmatch(b)
	link := regexp.MustCompile(`<a id="continue" href="([^"]+)">`).FindStringSubmatch(b)
	if meta == nil || link == nil || meta[1] != link[1] {
		t.Fatalf("the continue page: %.2000s", b)
	}
	return html.UnescapeString(link[1])
}

// hashed is the nonce as a native SDK puts it in the ID token by default: its
// hex SHA-256 ("" for no nonce).
func hashed(nonce string) string {
	if nonce == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
}

// identitiesOf is the list of a GET /identities response.
func identitiesOf(t testing.TB, r *http.Response) []map[string]any {
	t.Helper()
	wantStatus(t, r, 200, "")
	var out []map[string]any
	list, _ := jsonOf(t, r)["identities"].([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}

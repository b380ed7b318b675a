package server_test

import (
	"crypto"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/server"
)

func withDPoP(c server.DPoPConfig) func(*setup) {
	return func(s *setup) { s.dpop = c }
}

// dpopClient holds a DPoP key and the server's latest nonce, as a client
// does; proof makes a proof for one request.
type dpopClient struct {
	t     *testing.T
	e     *env
	key   crypto.Signer
	nonce string
}

func newDPoPClient(t *testing.T, e *env) *dpopClient {
	key, err := dpop.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &dpopClient{t: t, e: e, key: key}
}

func (c *dpopClient) proof(method, path, accessToken string) string {
	c.t.Helper()
	p, err := dpop.NewProof(c.key, dpop.Params{Method: method, URL: c.e.url + path, Nonce: c.nonce, AccessToken: accessToken})
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// call sends a request with a fresh proof (and the DPoP scheme for
// accessToken), then learns the nonce of the answer.
func (c *dpopClient) call(method, path, accessToken, body string) response {
	c.t.Helper()
	hdr := []string{"DPoP", c.proof(method, path, accessToken)}
	if accessToken != "" {
		hdr = append(hdr, "Authorization", "DPoP "+accessToken)
	}
	r := c.e.call(method, path, "", body, hdr...)
	if n := r.header.Get("DPoP-Nonce"); n != "" {
		c.nonce = n
	}
	return r
}

const testLogin = `{"username":"test","password":"test"}`

// The whole first-party life of a DPoP session over HTTP: the nonce dance,
// a bound pair, protected requests with the DPoP scheme, a refresh by the
// same key, and every way a thief or a mistake is refused.
func TestDPoPFirstParty(t *testing.T) {
	e := newEnv(t)
	c := newDPoPClient(t, e)

	// Without the nonce: 400 use_dpop_nonce, and the nonce to use.
	c.call("POST", "/login", "", testLogin).want(t, 400, "use_dpop_nonce")
	if c.nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	r := c.call("POST", "/login", "", testLogin).want(t, 200, "")
	if r.str("token_type") != "DPoP" {
		t.Fatalf("token_type %q, want DPoP", r.str("token_type"))
	}
	access, refresh := r.str("access_token"), r.str("refresh_token")

	c.call("GET", "/me", access, "").want(t, 200, "")
	// The same token as a plain Bearer token, or with a proof by another key,
	// or without ath, or replayed: refused with a DPoP challenge.
	r = e.call("GET", "/me", access, "").want(t, 401, "invalid_token")
	wantDPoPChallenge(t, r, "invalid_token")
	thief := newDPoPClient(t, e)
	r = thief.call("GET", "/me", access, "").want(t, 401, "invalid_token")
	wantDPoPChallenge(t, r, "invalid_token")
	noAth := c.proof("GET", "/me", "")
	r = e.call("GET", "/me", "", "", "Authorization", "DPoP "+access, "DPoP", noAth).want(t, 401, "invalid_dpop_proof")
	wantDPoPChallenge(t, r, "invalid_dpop_proof")
	once := c.proof("GET", "/me", access)
	e.call("GET", "/me", "", "", "Authorization", "DPoP "+access, "DPoP", once).want(t, 200, "")
	r = e.call("GET", "/me", "", "", "Authorization", "DPoP "+access, "DPoP", once).want(t, 401, "invalid_dpop_proof")
	wantDPoPChallenge(t, r, "invalid_dpop_proof")
	// A proof for another method or URL.
	e.call("GET", "/me", "", "", "Authorization", "DPoP "+access, "DPoP", c.proof("POST", "/me", access)).want(t, 401, "invalid_dpop_proof")
	e.call("GET", "/me", "", "", "Authorization", "DPoP "+access, "DPoP", c.proof("GET", "/protected", access)).want(t, 401, "invalid_dpop_proof")

	// Refresh: the thief with the refresh token but not the key changes
	// nothing; the owner refreshes.
	rt := `{"refresh_token":"` + refresh + `"}`
	e.call("POST", "/refresh", "", rt).want(t, 400, "invalid_dpop_proof")
	thief.call("POST", "/refresh", "", rt)
	thief.call("POST", "/refresh", "", rt).want(t, 400, "invalid_dpop_proof")
	r = c.call("POST", "/refresh", "", rt).want(t, 200, "")
	if r.str("token_type") != "DPoP" || r.str("refresh_token") == refresh {
		t.Fatalf("refresh by the owner: %s", r.raw)
	}
	c.call("GET", "/me", r.str("access_token"), "").want(t, 200, "")
}

// wantDPoPChallenge checks an RFC 9449 §7.1 challenge with this error.
func wantDPoPChallenge(t *testing.T, r response, code string) {
	t.Helper()
	h := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, "DPoP ") || !strings.Contains(h, `error="`+code+`"`) {
		t.Errorf("WWW-Authenticate %q, want a DPoP challenge with error=%q", h, code)
	}
}

// Unbound sessions keep working as Bearer, and an unbound token cannot be
// dressed up as a DPoP one.
func TestDPoPBearerUnchanged(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/login", "", testLogin).want(t, 200, "")
	if r.str("token_type") != "Bearer" {
		t.Fatalf("token_type %q", r.str("token_type"))
	}
	access := r.str("access_token")
	e.call("GET", "/me", access, "").want(t, 200, "")
	c := newDPoPClient(t, e)
	c.call("GET", "/me", access, "").want(t, 401, "invalid_token")
	// Cookie mode and DPoP do not combine.
	c.call("POST", "/login", "", `{"username":"test","password":"test","cookies":true}`).want(t, 400, "invalid_request")
}

// --dpop-required: a sign-in without a proof is refused; --dpop-nonce=false
// accepts a proof made without asking for a nonce.
func TestDPoPRequiredAndNoNonce(t *testing.T) {
	e := newEnv(t, withDPoP(server.DPoPConfig{Required: true, NoNonce: true}))
	r := e.call("POST", "/login", "", testLogin).want(t, 400, "invalid_dpop_proof")
	if r.header.Get("DPoP-Nonce") == "" {
		t.Error("the refusal of a sign-in without a proof carries no nonce")
	}
	c := newDPoPClient(t, e)
	r = c.call("POST", "/login", "", testLogin).want(t, 200, "")
	if r.str("token_type") != "DPoP" {
		t.Fatalf("token_type %q", r.str("token_type"))
	}
	// Cookie sessions are exempt.
	e.call("POST", "/login", "", `{"username":"test","password":"test","cookies":true}`).want(t, 200, "")
}

// OAuth: a DPoP token response, refresh with rotation by the same key, a
// DPoP-required public client, and the metadata.
func TestDPoPOAuth(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.clients.Add(t.Context(), "mobile", oauth.Options{DPoPRequired: true}); err != nil {
		t.Fatal(err)
	}
	c := newDPoPClient(t, e)
	form := func(kv ...string) []string {
		return append([]string{"H:DPoP", c.proof("POST", "/oauth/token", "")}, kv...)
	}
	password := []string{"grant_type", "password", "username", "test", "password", "test"}
	e.oauthCall("/oauth/token", append([]string{"client_id", "mobile"}, password...)...).wantOAuth(t, 400, "invalid_dpop_proof")
	r := e.oauthCall("/oauth/token", append(form("client_id", "mobile"), password...)...).wantOAuth(t, 400, "use_dpop_nonce")
	c.nonce = r.header.Get("DPoP-Nonce")
	r = e.oauthCall("/oauth/token", append(form("client_id", "mobile"), password...)...).wantOAuth(t, 200, "")
	if r.str("token_type") != "DPoP" {
		t.Fatalf("token_type %q", r.str("token_type"))
	}
	refresh := r.str("refresh_token")
	e.oauthCall("/oauth/token", "client_id", "mobile", "grant_type", "refresh_token", "refresh_token", refresh).wantOAuth(t, 400, "invalid_dpop_proof")
	r = e.oauthCall("/oauth/token", append(form("client_id", "mobile"), "grant_type", "refresh_token", "refresh_token", refresh)...).wantOAuth(t, 200, "")
	if r.str("token_type") != "DPoP" || r.str("refresh_token") == refresh {
		t.Fatalf("refresh: %v", r.body)
	}
	// A client without the requirement still gets Bearer tokens without a proof.
	e.oauthCall("/oauth/token", append([]string{"client_id", "app"}, password...)...).wantOAuth(t, 200, "")

	m := e.call("GET", "/.well-known/oauth-authorization-server", "", "").want(t, 200, "")
	algs, _ := m.body["dpop_signing_alg_values_supported"].([]any)
	if len(algs) == 0 {
		t.Fatalf("metadata has no dpop_signing_alg_values_supported: %s", m.raw)
	}
}

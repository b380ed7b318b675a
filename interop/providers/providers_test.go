package providers_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/interop/internal/testop"
	"github.com/latchkey/latchkey/provider"
)

// Client ids at the test provider: the app's own, and another app's.
const (
	native   = "native"
	otherApp = "other-app"
)

// users of the test provider.
var (
	alice = testop.User{Username: "alice", Password: "alice-password", Subject: "sub-alice", Email: "alice@example.com"}
	bob   = testop.User{Username: "bob", Password: "bob-password", Subject: "sub-bob", Email: "bob@example.com"}
)

// rig is a real OpenID provider and a latchkey server configured with it
// (as "example"), whose provider clock the test controls.
type rig struct {
	op    *testop.OP
	env   *servertest.Env
	clock *clock // the provider's clock: token times, key caching
}

// clock is the real time moved by an offset the test sets: the provider
// sees real tokens issued now, and the test can jump past a cache's
// lifetime or a token's expiry.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

type rigOptions struct {
	signupClosed bool
	store        func(t testing.TB) servertest.Store
	op           *testop.OP // share one provider between servers
	secret       []byte     // share one deployment between servers
	extra        []provider.Config
	rawNonce     bool // the provider's tokens carry the nonce as it is
	browser      bool // the server's URL is its issuer, cookies without __Host-
}

func startOP(t *testing.T) *testop.OP {
	return testop.Start(t, testop.Options{
		// The native client also takes latchkey's browser callback on any
		// loopback port (RFC 8252 §7.3).
		Clients: []testop.Client{{ID: native, RedirectURIs: []string{"http://127.0.0.1/callback", "http://127.0.0.1/account/callback"}}, {ID: otherApp}},
		Users:   []testop.User{alice, bob},
	})
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	r := &rig{op: o.op, clock: &clock{}}
	if r.op == nil {
		r.op = startOP(t)
	}
	r.env = servertest.Start(t, servertest.Options{
		Store:           o.store,
		Secret:          o.secret,
		IssuerIsURL:     o.browser,
		InsecureCookies: o.browser,
		ProviderSignup:  !o.signupClosed,
		Providers: func(t testing.TB, issuer string) []*provider.Provider {
			cfgs := append([]provider.Config{{Name: "example", Issuer: r.op.Issuer(), ClientIDs: []string{native}, RawNonce: o.rawNonce}}, o.extra...)
			var out []*provider.Provider
			for _, c := range cfgs {
				p, err := provider.New(c, provider.Options{Now: r.clock.Now})
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, p)
			}
			return out
		},
	})
	return r
}

// reply is an HTTP answer with its JSON body.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

func do(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &out.body)
	if resp.StatusCode >= 500 && resp.StatusCode != 503 {
		t.Fatalf("%s %s = %d %s", req.Method, req.URL.Path, resp.StatusCode, raw)
	}
	return out
}

func (r *rig) post(t testing.TB, path, bearer string, body any) reply {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", r.env.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, req)
}

func (r *rig) call(t testing.TB, method, path, bearer string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, r.env.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	return do(t, req)
}

// form posts an OAuth form as the public client "app".
func (r *rig) form(t testing.TB, v url.Values) reply {
	t.Helper()
	v.Set("client_id", "app")
	req, _ := http.NewRequest("POST", r.env.URL+"/oauth/token", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// login signs in with an ID token of provider "example".
func (r *rig) login(t testing.TB, idToken, nonce string) reply {
	t.Helper()
	return r.post(t, "/login", "", map[string]string{"provider": "example", "id_token": idToken, "nonce": nonce})
}

func (r *rig) token(t testing.TB, who testop.User, nonce string) string {
	t.Helper()
	return r.op.IDToken(t, native, who.Username, nonce)
}

// hashed is the nonce as a native SDK puts it in the token: its hex SHA-256.
func hashed(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
}

func wantOK(t testing.TB, r reply) {
	t.Helper()
	if r.status != 200 || r.str("access_token") == "" || !strings.HasPrefix(r.str("refresh_token"), "lk_rt_") {
		t.Fatalf("want a token pair, got %d %s", r.status, r.raw)
	}
}

func wantError(t testing.TB, r reply, status int, code, msgPart string) {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, code)
	}
	if msg := r.str("message") + r.str("error_description"); !strings.Contains(msg, msgPart) {
		t.Fatalf("message %q does not say %q", msg, msgPart)
	}
}

func userOf(r reply) string {
	u, _ := r.body["user"].(map[string]any)
	id, _ := u["uuid"].(string)
	return id
}

// A native app signs in with the ID token from the platform's sheet: the
// first time makes an account, later ones find it; the pair refreshes like
// any other.
func TestNativeIDTokenLogin(t *testing.T) {
	r := newRig(t, rigOptions{})
	first := r.login(t, r.token(t, alice, hashed("n-1")), "n-1")
	wantOK(t, first)
	again := r.login(t, r.token(t, alice, ""), "")
	wantOK(t, again)
	if userOf(first) == "" || userOf(first) != userOf(again) {
		t.Fatalf("two sign-ins of one identity gave users %q and %q", userOf(first), userOf(again))
	}
	other := r.login(t, r.token(t, bob, ""), "")
	wantOK(t, other)
	if userOf(other) == userOf(first) {
		t.Fatal("two identities share one account")
	}
	me := r.call(t, "GET", "/me", first.str("access_token"))
	if me.status != 200 || me.str("uuid") != userOf(first) {
		t.Fatalf("/me = %d %s", me.status, me.raw)
	}
	ref := r.post(t, "/refresh", "", map[string]string{"refresh_token": first.str("refresh_token")})
	wantOK(t, ref)
	// The token's own nonce sent back proves nothing: refused.
	own := hashed("n-2")
	wantError(t, r.login(t, r.token(t, alice, own), own), 401, "invalid_token", "nonce does not match")
}

// RFC 8693: an ID token as the subject token, client authentication as for
// the other grants, an access token and a refresh token back.
func TestTokenExchange(t *testing.T) {
	r := newRig(t, rigOptions{})
	res := r.form(t, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {r.token(t, alice, "")}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}})
	if res.status != 200 || res.str("issued_token_type") != "urn:ietf:params:oauth:token-type:access_token" ||
		res.str("token_type") != "Bearer" || res.str("access_token") == "" || res.str("refresh_token") == "" {
		t.Fatalf("token exchange = %d %s", res.status, res.raw)
	}
	ref := r.form(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {res.str("refresh_token")}})
	if ref.status != 200 || ref.str("refresh_token") == "" {
		t.Fatalf("refreshing the exchanged token = %d %s", ref.status, ref.raw)
	}
	wrongType := r.form(t, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {r.token(t, alice, "")}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}})
	wantError(t, wrongType, 400, "invalid_request", "subject_token_type")
	tok := r.token(t, alice, "")
	forged := resign(t, tok, nil, "")
	bad := r.form(t, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {forged}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}})
	wantError(t, bad, 400, "invalid_grant", "signature")
	meta := r.call(t, "GET", "/.well-known/oauth-authorization-server", "")
	if !strings.Contains(meta.raw, "urn:ietf:params:oauth:grant-type:token-exchange") {
		t.Fatalf("metadata does not list token exchange: %s", meta.raw)
	}
}

// parts splits a compact JWS into its decoded header, decoded payload and
// signature.
func parts(t testing.TB, tok string) (map[string]any, map[string]any, string) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	var h, c map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(p[0])
	cb, _ := base64.RawURLEncoding.DecodeString(p[1])
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		t.Fatalf("undecodable token %q", tok)
	}
	return h, c, p[2]
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// resign returns tok's claims, edited, signed by a key of the attacker's
// under kid (the token's own kid when "").
func resign(t testing.TB, tok string, edit func(map[string]any), kid string) string {
	t.Helper()
	h, c, _ := parts(t, tok)
	if edit != nil {
		edit(c)
	}
	if kid == "" {
		kid, _ = h["kid"].(string)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every forged or unfit ID token is 401 invalid_token with a message naming
// the failed check, and never opens a session.
func TestIDTokenRefusals(t *testing.T) {
	r := newRig(t, rigOptions{})
	other := startOP(t) // another issuer, same client ids
	real := func() string { return r.token(t, alice, hashed("nonce-1")) }
	jwks := func() map[string]any {
		resp, err := http.Get(r.op.JWKSURL())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set map[string]any
		json.NewDecoder(resp.Body).Decode(&set)
		return set
	}
	cases := []struct {
		name, token, nonce, says string
	}{
		{"forged signature", resign(t, real(), nil, ""), "nonce-1", "does not verify"},
		{"tampered payload", func() string {
			tok := real()
			p := strings.Split(tok, ".")
			_, c, _ := parts(t, tok)
			c["sub"] = bob.Subject
			return p[0] + "." + b64json(c) + "." + p[2]
		}(), "nonce-1", "does not verify"},
		{"unknown kid", resign(t, real(), nil, "no-such-kid"), "nonce-1", "does not publish"},
		{"alg none", func() string {
			_, c, _ := parts(t, real())
			return b64json(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64json(c) + "."
		}(), "nonce-1", "alg none"},
		{"HMAC keyed with the public key", func() string {
			_, c, _ := parts(t, real())
			n := jwks()["keys"].([]any)[0].(map[string]any)["n"].(string)
			signed := b64json(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + b64json(c)
			m := hmac.New(sha256.New, []byte(n))
			m.Write([]byte(signed))
			return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
		}(), "nonce-1", "HS256"},
		{"wrong issuer", other.IDToken(t, native, alice.Username, hashed("nonce-1")), "nonce-1", "issued by"},
		{"wrong audience", r.op.IDToken(t, otherApp, alice.Username, hashed("nonce-1")), "nonce-1", "audience"},
		{"the token's own nonce sent back", real(), hashed("nonce-1"), "nonce does not match"},
		{"wrong nonce", real(), "nonce-2", "nonce does not match"},
		{"nonce missing from the request", real(), "", "send the nonce"},
		{"nonce missing from the token", r.token(t, alice, ""), "nonce-1", "has none"},
		{"oversized", strings.Repeat("a", 17<<10), "", "larger than"},
		{"garbage", "not-a-token", "", "not a JWT"},
		{"bad base64", "eyJ!.eyJ.abc", "", "base64url"},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, "", "not a JWT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := r.login(t, tc.token, tc.nonce)
			wantError(t, res, 401, "invalid_token", tc.says)
			if !strings.Contains(res.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate = %q", res.header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("replayed", func(t *testing.T) {
		tok := real()
		wantOK(t, r.login(t, tok, "nonce-1"))
		wantError(t, r.login(t, tok, "nonce-1"), 401, "invalid_token", "used already")
	})
	t.Run("expired", func(t *testing.T) {
		tok := real()
		r.clock.Advance(2 * time.Hour) // the provider's tokens live an hour
		defer r.clock.Advance(-2 * time.Hour)
		wantError(t, r.login(t, tok, "nonce-1"), 401, "invalid_token", "expired")
	})
	t.Run("unknown provider", func(t *testing.T) {
		res := r.post(t, "/login", "", map[string]string{"provider": "nope", "id_token": real()})
		wantError(t, res, 400, "invalid_request", "no provider")
	})
	t.Run("missing token", func(t *testing.T) {
		res := r.post(t, "/login", "", map[string]string{"provider": "example"})
		wantError(t, res, 400, "invalid_request", "id_token")
	})
}

// The provider rotates its signing key: tokens under the new key verify
// (an unknown kid refetches the JWKS), tokens under the old one keep
// verifying while it is published, and stop once it is gone and the cache
// has expired.
func TestProviderKeyRotation(t *testing.T) {
	r := newRig(t, rigOptions{})
	wantOK(t, r.login(t, r.token(t, alice, ""), ""))
	oldA, oldB := r.token(t, alice, ""), r.token(t, alice, "")
	r.op.RotateKey()
	wantOK(t, r.login(t, r.token(t, alice, ""), ""))
	wantOK(t, r.login(t, oldA, ""))
	r.op.DropOldKeys()
	r.clock.Advance(10 * time.Minute) // past the JWKS's max-age
	// A stale set answers at once and is refreshed in the background: wait
	// for that fetch, then the dropped key is gone.
	before := r.op.Requests(r.op.JWKSPath())
	wantOK(t, r.login(t, r.token(t, alice, ""), ""))
	for deadline := time.Now().Add(10 * time.Second); r.op.Requests(r.op.JWKSPath()) == before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a stale key set was never refreshed")
		}
	}
	time.Sleep(100 * time.Millisecond) // the fetch's answer is being read
	wantError(t, r.login(t, oldB, ""), 401, "invalid_token", "does not publish")
}

// Keys are cached by the JWKS's headers, and a stream of unknown kids
// refetches at most once per few seconds.
func TestProviderKeyCaching(t *testing.T) {
	r := newRig(t, rigOptions{})
	wantOK(t, r.login(t, r.token(t, alice, ""), ""))
	base := r.op.Requests(r.op.JWKSPath())
	wantOK(t, r.login(t, r.token(t, alice, ""), ""))
	if n := r.op.Requests(r.op.JWKSPath()); n != base {
		t.Fatalf("a cached key set was fetched again (%d -> %d)", base, n)
	}
	for i := range 10 {
		wantError(t, r.login(t, resign(t, r.token(t, alice, ""), nil, "unknown-"+string(rune('a'+i))), ""), 401, "invalid_token", "does not publish")
	}
	if n := r.op.Requests(r.op.JWKSPath()); n > base+1 {
		t.Fatalf("10 unknown kids in a moment fetched the JWKS %d times, want at most 1", n-base)
	}
	afterFlood := r.op.Requests(r.op.JWKSPath())
	r.clock.Advance(6 * time.Second)
	r.login(t, resign(t, r.token(t, alice, ""), nil, "unknown-later"), "")
	if n := r.op.Requests(r.op.JWKSPath()); n != afterFlood+1 {
		t.Fatalf("an unknown kid 6 s after the last refetch fetched the JWKS %d times, want 1", n-afterFlood)
	}
	r.clock.Advance(6 * time.Minute) // past max-age=300
	before := r.op.Requests(r.op.JWKSPath())
	wantOK(t, r.login(t, r.token(t, alice, ""), ""))
	if n := r.op.Requests(r.op.JWKSPath()); n != before+1 {
		t.Fatalf("a stale key set was not refetched (%d -> %d)", before, n)
	}
}

// A provider that is down: cached keys keep signing in; a server that never
// reached it answers 503 unavailable, and recovers when it is back.
func TestProviderDown(t *testing.T) {
	op := startOP(t)
	warm := newRig(t, rigOptions{op: op})
	wantOK(t, warm.login(t, warm.token(t, alice, ""), ""))
	tok := warm.token(t, alice, "")
	cold := newRig(t, rigOptions{op: op})
	tokCold := cold.token(t, bob, "")
	op.SetDown(true)
	wantOK(t, warm.login(t, tok, ""))
	wantError(t, cold.login(t, tokCold, ""), 503, "unavailable", "cannot be reached")
	op.SetDown(false)
	cold.clock.Advance(6 * time.Second) // past the retry pause
	wantOK(t, cold.login(t, tokCold, ""))
}

// Accounts are linked from a fresh session only; linking, listing,
// unlinking; and the last way into a passwordless account stays.
func TestLinkAndUnlink(t *testing.T) {
	second := startOP(t)
	r := newRig(t, rigOptions{extra: []provider.Config{{Name: "second", Issuer: second.Issuer(), ClientIDs: []string{native}}}})
	pw := r.post(t, "/login", "", map[string]string{"username": "test", "password": "test"})
	wantOK(t, pw)
	access := pw.str("access_token")

	linked := r.post(t, "/identities", access, map[string]string{"provider": "example", "id_token": r.token(t, alice, "")})
	if linked.status != 201 || linked.str("provider") != "example" || linked.str("subject") != alice.Subject || linked.str("id") == "" {
		t.Fatalf("POST /identities = %d %s", linked.status, linked.raw)
	}
	viaProvider := r.login(t, r.token(t, alice, ""), "")
	wantOK(t, viaProvider)
	if userOf(viaProvider) != userOf(pw) {
		t.Fatal("a linked identity signed in to another account")
	}
	list := r.call(t, "GET", "/identities", access)
	if ids, _ := list.body["identities"].([]any); list.status != 200 || len(ids) != 1 {
		t.Fatalf("GET /identities = %d %s", list.status, list.raw)
	}

	// Not from a refreshed (not fresh) token.
	refreshed := r.post(t, "/refresh", "", map[string]string{"refresh_token": pw.str("refresh_token")})
	wantOK(t, refreshed)
	stale := r.post(t, "/identities", refreshed.str("access_token"), map[string]string{"provider": "example", "id_token": r.token(t, bob, "")})
	wantError(t, stale, 403, "fresh_token_required", "")

	// An identity of another account is not taken over.
	bobLogin := r.login(t, r.token(t, bob, ""), "")
	wantOK(t, bobLogin)
	taken := r.post(t, "/identities", access, map[string]string{"provider": "example", "id_token": r.token(t, bob, "")})
	wantError(t, taken, 400, "invalid_request", "another account")

	// Unlink: the account has a password, so its only identity may go.
	del := r.call(t, "DELETE", "/identities/"+linked.str("id"), access)
	if del.status != 204 {
		t.Fatalf("DELETE = %d %s", del.status, del.raw)
	}
	wantError(t, r.call(t, "DELETE", "/identities/"+linked.str("id"), access), 404, "not_found", "")
	wantError(t, r.call(t, "DELETE", "/identities/..%2Fx", access), 404, "not_found", "")
	after := r.login(t, r.token(t, alice, ""), "")
	wantOK(t, after)
	if userOf(after) == userOf(pw) {
		t.Fatal("an unlinked identity still signs in to the account")
	}

	// Bob's account has no password: its last identity stays.
	bobAccess := bobLogin.str("access_token")
	bobIDs := r.call(t, "GET", "/identities", bobAccess)
	only := bobIDs.body["identities"].([]any)[0].(map[string]any)["id"].(string)
	wantError(t, r.call(t, "DELETE", "/identities/"+only, bobAccess), 400, "invalid_request", "last way")
	fresh := r.login(t, r.token(t, bob, ""), "")
	wantOK(t, fresh)
	addSecond := r.post(t, "/identities", fresh.str("access_token"), map[string]string{"provider": "second", "id_token": second.IDToken(t, native, bob.Username, "")})
	if addSecond.status != 201 {
		t.Fatalf("linking a second provider = %d %s", addSecond.status, addSecond.raw)
	}
	if del := r.call(t, "DELETE", "/identities/"+only, bobAccess); del.status != 204 {
		t.Fatalf("unlinking with another identity left = %d %s", del.status, del.raw)
	}
	viaSecond := r.post(t, "/login", "", map[string]string{"provider": "second", "id_token": second.IDToken(t, native, bob.Username, "")})
	wantOK(t, viaSecond)
	if userOf(viaSecond) != userOf(bobLogin) {
		t.Fatal("the remaining identity does not sign in to the account")
	}
}

// An identity is never linked to an account by its e-mail address, even one
// that equals the account's username; with sign-up closed it is refused.
func TestNoLinkByEmail(t *testing.T) {
	r := newRig(t, rigOptions{})
	reg := r.post(t, "/register", "", map[string]string{"username": alice.Email, "password": "a long password"})
	if reg.status != 201 {
		t.Fatalf("register = %d %s", reg.status, reg.raw)
	}
	res := r.login(t, r.token(t, alice, ""), "")
	wantOK(t, res)
	if userOf(res) == reg.str("uuid") {
		t.Fatal("a provider sign-in landed in the account whose name is its e-mail address")
	}
	closed := newRig(t, rigOptions{signupClosed: true, op: r.op})
	reg2 := closed.post(t, "/register", "", map[string]string{"username": alice.Email, "password": "a long password"})
	if reg2.status != 201 {
		t.Fatalf("register = %d %s", reg2.status, reg2.raw)
	}
	wantError(t, closed.login(t, closed.token(t, alice, ""), ""), 403, "registration_closed", "No account is linked")
}

// Concurrent sign-ins with one ID token: exactly one opens a session.
func TestConcurrentReplay(t *testing.T) {
	r := newRig(t, rigOptions{})
	wantOK(t, r.login(t, r.token(t, bob, ""), "")) // warm the caches
	tok := r.token(t, alice, "")
	var mu sync.Mutex
	ok := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if res := r.login(t, tok, ""); res.status == 200 {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d of 8 concurrent sign-ins with one ID token succeeded, want 1", ok)
	}
}

// With the nonce configured raw, the token carries the app's nonce as it is
// and only that form passes.
func TestRawNonceProvider(t *testing.T) {
	r := newRig(t, rigOptions{rawNonce: true})
	wantOK(t, r.login(t, r.token(t, alice, "n-raw"), "n-raw"))
	wantError(t, r.login(t, r.token(t, alice, hashed("n-raw")), "n-raw"), 401, "invalid_token", "nonce does not match")
}

// A provider that hangs (rather than refusing) while the keys are stale:
// sign-ins keep working on the cached keys, none waits for the provider, and
// the provider gets one fetch at a time.
func TestProviderHangingWithStaleKeys(t *testing.T) {
	r := newRig(t, rigOptions{})
	wantOK(t, r.login(t, r.token(t, alice, ""), ""))
	toks := []string{r.token(t, alice, ""), r.token(t, alice, ""), r.token(t, bob, "")}
	r.clock.Advance(10 * time.Minute) // the JWKS and discovery are stale
	before := r.op.Requests(r.op.JWKSPath())
	r.op.SetHanging(true)
	defer r.op.SetHanging(false)
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]reply, len(toks))
	for i, tok := range toks {
		wg.Go(func() { results[i] = r.login(t, tok, "") })
	}
	wg.Wait()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("three sign-ins took %s while the provider hung: they waited for it", d)
	}
	for _, res := range results {
		wantOK(t, res)
	}
	if n := r.op.Requests(r.op.JWKSPath()) - before; n > 1 {
		t.Fatalf("the hanging provider got %d JWKS fetches at once, want at most 1", n)
	}
}

// One ID token, two endpoints: used on POST /login, refused on the token
// exchange.
func TestReplayAcrossEndpoints(t *testing.T) {
	r := newRig(t, rigOptions{})
	tok := r.token(t, alice, "")
	wantOK(t, r.login(t, tok, ""))
	res := r.form(t, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {tok}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}})
	wantError(t, res, 400, "invalid_grant", "used already")
}

// browserCall sends a request with the jar's cookies and keeps what comes
// back; it does not follow redirects.
func (r *rig) browserCall(t *testing.T, j *servertest.Jar, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, r.env.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", r.env.URL)
	}
	req.Header.Set("Cookie", j.Header())
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	j.Update(resp.Cookies())
	if resp.StatusCode >= 500 {
		t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, raw)
	}
	return resp, string(raw)
}

// signInPage signs the jar in with a password on the account page.
func (r *rig) signInPage(t *testing.T, j *servertest.Jar, user, pw string) {
	t.Helper()
	resp, body := r.browserCall(t, j, "POST", "/account/login", url.Values{"username": {user}, "password": {pw}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d %s", resp.StatusCode, body)
	}
}

var continueLink = regexp.MustCompile(`id="continue" href="([^"]+)"`)

// startLink posts the account page's Link button and returns the provider
// URL the page continues to.
func (r *rig) startLink(t *testing.T, j *servertest.Jar) string {
	t.Helper()
	resp, body := r.browserCall(t, j, "POST", "/account/signin/example", url.Values{"csrf_token": {j.Get("lk_csrf")}})
	m := continueLink.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("link start = %d %s", resp.StatusCode, body)
	}
	return html.UnescapeString(m[1])
}

// The link flow: it starts only from a same-origin post with the CSRF token;
// its callback links only for the browser's user who started it, and only
// with the flow cookie this server made.
func TestLinkFlowBindings(t *testing.T) {
	r := newRig(t, rigOptions{browser: true})
	if res := r.post(t, "/register", "", map[string]string{"username": "alice2", "password": "long enough"}); res.status != 201 {
		t.Fatalf("register = %d %s", res.status, res.raw)
	}
	// A cross-site GET cannot start a link.
	j := servertest.NewJar(nil)
	r.signInPage(t, j, "test", "test")
	if resp, _ := r.browserCall(t, j, "GET", "/account/signin/example?link=1", nil); resp.StatusCode != 400 {
		t.Fatalf("GET ?link=1 = %d, want 400", resp.StatusCode)
	}
	// A post without the CSRF token is refused.
	if resp, _ := r.browserCall(t, j, "POST", "/account/signin/example", url.Values{}); resp.StatusCode != 403 {
		t.Fatalf("link start without the CSRF token = %d, want 403", resp.StatusCode)
	}

	// Started as "test", finished in a browser now signed in as "alice2".
	to := r.startLink(t, j)
	back := r.op.Authorize(t, to, alice.Username)
	r.signInPage(t, j, "alice2", "long enough")
	resp, body := r.browserCall(t, j, "GET", back.RequestURI(), nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "Start again") {
		t.Fatalf("a callback in another user's browser = %d %.300s", resp.StatusCode, body)
	}

	// A tampered flow cookie.
	j2 := servertest.NewJar(nil)
	r.signInPage(t, j2, "test", "test")
	to = r.startLink(t, j2)
	back = r.op.Authorize(t, to, alice.Username)
	v := j2.Get("lk_signin")
	last := byte('A')
	if v[len(v)-1] == 'A' {
		last = 'B'
	}
	j2.Set("lk_signin", v[:len(v)-1]+string(last))
	if resp, body := r.browserCall(t, j2, "GET", back.RequestURI(), nil); resp.StatusCode != 400 {
		t.Fatalf("a tampered flow cookie = %d %.300s", resp.StatusCode, body)
	}

	// The honest flow links, and the identity then signs in to "test".
	j3 := servertest.NewJar(nil)
	r.signInPage(t, j3, "test", "test")
	to = r.startLink(t, j3)
	back = r.op.Authorize(t, to, alice.Username)
	if resp, body := r.browserCall(t, j3, "GET", back.RequestURI(), nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account?done=linked" {
		t.Fatalf("the honest link = %d %s %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	viaProvider := r.login(t, r.token(t, alice, ""), "")
	wantOK(t, viaProvider)
	me := r.call(t, "GET", "/me", viaProvider.str("access_token"))
	if me.str("username") != "test" {
		t.Fatalf("the linked identity signs in as %q", me.str("username"))
	}
}

package client_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/dpop"
)

// seen is what a test server saw of one request.
type seen struct {
	path, authorization, proof string
}

// recorder collects what the server saw, in order.
type recorder struct {
	mu  sync.Mutex
	all []seen
}

func (rec *recorder) see(r *http.Request) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.all = append(rec.all, seen{path: r.URL.Path, authorization: r.Header.Get("Authorization"), proof: r.Header.Get("DPoP")})
}

func (rec *recorder) of(path string) []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []seen
	for _, s := range rec.all {
		if s.path == path {
			out = append(out, s)
		}
	}
	return out
}

// proofClaims reads a proof's payload (unverified: the server verified it).
func proofClaims(t *testing.T, proof string) map[string]any {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("proof %q is not a compact JWS", proof)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// A session started by Login with a key is bound to it: the sign-in goes
// through the server's nonce dance (one retry), every later request carries
// its own proof by that key and the DPoP scheme, the session refreshes with
// a proof when its access token expires, and /me answers. The same access
// token without the key is refused.
func TestDPoPBoundSession(t *testing.T) {
	rec := &recorder{}
	url, refreshes := startServerSeeing(t, rec.see)
	key, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var saved []client.Token
	tr, err := client.Login(t.Context(), client.Config{Server: url, Key: key, RefreshBefore: time.Millisecond,
		Save: func(_ context.Context, tok client.Token) error { saved = append(saved, tok); return nil }}, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	if logins := rec.of("/login"); len(logins) != 2 || logins[0].proof == "" || proofClaims(t, logins[0].proof)["nonce"] != nil ||
		proofClaims(t, logins[1].proof)["nonce"] == nil {
		t.Fatalf("login requests %+v: want one without a nonce, then one retry with the server's", logins)
	}
	first := tr.Token()
	if len(saved) != 1 || saved[0] != first {
		t.Fatalf("Save got %v after Login, want the login's pair", saved)
	}

	c := &http.Client{Transport: tr}
	getMe := func() {
		t.Helper()
		resp, err := c.Get(url + "/me")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var me struct{ Username string }
		json.NewDecoder(resp.Body).Decode(&me)
		if resp.StatusCode != 200 || me.Username != "test" {
			t.Fatalf("GET /me = %d %+v", resp.StatusCode, me)
		}
	}
	getMe()
	time.Sleep(time.Until(first.Expiry) + 100*time.Millisecond) // the access token has expired
	getMe()
	if refreshes.Load() != 1 {
		t.Fatalf("%d refreshes, want 1 (the server's nonce was known from the login)", refreshes.Load())
	}
	second := tr.Token()
	if second.RefreshToken == first.RefreshToken || len(saved) != 2 {
		t.Fatal("the refresh did not rotate the pair, or did not save it")
	}

	ids := map[string]bool{}
	for _, s := range append(rec.of("/refresh"), rec.of("/me")...) {
		c := proofClaims(t, s.proof)
		if ids[c["jti"].(string)] {
			t.Errorf("a proof id was used twice: %v", c["jti"])
		}
		ids[c["jti"].(string)] = true
		if s.path == "/me" && (!strings.HasPrefix(s.authorization, "DPoP ") || c["ath"] == nil) {
			t.Errorf("/me was sent with Authorization %.12q… and a proof without ath: %v", s.authorization, c)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("%d distinct proofs for a refresh and two calls, want 3", len(ids))
	}

	// The token alone, as a thief would use it, is refused with a DPoP
	// challenge; so is a refresh without the key.
	req, _ := http.NewRequest("GET", url+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+second.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "DPoP ") {
		t.Fatalf("the bound token as Bearer: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	thief, _ := client.New(client.Config{Server: url, Token: client.Token{RefreshToken: second.RefreshToken}})
	if _, err := (&http.Client{Transport: thief}).Get(url + "/me"); err == nil || !strings.Contains(err.Error(), "invalid_dpop_proof") {
		t.Fatalf("a refresh of the bound session without the key: %v, want invalid_dpop_proof", err)
	}
	getMe() // the owner's session is intact
}

// A nonce-refusing front for the server's handler on its own origin, as a
// resource server with its own nonces would be: a request whose proof lacks
// the current nonce is answered 401 use_dpop_nonce with a DPoP challenge;
// rotate makes every answer carry a new nonce, so no proof ever has it.
type nonceFront struct {
	h      http.Handler
	rotate atomic.Bool
	n      atomic.Int64
	hits   atomic.Int64
}

func (f *nonceFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	if f.rotate.Load() {
		f.n.Add(1)
	}
	want := "rs-" + strconv.FormatInt(f.n.Load(), 10)
	var c struct{ Nonce string }
	if parts := strings.Split(r.Header.Get("DPoP"), "."); len(parts) == 3 {
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(b, &c)
	}
	if c.Nonce != want {
		w.Header().Set("DPoP-Nonce", want)
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.h.ServeHTTP(w, r)
}

// A use_dpop_nonce refusal is answered by sending the request once more with
// the nonce, and only once: at the token endpoint (400 and a JSON error) and
// at a resource server (401 and a DPoP challenge), whether the retry succeeds
// or the server asks again.
func TestDPoPNonceRetryOnce(t *testing.T) {
	url, refreshes, h := startServerHandler(t, nil)
	key, _ := client.GenerateKey()
	tr, err := client.Login(t.Context(), client.Config{Server: url, Key: key}, "test", "test")
	if err != nil {
		t.Fatal(err)
	}

	// A Transport that has not met the server refreshes: two requests, the
	// second with the nonce, and a new pair.
	tok := tr.Token()
	tok.AccessToken = ""
	fresh, err := client.New(client.Config{Server: url, Key: key, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: fresh}).Get(url + "/me")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /me after the nonce retry = %v %v", resp, err)
	}
	resp.Body.Close()
	if refreshes.Load() != 2 {
		t.Fatalf("%d requests to /refresh, want 2 (one refused for the nonce, one retry)", refreshes.Load())
	}

	// A resource server with its own nonce: one retry, then the answer.
	front := &nonceFront{h: h}
	rs := httptest.NewServer(front)
	defer rs.Close()
	get := func() *http.Response {
		t.Helper()
		resp, err := (&http.Client{Transport: fresh}).Get(rs.URL + "/me")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.StatusCode != 200 || front.hits.Load() != 2 {
		t.Fatalf("GET /me at a resource server asking for its nonce: %d after %d requests, want 200 after 2", resp.StatusCode, front.hits.Load())
	}
	// Its nonce is remembered for that origin: no more retries.
	if resp := get(); resp.StatusCode != 200 || front.hits.Load() != 3 {
		t.Fatalf("second GET: %d after %d requests in all, want 200 after 3", resp.StatusCode, front.hits.Load())
	}
	// A server that asks every time gets two requests, not a loop, and the
	// caller gets its refusal.
	front.hits.Store(0)
	front.rotate.Store(true)
	if resp := get(); resp.StatusCode != 401 || front.hits.Load() != 2 {
		t.Fatalf("a server always asking for a new nonce: %d after %d requests, want 401 after 2", resp.StatusCode, front.hits.Load())
	}

	// The same at a token endpoint that always asks: Login fails after two.
	var logins atomic.Int64
	always := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := logins.Add(1)
		w.Header().Set("DPoP-Nonce", "n"+strconv.FormatInt(n, 10))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"use_dpop_nonce","message":"Send it again with the nonce."}`)
	}))
	defer always.Close()
	if _, err := client.Login(t.Context(), client.Config{Server: always.URL, Key: key}, "test", "test"); err == nil ||
		!strings.Contains(err.Error(), "use_dpop_nonce") || logins.Load() != 2 {
		t.Fatalf("Login at a server always asking for a nonce: %v after %d requests, want use_dpop_nonce after 2", err, logins.Load())
	}
}

// Without a key nothing changes: Bearer tokens, no proofs, and a server's
// nonce refusal is not retried (there is no proof to fix).
func TestNoKeyNoDPoP(t *testing.T) {
	rec := &recorder{}
	url, _ := startServerSeeing(t, rec.see)
	tok := login(t, url)
	tok.AccessToken = ""
	tr, _ := client.New(client.Config{Server: url, Token: tok})
	resp, err := (&http.Client{Transport: tr}).Get(url + "/me")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /me = %v %v", resp, err)
	}
	resp.Body.Close()
	for _, s := range rec.all {
		if s.proof != "" || (s.path != "/login" && !strings.HasPrefix(s.authorization, "Bearer ")) {
			t.Errorf("%s was sent with a DPoP header or without Bearer: %+v", s.path, s)
		}
	}
	front := &nonceFront{h: http.NotFoundHandler()}
	rs := httptest.NewServer(front)
	defer rs.Close()
	resp, err = (&http.Client{Transport: tr}).Get(rs.URL + "/me")
	if err != nil || resp.StatusCode != 401 || front.hits.Load() != 1 {
		t.Fatalf("a DPoP nonce refusal without a key: %v %v after %d requests, want 401 after 1", resp, err, front.hits.Load())
	}
	resp.Body.Close()
}

// LoadOrCreateKey makes a key file readable by its owner only, gives the same
// key back from it, and refuses a file that holds no key, or a public key.
func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpop.pem")
	k1, err := client.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi, err)
	}
	k2, err := client.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := dpop.Thumbprint(k1.Public())
	t2, _ := dpop.Thumbprint(k2.Public())
	if t1 != t2 {
		t.Fatal("the key read back is not the key written")
	}
	pemBytes, _ := os.ReadFile(path)
	if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Fatalf("key file is not a PKCS #8 PEM block: %.40q", pemBytes)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := client.LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("a file without a key: %v, want an error naming it", err)
	}
	pub, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
	os.WriteFile(bad, pub, 0o600)
	if _, err := client.LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "public") {
		t.Fatalf("a public JWK: %v, want an error saying it is public", err)
	}
	if _, err := client.LoadOrCreateKey(filepath.Join(t.TempDir(), "no", "such", "dir", "k.pem")); err == nil {
		t.Fatal("a key file that cannot be created gave no error")
	}
}

// A wrong password is ErrInvalidCredentials, with a key or without.
func TestLoginWrongPassword(t *testing.T) {
	url, _ := startServer(t)
	key, _ := client.GenerateKey()
	for _, k := range []crypto.Signer{nil, key} {
		if _, err := client.Login(t.Context(), client.Config{Server: url, Key: k}, "test", "nope"); !errors.Is(err, client.ErrInvalidCredentials) {
			t.Fatalf("wrong password (key %v): %v", k != nil, err)
		}
	}
}

// The Transport peeks at error bodies to find use_dpop_nonce and
// token_expired; the caller still gets the whole body, however long.
func TestErrorBodyIntact(t *testing.T) {
	body := `{"error":"something_else","pad":"` + strings.Repeat("x", 10000) + `"}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusBadRequest
		if r.URL.Path == "/401" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			code = http.StatusUnauthorized
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	key, _ := client.GenerateKey()
	tok := client.Token{AccessToken: "a", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}
	tr, err := client.New(client.Config{Server: srv.URL, Key: key, Token: tok, RefreshBefore: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/400", "/401"} {
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != body {
			t.Fatalf("GET %s: the caller read %d bytes of the %d-byte error body", path, len(got), len(body))
		}
	}
}

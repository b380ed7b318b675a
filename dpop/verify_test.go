package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/dpop"
)

// Every algorithm of the default allow-list is accepted, and the verified
// proof reports its key's thumbprint, jti, iat and algorithm.
func TestAllowedAlgorithmsAccepted(t *testing.T) {
	f := newFixture(t, dpop.Config{})
	if got, want := strings.Join(f.v.Algorithms(), " "), "ES256 EdDSA RS256 PS256"; got != want {
		t.Fatalf("Algorithms() = %q, want %q", got, want)
	}
	for _, alg := range f.v.Algorithms() {
		t.Run(alg, func(t *testing.T) {
			key := keyFor(t, alg)
			proof := forge(t, f.clock.Now(), forgery{alg: jose.SignatureAlgorithm(alg), key: key, claims: map[string]any{"jti": "id-" + alg}})
			p, err := f.v.Verify(context.Background(), request(proof))
			if err != nil {
				t.Fatalf("Verify(%s proof) = %v, want nil", alg, err)
			}
			jkt, err := dpop.Thumbprint(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if p.JKT != jkt || p.ID != "id-"+alg || !p.IssuedAt.Equal(f.clock.Now()) || p.Algorithm != alg {
				t.Fatalf("Verify = %+v, want JKT %s, jti id-%s, iat %v, alg %s", p, jkt, alg, f.clock.Now(), alg)
			}
		})
	}
}

// An algorithm outside the default list is refused unless configured.
func TestAlgorithmAllowList(t *testing.T) {
	key := keyFor(t, "ES384")
	def := newFixture(t, dpop.Config{})
	proof := forge(t, def.clock.Now(), forgery{alg: jose.ES384, key: key})
	_, err := def.v.Verify(context.Background(), request(proof))
	wantRefused(t, err, dpop.CodeInvalidProof, "algorithm is not allowed", proof)

	only := newFixture(t, dpop.Config{Algorithms: []string{"ES384"}})
	proof = forge(t, only.clock.Now(), forgery{alg: jose.ES384, key: key})
	if _, err := only.v.Verify(context.Background(), request(proof)); err != nil {
		t.Fatalf("Verify(ES384 proof) with ES384 allowed = %v", err)
	}
	es256 := only.proof(t, nil)
	_, err = only.v.Verify(context.Background(), request(es256))
	wantRefused(t, err, dpop.CodeInvalidProof, "algorithm is not allowed", es256)
}

// Each attack on the proof itself is refused with the reason of the defence
// that stops it; removing that defence makes its case fail.
func TestAttacksRefused(t *testing.T) {
	f := newFixture(t, dpop.Config{})
	now := f.clock.Now()
	key, other := mustKey(t), mustKey(t)
	pubJWK, err := json.Marshal(&jose.JSONWebKey{Key: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	es := func(header, claims map[string]any) string {
		return forge(t, now, forgery{alg: jose.ES256, key: key, header: header, claims: claims})
	}
	cases := []struct {
		name   string
		proof  string
		edit   func(*dpop.Request)
		code   string
		reason string
	}{
		{"alg none", forge(t, now, forgery{alg: "none", key: key}), nil, dpop.CodeInvalidProof, "algorithm is not allowed"},
		{"HS256 keyed with the jwk", forge(t, now, forgery{alg: jose.HS256, key: pubJWK, header: map[string]any{"jwk": json.RawMessage(pubJWK)}}), nil, dpop.CodeInvalidProof, "algorithm is not allowed"},
		{"private key in the jwk", es(map[string]any{"jwk": &jose.JSONWebKey{Key: key}}, nil), nil, dpop.CodeInvalidProof, "private or symmetric"},
		{"symmetric jwk", es(map[string]any{"jwk": map[string]string{"kty": "oct", "k": b64(pubJWK)}}, nil), nil, dpop.CodeInvalidProof, "private or symmetric"},
		{"signed by another key than its jwk", es(map[string]any{"jwk": &jose.JSONWebKey{Key: other.Public()}}, nil), nil, dpop.CodeInvalidProof, "signature does not verify"},
		{"no jwk", es(map[string]any{"jwk": nil}, nil), nil, dpop.CodeInvalidProof, "no jwk"},
		{"jwk by reference", es(map[string]any{"jwk": nil, "kid": "k1"}, nil), nil, dpop.CodeInvalidProof, "no jwk"},
		{"typ JWT", es(map[string]any{"typ": "JWT"}, nil), nil, dpop.CodeInvalidProof, "typ"},
		{"typ in other case", es(map[string]any{"typ": "DPoP+JWT"}, nil), nil, dpop.CodeInvalidProof, "typ"},
		{"typ at+jwt", es(map[string]any{"typ": "at+jwt"}, nil), nil, dpop.CodeInvalidProof, "typ"},
		{"no typ", es(map[string]any{"typ": nil}, nil), nil, dpop.CodeInvalidProof, "typ"},
		{"critical extension", es(map[string]any{"crit": []string{"b64"}, "b64": true}, nil), nil, dpop.CodeInvalidProof, "critical"},
		{"RSA key under 2048 bits", forge(t, now, forgery{alg: jose.RS256, key: small}), nil, dpop.CodeInvalidProof, "unsupported size"},
		{"other method", es(nil, map[string]any{"htm": "GET"}), nil, dpop.CodeInvalidProof, "another HTTP method"},
		{"method in other case", es(nil, map[string]any{"htm": "post"}), nil, dpop.CodeInvalidProof, "another HTTP method"},
		{"other host", es(nil, map[string]any{"htu": "https://evil.example/oauth/token"}), nil, dpop.CodeInvalidProof, "another URL"},
		{"other path", es(nil, map[string]any{"htu": "https://server.example/oauth/revoke"}), nil, dpop.CodeInvalidProof, "another URL"},
		{"longer path", es(nil, map[string]any{"htu": "https://server.example/oauth/token/x"}), nil, dpop.CodeInvalidProof, "another URL"},
		{"other scheme", es(nil, map[string]any{"htu": "http://server.example/oauth/token"}), nil, dpop.CodeInvalidProof, "another URL"},
		{"other port", es(nil, map[string]any{"htu": "https://server.example:8443/oauth/token"}), nil, dpop.CodeInvalidProof, "another URL"},
		{"user information", es(nil, map[string]any{"htu": "https://u@server.example/oauth/token"}), nil, dpop.CodeInvalidProof, "another URL"},
		{"relative htu", es(nil, map[string]any{"htu": "/oauth/token"}), nil, dpop.CodeInvalidProof, "another URL"},
		{"stale iat", es(nil, map[string]any{"iat": now.Add(-61 * time.Second).Unix()}), nil, dpop.CodeInvalidProof, "too old"},
		{"future iat", es(nil, map[string]any{"iat": now.Add(6 * time.Second).Unix()}), nil, dpop.CodeInvalidProof, "future"},
		{"iat out of range", es(nil, map[string]any{"iat": -1}), nil, dpop.CodeInvalidProof, "out of range"},
		{"iat a string", es(nil, map[string]any{"iat": "now"}), nil, dpop.CodeInvalidProof, "claims are malformed"},
		{"no iat", es(nil, map[string]any{"iat": nil}), nil, dpop.CodeInvalidProof, "lacks htm, htu or iat"},
		{"no htu", es(nil, map[string]any{"htu": nil}), nil, dpop.CodeInvalidProof, "lacks htm, htu or iat"},
		{"no htm", es(nil, map[string]any{"htm": nil}), nil, dpop.CodeInvalidProof, "lacks htm, htu or iat"},
		{"no jti", es(nil, map[string]any{"jti": nil}), nil, dpop.CodeInvalidProof, "no jti"},
		{"claim name in other case", es(nil, map[string]any{"jti": nil, "JTI": "x"}), nil, dpop.CodeInvalidProof, "no jti"},
		{"jti a number", es(nil, map[string]any{"jti": 7}), nil, dpop.CodeInvalidProof, "claims are malformed"},
		{"empty jti", es(nil, map[string]any{"jti": ""}), nil, dpop.CodeInvalidProof, "no jti"},
		{"jti too long", es(nil, map[string]any{"jti": strings.Repeat("j", dpop.MaxIDLength+1)}), nil, dpop.CodeInvalidProof, "jti is too long"},
		{"oversized", es(nil, map[string]any{"pad": strings.Repeat("p", 8192)}), nil, dpop.CodeInvalidProof, "longer than 8192 bytes"},
		{"not a JWS", "not-a-proof", nil, dpop.CodeInvalidProof, "not a compact JWS"},
		{"whitespace inside", func() string { p := es(nil, nil); return p[:20] + "\t" + p[20:] }(), nil, dpop.CodeInvalidProof, "not a compact JWS"},
		{"JSON serialisation", `{"payload":"e30","protected":"e30","signature":"AA"}`, nil, dpop.CodeInvalidProof, "not a compact JWS"},
		{"wrong ath", es(nil, map[string]any{"ath": b64(make([]byte, 32))}), func(r *dpop.Request) { r.AccessToken = "the-token" }, dpop.CodeInvalidProof, "ath does not match"},
		{"ath of another token", es(nil, map[string]any{"ath": athOf("another-token")}), func(r *dpop.Request) { r.AccessToken = "the-token" }, dpop.CodeInvalidProof, "ath does not match"},
		{"no ath with a token", es(nil, nil), func(r *dpop.Request) { r.AccessToken = "the-token" }, dpop.CodeInvalidProof, "no ath"},
		{"no proof", "", func(r *dpop.Request) { r.Proofs = nil }, dpop.CodeInvalidProof, "no DPoP proof"},
		{"two DPoP headers", es(nil, nil), func(r *dpop.Request) { r.Proofs = append(r.Proofs, r.Proofs[0]) }, dpop.CodeInvalidProof, "more than one DPoP header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request(c.proof)
			if c.edit != nil {
				c.edit(&r)
			}
			_, err := f.v.Verify(context.Background(), r)
			wantRefused(t, err, c.code, c.reason, c.proof)
			if !errors.Is(err, dpop.ErrInvalidProof) {
				t.Fatalf("errors.Is(%v, ErrInvalidProof) = false", err)
			}
		})
	}
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64(sum[:])
}

// The edges of the iat window and of the size limit are accepted, so the
// refusals above are the limits and not something else.
func TestLimitsAccepted(t *testing.T) {
	f := newFixture(t, dpop.Config{})
	now := f.clock.Now()
	for name, edit := range map[string]func(*dpop.Params){
		"iat MaxAge old":        func(p *dpop.Params) { p.IssuedAt = now.Add(-dpop.DefaultMaxAge) },
		"iat Leeway ahead":      func(p *dpop.Params) { p.IssuedAt = now.Add(dpop.DefaultLeeway) },
		"jti of MaxIDLength":    func(p *dpop.Params) { p.ID = strings.Repeat("j", dpop.MaxIDLength) },
		"ath for the token":     func(p *dpop.Params) { p.AccessToken = "the-token" },
		"nonce when not needed": func(p *dpop.Params) { p.Nonce = "whatever" },
	} {
		t.Run(name, func(t *testing.T) {
			r := request(f.proof(t, edit))
			r.AccessToken = "the-token"
			if name != "ath for the token" {
				r.AccessToken = ""
			}
			if _, err := f.v.Verify(context.Background(), r); err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
		})
	}
	t.Run("proof of MaxSize", func(t *testing.T) {
		key := mustKey(t)
		base := forge(t, now, forgery{alg: jose.ES256, key: key, claims: map[string]any{"pad": ""}})
		// Each pad byte adds 4/3 of a byte; find the pad that lands on 8192.
		var proof string
		for n := (8192 - len(base)) * 3 / 4; ; n++ {
			proof = forge(t, now, forgery{alg: jose.ES256, key: key, claims: map[string]any{"pad": strings.Repeat("p", n)}})
			if len(proof) >= 8192-2 {
				break
			}
		}
		if _, err := f.v.Verify(context.Background(), request(proof)); err != nil {
			t.Fatalf("Verify(proof of %d bytes) = %v, want nil", len(proof), err)
		}
	})
}

// htu is compared as RFC 9449 §4.3 says: URLs that differ only by RFC 3986
// normalisation, query or fragment are the same; others are not.
func TestHTUNormalisation(t *testing.T) {
	f := newFixture(t, dpop.Config{})
	cases := []struct {
		request, htu string
		same         bool
	}{
		{"https://server.example/oauth/token", "https://server.example/oauth/token", true},
		{"https://server.example/oauth/token", "HTTPS://SERVER.Example/oauth/token", true},
		{"https://server.example/oauth/token", "https://server.example:443/oauth/token", true},
		{"https://server.example/oauth/token", "https://server.example:/oauth/token", true},
		{"http://server.example/oauth/token", "http://server.example:80/oauth/token", true},
		{"http://server.example:8080/a", "http://server.example:08080/a", true},
		{"https://server.example/oauth/token", "https://server.example/oauth/./x/../token", true},
		{"https://server.example/oauth/token", "https://server.example/%6Fauth/token", true},
		{"https://server.example/~me/a%2Fb", "https://server.example/%7eme/a%2fb", true},
		{"https://server.example/a%20b", "https://server.example/a%20b", true},
		{"https://server.example/", "https://server.example", true},
		{"https://server.example/oauth/token?x=1", "https://server.example/oauth/token?y=2#f", true},
		{"https://[2001:db8::1]/t", "https://[2001:DB8::1]:443/t", true},
		{"https://server.example/oauth/token", "https://server.example/OAuth/token", false},
		{"https://server.example/a%2Fb", "https://server.example/a/b", false},
		{"https://server.example/a/b", "https://server.example/a/b/", false},
		{"https://server.example/oauth/token", "https://server.example:80/oauth/token", false},
		{"https://server.example/oauth/token", "https://server.example.evil/oauth/token", false},
		{"https://server.example/oauth/token", "ftp://server.example/oauth/token", false},
		{"https://server.example/oauth/token", "https://server.example/oauth/token%", false},
	}
	for _, c := range cases {
		proof := forge(t, f.clock.Now(), forgery{alg: jose.ES256, key: f.key, claims: map[string]any{"htu": c.htu}})
		u, err := url.Parse(c.request)
		if err != nil {
			t.Fatal(err)
		}
		r := request(proof)
		r.URL = u
		_, err = f.v.Verify(context.Background(), r)
		if c.same && err != nil {
			t.Errorf("htu %q for %q: Verify = %v, want nil", c.htu, c.request, err)
		}
		if !c.same && !errors.Is(err, dpop.ErrInvalidProof) {
			t.Errorf("htu %q for %q: Verify = %v, want invalid_dpop_proof", c.htu, c.request, err)
		}
	}
}

// A request URL that is not an absolute http(s) URL matches no proof.
func TestRequestURLNotComparable(t *testing.T) {
	f := newFixture(t, dpop.Config{})
	r := request(f.proof(t, nil))
	r.URL = &url.URL{Path: "/oauth/token"}
	_, err := f.v.Verify(context.Background(), r)
	wantRefused(t, err, dpop.CodeInvalidProof, "request URL cannot be compared", r.Proofs[0])
	r.URL = nil
	if _, err := f.v.Verify(context.Background(), r); err == nil {
		t.Fatal("Verify with a nil URL = nil")
	}
}

// A proof is accepted once: the same jti by the same key is refused, on the
// same Verifier and on a second node sharing the SQLite file; another jti, or
// the same jti by another key, is accepted.
func TestReplayRefusedSQLite(t *testing.T) {
	path := t.TempDir() + "/shared.db"
	testReplay(t, openSQLite(t, path), openSQLite(t, path))
}

func testReplay(t *testing.T, node1, node2 interface {
	Mark(context.Context, string, time.Time, time.Time) error
}) {
	f := newFixture(t, dpop.Config{Markers: node1})
	v2, err := dpop.New(dpop.Config{Markers: node2, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	proof := f.proof(t, func(p *dpop.Params) { p.ID = "once" })
	if _, err := f.v.Verify(ctx, request(proof)); err != nil {
		t.Fatalf("first Verify = %v", err)
	}
	_, err = f.v.Verify(ctx, request(proof))
	wantRefused(t, err, dpop.CodeInvalidProof, "used already", proof)
	_, err = v2.Verify(ctx, request(proof))
	wantRefused(t, err, dpop.CodeInvalidProof, "used already", proof)

	// The same jti in a new proof (other iat) by the same key: still a replay.
	f.clock.Add(time.Second)
	again := f.proof(t, func(p *dpop.Params) { p.ID = "once" })
	_, err = v2.Verify(ctx, request(again))
	wantRefused(t, err, dpop.CodeInvalidProof, "used already", again)

	// Other jti, same key: accepted on the second node and then refused on the first.
	fresh := f.proof(t, func(p *dpop.Params) { p.ID = "twice" })
	if _, err := v2.Verify(ctx, request(fresh)); err != nil {
		t.Fatalf("Verify(new jti) on node 2 = %v", err)
	}
	_, err = f.v.Verify(ctx, request(fresh))
	wantRefused(t, err, dpop.CodeInvalidProof, "used already", fresh)

	// The same jti by another key is another proof.
	other, err := dpop.NewProof(mustKey(t), dpop.Params{Method: testMethod, URL: testURL, ID: "once", IssuedAt: f.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.Verify(ctx, request(other)); err != nil {
		t.Fatalf("Verify(same jti, other key) = %v", err)
	}

	// Many concurrent presentations of one proof on two nodes: one wins.
	race := f.proof(t, func(p *dpop.Params) { p.ID = "race" })
	results := make(chan error, 16)
	for i := range 16 {
		v := f.v
		if i%2 == 1 {
			v = v2
		}
		go func() { _, err := v.Verify(ctx, request(race)); results <- err }()
	}
	wins := 0
	for range 16 {
		err := <-results
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, dpop.ErrInvalidProof):
			t.Errorf("concurrent Verify = %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of 16 concurrent presentations of one proof accepted, want 1", wins)
	}
}

// VerifyBound accepts a proof by the token's key only, and requires ath.
func TestVerifyBound(t *testing.T) {
	f := newFixture(t, dpop.Config{})
	ctx := context.Background()
	jkt, err := dpop.Thumbprint(f.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	r := func(edit func(*dpop.Params)) dpop.Request {
		r := request(f.proof(t, func(p *dpop.Params) {
			p.AccessToken = "the-token"
			if edit != nil {
				edit(p)
			}
		}))
		r.AccessToken = "the-token"
		return r
	}
	p, err := f.v.VerifyBound(ctx, r(nil), jkt)
	if err != nil || p.JKT != jkt {
		t.Fatalf("VerifyBound(own key) = %+v, %v; want JKT %s", p, err, jkt)
	}
	other, err := dpop.Thumbprint(mustKey(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	req := r(nil)
	_, err = f.v.VerifyBound(ctx, req, other)
	wantRefused(t, err, dpop.CodeInvalidToken, "not bound to the key", req.Proofs[0])
	if !errors.Is(err, dpop.ErrKeyMismatch) {
		t.Fatalf("VerifyBound(other key) = %v, want ErrKeyMismatch", err)
	}
	// One character off.
	req = r(nil)
	_, err = f.v.VerifyBound(ctx, req, jkt[:len(jkt)-1]+string(jkt[len(jkt)-1]^1))
	wantRefused(t, err, dpop.CodeInvalidToken, "not bound to the key", req.Proofs[0])
	req = r(nil)
	_, err = f.v.VerifyBound(ctx, req, "")
	wantRefused(t, err, dpop.CodeInvalidToken, "not bound to the key", req.Proofs[0])
	// The key mismatch did not consume the proof: the owner can still use it.
	if _, err := f.v.VerifyBound(ctx, req, jkt); err != nil {
		t.Fatalf("VerifyBound(own key) after a refusal = %v", err)
	}
	req = r(func(p *dpop.Params) { p.AccessToken = "" })
	_, err = f.v.VerifyBound(ctx, req, jkt)
	wantRefused(t, err, dpop.CodeInvalidProof, "no ath", req.Proofs[0])
	req = r(nil)
	req.AccessToken = ""
	if _, err := f.v.VerifyBound(ctx, req, jkt); err == nil {
		t.Fatal("VerifyBound without an access token = nil")
	}
}

// New refuses settings that would weaken or break verification.
func TestNewRefusesNonsense(t *testing.T) {
	db := openSQLite(t, "")
	for name, cfg := range map[string]dpop.Config{
		"no markers":      {},
		"none":            {Markers: db, Algorithms: []string{"none"}},
		"HS256":           {Markers: db, Algorithms: []string{"ES256", "HS256"}},
		"unknown alg":     {Markers: db, Algorithms: []string{"ES257"}},
		"lower-case alg":  {Markers: db, Algorithms: []string{"es256"}},
		"empty list":      {Markers: db, Algorithms: []string{}},
		"negative age":    {Markers: db, MaxAge: -time.Second},
		"age of a day":    {Markers: db, MaxAge: 24 * time.Hour},
		"leeway > age":    {Markers: db, MaxAge: 10 * time.Second, Leeway: 20 * time.Second},
		"negative leeway": {Markers: db, Leeway: -1},
		"tiny size":       {Markers: db, MaxSize: 100},
		"short nonce key": {Markers: db, NonceKey: []byte("short")},
		"step, no key":    {Markers: db, NonceStep: time.Minute},
		"step of 1s":      {Markers: db, NonceKey: nonceKey, NonceStep: time.Second},
	} {
		if _, err := dpop.New(cfg); err == nil {
			t.Errorf("New(%s) = nil error", name)
		}
	}
}

// NewProof makes proofs the Verifier accepts for each key type it supports,
// with htu stripped of query and fragment, and refuses what it cannot sign.
func TestNewProof(t *testing.T) {
	f := newFixture(t, dpop.Config{Algorithms: []string{"ES256", "ES384", "ES512", "EdDSA", "PS256"}})
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "PS256"} {
		key := keyFor(t, alg)
		proof, err := dpop.NewProof(key, dpop.Params{Method: testMethod, URL: testURL + "?q=1#frag", Nonce: "n", AccessToken: "at"})
		if err != nil {
			t.Fatalf("NewProof(%s) = %v", alg, err)
		}
		h, c := decode(t, proof)
		if h["alg"] != alg || h["typ"] != dpop.Type || c["htu"] != testURL || c["nonce"] != "n" || c["ath"] != athOf("at") {
			t.Fatalf("NewProof(%s): header %v claims %v", alg, h, c)
		}
		jwk := h["jwk"].(map[string]any)
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := jwk[m]; ok {
				t.Fatalf("NewProof(%s) puts the private member %q in the jwk", alg, m)
			}
		}
		r := request(proof)
		r.AccessToken = "at"
		if _, err := f.v.Verify(context.Background(), r); err != nil {
			t.Fatalf("Verify(NewProof(%s)) = %v", alg, err)
		}
	}
	p256 := mustKey(t)
	for name, p := range map[string]dpop.Params{
		"no method":    {URL: testURL},
		"relative URL": {Method: "GET", URL: "/x"},
		"not http":     {Method: "GET", URL: "wss://server.example/x"},
	} {
		if _, err := dpop.NewProof(p256, p); err == nil {
			t.Errorf("NewProof(%s) = nil error", name)
		}
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dpop.NewProof(p224, dpop.Params{Method: "GET", URL: testURL}); err == nil {
		t.Error("NewProof(P-224 key) = nil error")
	}
	// Two proofs of one key differ in jti.
	a, _ := dpop.NewProof(p256, dpop.Params{Method: "GET", URL: testURL})
	b, _ := dpop.NewProof(p256, dpop.Params{Method: "GET", URL: testURL})
	if _, ca := decode(t, a); ca["jti"] == mustClaims(t, b)["jti"] {
		t.Fatal("two proofs share a jti")
	}
}

func mustClaims(t *testing.T, proof string) map[string]any {
	_, c := decode(t, proof)
	return c
}

// decode returns a compact JWS's header and claims, unverified.
func decode(t *testing.T, proof string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", proof)
	}
	for i, into := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

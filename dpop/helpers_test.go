package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/store/sqlite"
)

const (
	testURL    = "https://server.example/oauth/token"
	testMethod = "POST"
)

// nonceKey is a Config.NonceKey for tests.
var nonceKey = []byte("0123456789abcdef0123456789abcdef")

// openSQLite opens a store on a new SQLite file; path names the file so a
// second store (a second node) can open it too.
func openSQLite(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "latchkey.db")
	}
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fixture is a Verifier on a real SQLite store with a settable clock.
type fixture struct {
	v     *dpop.Verifier
	clock *fakeclock.Clock
	key   *ecdsa.PrivateKey
}

// newFixture returns a fixture; cfg's Markers and Now are filled in when nil.
func newFixture(t testing.TB, cfg dpop.Config) *fixture {
	t.Helper()
	f := &fixture{clock: fakeclock.New(time.Now().Truncate(time.Second))}
	if cfg.Markers == nil {
		cfg.Markers = openSQLite(t, "")
	}
	if cfg.Now == nil {
		cfg.Now = f.clock.Now
	}
	v, err := dpop.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	f.key = mustKey(t)
	return f
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := dpop.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// proof makes a proof by f.key for the default request at the fixture's time,
// changed by edit.
func (f *fixture) proof(t testing.TB, edit func(*dpop.Params)) string {
	t.Helper()
	p := dpop.Params{Method: testMethod, URL: testURL, IssuedAt: f.clock.Now()}
	if edit != nil {
		edit(&p)
	}
	s, err := dpop.NewProof(f.key, p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request is the default request carrying proofs.
func request(proofs ...string) dpop.Request {
	u, err := url.Parse(testURL)
	if err != nil {
		panic(err)
	}
	return dpop.Request{Method: testMethod, URL: u, Proofs: proofs}
}

// forgery describes a proof made by hand with go-jose, for the attacks
// NewProof refuses to make.
type forgery struct {
	alg    jose.SignatureAlgorithm
	key    any            // the signing key
	header map[string]any // protected header members; "jwk" defaults to key's public JWK, "typ" to dpop+jwt; a nil value omits the member
	claims map[string]any // claims set over the valid defaults; a nil value omits the claim
}

// forge signs a forgery for the default request at time now.
func forge(t testing.TB, now time.Time, g forgery) string {
	t.Helper()
	claims := map[string]any{"jti": rand.Text(), "htm": testMethod, "htu": testURL, "iat": now.Unix()}
	for k, v := range g.claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	header := map[jose.HeaderKey]any{"typ": dpop.Type}
	if s, ok := g.key.(crypto.Signer); ok {
		header["jwk"] = &jose.JSONWebKey{Key: s.Public()}
	}
	for k, v := range g.header {
		if v == nil {
			delete(header, jose.HeaderKey(k))
		} else {
			header[jose.HeaderKey(k)] = v
		}
	}
	if g.alg == "none" {
		h := map[string]any{"alg": "none"}
		for k, v := range header {
			h[string(k)] = v
		}
		hj, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		return b64(hj) + "." + b64(payload) + "."
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: g.alg, Key: g.key}, &jose.SignerOptions{ExtraHeaders: header})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// keyFor returns a fresh key of the type alg signs with.
func keyFor(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch {
	case alg == "EdDSA":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case alg == "ES384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case alg == "ES512":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case strings.HasPrefix(alg, "ES"):
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		// Generating an RSA key takes seconds on a busy machine; a fixture
		// keeps the tests and the fuzz workers' start quick.
		var b []byte
		if b, err = os.ReadFile("testdata/rsa2048.pem"); err == nil {
			k, err = dpop.ParseKey(b)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wantRefused fails unless err is an *Error with the code and a message
// containing msg, and the error quotes nothing of proof.
func wantRefused(t *testing.T, err error, code, msg, proof string) {
	t.Helper()
	var e *dpop.Error
	if !errors.As(err, &e) {
		t.Fatalf("Verify = %v, want a *dpop.Error %s (%q)", err, code, msg)
	}
	if e.Code != code || !strings.Contains(e.Message, msg) {
		t.Fatalf("Verify = %s: %q, want %s: …%q…", e.Code, e.Message, code, msg)
	}
	for _, part := range strings.Split(proof, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Fatalf("the error quotes the proof: %v", err)
		}
	}
}

package accesstoken_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/store/sqlite"
)

var now = time.Unix(1_800_000_000, 0)

func ring(t testing.TB, alg string) *keys.Ring {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	enc := make([]byte, 32)
	rand.Read(enc)
	r, err := keys.Open(context.Background(), keys.Config{Store: db, EncryptionKey: enc, Algorithm: alg, Retain: 15 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func claims() accesstoken.Claims {
	return accesstoken.Claims{
		Issuer: "https://auth.example", Subject: "user-1", Audience: "api", ExpiresAt: now.Add(15 * time.Minute),
		IssuedAt: now, ID: "jti-1", SessionID: "sid-1", Fresh: true,
	}
}

var valid = accesstoken.Validation{Issuer: "https://auth.example", Audience: "api", Now: now}

func TestRoundTripEveryAlgorithm(t *testing.T) {
	for _, alg := range keys.Algorithms() {
		t.Run(alg, func(t *testing.T) {
			r := ring(t, alg)
			tok, err := accesstoken.Sign(r.SigningKey(), claims())
			if err != nil {
				t.Fatal(err)
			}
			got, err := accesstoken.Verify(tok, r, valid)
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			want := claims()
			if got.Subject != want.Subject || got.SessionID != want.SessionID || got.ID != want.ID || !got.Fresh ||
				!got.ExpiresAt.Equal(want.ExpiresAt) || !got.IssuedAt.Equal(want.IssuedAt) || got.Audience != "api" {
				t.Fatalf("claims = %+v", got)
			}
			hdr := header(t, tok)
			if hdr["typ"] != "at+jwt" || hdr["kid"] != r.SigningKey().ID || hdr["alg"] != alg {
				t.Fatalf("header = %v", hdr)
			}
		})
	}
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.Unmarshal(raw, &h)
	return h
}

// forge builds a compact JWS with any header and payload, signed by sign.
func forge(header, payload map[string]any, sign func([]byte) []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

func payload() map[string]any {
	return map[string]any{"iss": "https://auth.example", "sub": "attacker", "aud": "api", "exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(), "jti": "x", "sid": "sid-1", "fresh": true}
}

func TestAlgorithmAttacks(t *testing.T) {
	r := ring(t, "EdDSA")
	kid := r.SigningKey().ID
	pub := r.SigningKey().VerificationKey().(ed25519.PublicKey)
	hmacWith := func(key []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, key); m.Write(in); return m.Sum(nil) }
	}
	jwks := r.JWKS()
	for name, tok := range map[string]string{
		"alg none":                            forge(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, payload(), func([]byte) []byte { return nil }),
		"HS256 with the public key as secret": forge(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, payload(), hmacWith(pub)),
		"HS256 with the JWKS as secret":       forge(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, payload(), hmacWith(jwks)),
		"embedded jwk": forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid,
			"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub)}}, payload(),
			func([]byte) []byte { return make([]byte, 64) }),
		"jku header": forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jku": "https://evil.example/jwks"}, payload(),
			func([]byte) []byte { return make([]byte, 64) }),
		"self-signed with own key": func() string {
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			return forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}, payload(), func(in []byte) []byte { return ed25519.Sign(priv, in) })
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := accesstoken.Verify(tok, r, valid); err == nil {
				t.Fatalf("Verify accepted a forged token: %+v", c)
			}
		})
	}
}

func TestTamperingAndShape(t *testing.T) {
	r := ring(t, "EdDSA")
	tok, _ := accesstoken.Sign(r.SigningKey(), claims())
	parts := strings.Split(tok, ".")
	evil, _ := json.Marshal(payload())
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"payload swapped": {parts[0] + "." + base64.RawURLEncoding.EncodeToString(evil) + "." + parts[2], accesstoken.ErrSignature},
		"signature cut":   {tok[:len(tok)-4], accesstoken.ErrSignature},
		"two parts":       {parts[0] + "." + parts[1], accesstoken.ErrMalformed},
		"oversized":       {tok + strings.Repeat("A", accesstoken.MaxLength), accesstoken.ErrMalformed},
		"JSON serialized": {`{"payload":"` + parts[1] + `","signatures":[]}`, accesstoken.ErrMalformed},
		"empty":           {"", accesstoken.ErrMalformed},
		"line break":      {tok[:30] + "\n" + tok[30:], accesstoken.ErrMalformed},
		"tab at the end":  {tok + "\t", accesstoken.ErrMalformed},
		"unknown kid":     {forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"}, payload(), func([]byte) []byte { return make([]byte, 64) }), accesstoken.ErrUnknownKey},
		"no kid":          {forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, payload(), func([]byte) []byte { return make([]byte, 64) }), accesstoken.ErrMalformed},
		"id token typ":    {forge(map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": r.SigningKey().ID}, payload(), func([]byte) []byte { return make([]byte, 64) }), accesstoken.ErrWrongType},
		"no typ":          {forge(map[string]any{"alg": "EdDSA", "kid": r.SigningKey().ID}, payload(), func([]byte) []byte { return make([]byte, 64) }), accesstoken.ErrWrongType},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := accesstoken.Verify(tc.tok, r, valid); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestClaimsChecks(t *testing.T) {
	r := ring(t, "EdDSA")
	sign := func(edit func(*accesstoken.Claims)) string {
		c := claims()
		edit(&c)
		tok, err := accesstoken.Sign(r.SigningKey(), c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for name, tc := range map[string]struct {
		tok  string
		v    accesstoken.Validation
		want error
	}{
		"wrong issuer":    {sign(func(c *accesstoken.Claims) { c.Issuer = "https://other" }), valid, accesstoken.ErrClaims},
		"wrong audience":  {sign(func(c *accesstoken.Claims) { c.Audience = "other-api" }), valid, accesstoken.ErrClaims},
		"no session":      {sign(func(c *accesstoken.Claims) { c.SessionID = "" }), valid, accesstoken.ErrClaims},
		"no subject":      {sign(func(c *accesstoken.Claims) { c.Subject = "" }), valid, accesstoken.ErrClaims},
		"expired":         {sign(func(c *accesstoken.Claims) {}), accesstoken.Validation{Issuer: valid.Issuer, Audience: "api", Now: now.Add(15 * time.Minute)}, accesstoken.ErrExpired},
		"leeway saves it": {sign(func(c *accesstoken.Claims) {}), accesstoken.Validation{Issuer: valid.Issuer, Audience: "api", Now: now.Add(15 * time.Minute), Leeway: time.Second}, nil},
		"missing exp":     {forgeSigned(t, r, func(p map[string]any) { delete(p, "exp") }), valid, accesstoken.ErrClaims},
		"not yet valid":   {forgeSigned(t, r, func(p map[string]any) { p["nbf"] = now.Add(time.Minute).Unix() }), valid, accesstoken.ErrNotYetValid},
		"audience array":  {forgeSigned(t, r, func(p map[string]any) { p["aud"] = []string{"api"} }), valid, nil},
		"two audiences":   {forgeSigned(t, r, func(p map[string]any) { p["aud"] = []string{"api", "other"} }), valid, accesstoken.ErrClaims},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := accesstoken.Verify(tc.tok, r, tc.v)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// forgeSigned signs an arbitrary payload with the ring's real key, to test
// claim checks that Sign itself would never produce.
func forgeSigned(t *testing.T, r *keys.Ring, edit func(map[string]any)) string {
	t.Helper()
	p := payload()
	p["sub"] = "user-1"
	edit(p)
	signer, err := r.SigningKey().Signer()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(p)
	jws, err := signer.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

// An expired but authentic token still yields its claims (for refresh binding).
func TestExpiredReturnsClaims(t *testing.T) {
	r := ring(t, "ES256")
	tok, _ := accesstoken.Sign(r.SigningKey(), claims())
	c, err := accesstoken.Verify(tok, r, accesstoken.Validation{Issuer: valid.Issuer, Audience: "api", Now: now.Add(time.Hour)})
	if !errors.Is(err, accesstoken.ErrExpired) || c.SessionID != "sid-1" {
		t.Fatalf("Verify(expired) = %+v, %v", c, err)
	}
}

func FuzzVerify(f *testing.F) {
	r := ring(f, "EdDSA")
	tok, _ := accesstoken.Sign(r.SigningKey(), claims())
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := accesstoken.Verify(s, r, valid)
		if err == nil && s != tok && c.Subject != "user-1" {
			t.Fatalf("Verify accepted %q", s)
		}
	})
}

// A DPoP-bound token carries its key's thumbprint as cnf.jkt, and reads back
// with it; an unbound one carries no cnf at all.
func TestConfirmationClaim(t *testing.T) {
	r := ring(t, "EdDSA")
	for _, jkt := range []string{"", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"} {
		c := claims()
		c.JKT = jkt
		tok, err := accesstoken.Sign(r.SigningKey(), c)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if has := strings.Contains(string(payload), `"cnf"`); has != (jkt != "") {
			t.Errorf("jkt %q: payload %s", jkt, payload)
		}
		got, err := accesstoken.Verify(tok, r, valid)
		if err != nil || got.JKT != jkt {
			t.Errorf("jkt %q: Verify = %q, %v", jkt, got.JKT, err)
		}
	}
}

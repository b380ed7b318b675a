package dpop_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/dpop"
)

// FuzzVerify feeds arbitrary DPoP header values (and access tokens) to
// Verify: it must never panic, refuse with anything but an *Error, or accept
// a proof that is not validly signed by its own jwk for this request.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, dpop.Config{})
	now := fx.clock.Now()
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		f.Add(forge(f, now, forgery{alg: jose.SignatureAlgorithm(alg), key: keyFor(f, alg)}), "")
	}
	f.Add(fx.proof(f, func(p *dpop.Params) { p.AccessToken = "tok" }), "tok")
	f.Add(forge(f, now, forgery{alg: "none", key: fx.key}), "")
	f.Add(forge(f, now, forgery{alg: jose.ES256, key: fx.key, header: map[string]any{"jwk": &jose.JSONWebKey{Key: fx.key}}}), "")
	f.Add(forge(f, now, forgery{alg: jose.HS256, key: []byte(strings.Repeat("k", 32))}), "")
	f.Add("", "")
	f.Add("..", "")
	f.Add("eyJ.eyJ.", "x")

	algs := []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}
	f.Fuzz(func(t *testing.T, proof, token string) {
		r := request(proof)
		r.AccessToken = token
		p, err := fx.v.Verify(context.Background(), r)
		if err != nil {
			var e *dpop.Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify = %v, want a *dpop.Error", err)
			}
			return
		}
		// Accepted: it must be a proof go-jose verifies with its own jwk,
		// for this request, with the ath of the token.
		jws, err := jose.ParseSignedCompact(proof, algs)
		if err != nil {
			t.Fatalf("accepted a proof go-jose cannot parse: %v", err)
		}
		h := jws.Signatures[0].Protected
		if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || h.ExtraHeaders["typ"] != dpop.Type {
			t.Fatalf("accepted a proof without a public jwk or typ %s", dpop.Type)
		}
		if _, err := jws.Verify(h.JSONWebKey.Key); err != nil {
			t.Fatalf("accepted a proof whose signature does not verify: %v", err)
		}
		if jkt, _ := dpop.Thumbprint(h.JSONWebKey.Key); jkt != p.JKT {
			t.Fatalf("JKT %s, want %s", p.JKT, jkt)
		}
		if token != "" {
			sum := sha256.Sum256([]byte(token))
			payload := jws.UnsafePayloadWithoutVerification()
			if !strings.Contains(string(payload), base64.RawURLEncoding.EncodeToString(sum[:])) {
				t.Fatal("accepted a proof without the token's ath")
			}
		}
	})
}

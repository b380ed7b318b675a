package accesstoken_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/accesstoken"
	"github.com/latchkey/latchkey/keys"
)

func BenchmarkSign(b *testing.B) {
	for _, alg := range keys.Algorithms() {
		b.Run(alg, func(b *testing.B) {
			r := ring(b, alg)
			c := claims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := accesstoken.Sign(r.SigningKey(), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range keys.Algorithms() {
		b.Run(alg, func(b *testing.B) {
			r := ring(b, alg)
			tok, _ := accesstoken.Sign(r.SigningKey(), claims())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := accesstoken.Verify(tok, r, valid); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRawVerify is the floor for Verify/EdDSA: one ed25519.Verify over the
// same signing input, with no parsing, lookup or claim checks.
func BenchmarkRawVerify(b *testing.B) {
	b.Run("EdDSA", func(b *testing.B) {
		r := ring(b, "EdDSA")
		tok, _ := accesstoken.Sign(r.SigningKey(), claims())
		dot := strings.LastIndexByte(tok, '.')
		input := []byte(tok[:dot])
		sig, _ := base64.RawURLEncoding.DecodeString(tok[dot+1:])
		pub := r.SigningKey().VerificationKey().(ed25519.PublicKey)
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(pub, input, sig) {
				b.Fatal("bad signature")
			}
		}
	})
}

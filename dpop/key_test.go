package dpop_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/dpop"
)

// A key saved as PEM or JWK loads back as the same key.
func TestKeyRoundTrip(t *testing.T) {
	p256, err := dpop.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if p256.Curve != elliptic.P256() {
		t.Fatalf("GenerateKey curve = %v", p256.Curve.Params().Name)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []crypto.Signer{p256, ed, rsaKey} {
		want, _ := dpop.Thumbprint(key.Public())
		for name, marshal := range map[string]func(crypto.Signer) ([]byte, error){"PEM": dpop.MarshalPEM, "JWK": dpop.MarshalJWK} {
			b, err := marshal(key)
			if err != nil {
				t.Fatalf("Marshal%s(%T) = %v", name, key, err)
			}
			got, err := dpop.ParseKey(append([]byte("\n "), b...))
			if err != nil {
				t.Fatalf("ParseKey(Marshal%s(%T)) = %v", name, key, err)
			}
			if k, ok := got.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !k.Equal(key) {
				t.Fatalf("ParseKey(Marshal%s(%T)) = another key", name, key)
			}
			if jkt, _ := dpop.Thumbprint(got.Public()); jkt != want {
				t.Fatalf("thumbprint %s after Marshal%s, want %s", jkt, name, want)
			}
		}
	}
}

// ParseKey refuses public keys, garbage and keys NewProof cannot sign with.
func TestParseKeyRefuses(t *testing.T) {
	key := mustKey(t)
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	der224, err := x509.MarshalPKCS8PrivateKey(p224)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := dpop.MarshalJWK(key)
	if err != nil {
		t.Fatal(err)
	}
	pubJWK := bytes.Replace(jwk, []byte(`"d":`), []byte(`"x-d":`), 1)
	for name, data := range map[string][]byte{
		"public PEM":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"public JWK":   pubJWK,
		"P-224":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der224}),
		"garbage":      []byte("not a key"),
		"broken JWK":   []byte(`{"kty":"EC"`),
		"broken PEM":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}),
		"two PEM keys": append(must(dpop.MarshalPEM(key)), must(dpop.MarshalPEM(key))...),
		"empty":        nil,
	} {
		if _, err := dpop.ParseKey(data); err == nil {
			t.Errorf("ParseKey(%s) = nil error", name)
		} else if strings.Contains(err.Error(), string(jwk)) {
			t.Errorf("ParseKey(%s) error quotes the key", name)
		}
	}
	if _, err := dpop.Thumbprint(key); err == nil {
		t.Error("Thumbprint(private key) = nil error")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

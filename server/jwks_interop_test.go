package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/latchkey/latchkey"
)

// A verifier from another JOSE library (lestrrat-go/jwx) fetches the JWKS and
// verifies latchkey's access tokens, for every asymmetric algorithm and after
// a key rotation.
func TestJWKSInteroperates(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, func(s *setup) { s.cfg = func(c *latchkey.Config) { c.SigningAlg = alg; c.Now = nil } })
			verify := func(tok string) {
				t.Helper()
				set, err := jwk.Fetch(context.Background(), e.url+"/.well-known/jwks.json", jwk.WithHTTPClient(http.DefaultClient))
				if err != nil {
					t.Fatal(err)
				}
				parsed, err := jwt.ParseString(tok, jwt.WithKeySet(set), jwt.WithIssuer("http://latchkey.test"), jwt.WithAudience("latchkey"), jwt.WithValidate(true))
				if err != nil {
					t.Fatalf("jwx refuses latchkey's %s token: %v", alg, err)
				}
				if sub, _ := parsed.Subject(); sub == "" {
					t.Fatal("no subject")
				}
			}
			verify(e.login("test", "test").access)
			if err := e.auth.Keys().ForceRotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			verify(e.login("test", "test").access)
		})
	}
}

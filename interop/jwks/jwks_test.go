package jwks_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/servertest"
)

// A verifier from another JOSE library (lestrrat-go/jwx) fetches the JWKS and
// verifies latchkey's access tokens, for every asymmetric algorithm and after
// a key rotation.
func TestJWKSInteroperates(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			e := servertest.Start(t, servertest.Options{Config: func(c *latchkey.Config) { c.SigningAlg = alg; c.Now = nil }})
			verify := func(tok string) {
				t.Helper()
				set, err := jwk.Fetch(context.Background(), e.URL+"/.well-known/jwks.json", jwk.WithHTTPClient(http.DefaultClient))
				if err != nil {
					t.Fatal(err)
				}
				parsed, err := jwt.ParseString(tok, jwt.WithKeySet(set), jwt.WithIssuer(servertest.Issuer), jwt.WithAudience("latchkey"), jwt.WithValidate(true))
				if err != nil {
					t.Fatalf("jwx refuses latchkey's %s token: %v", alg, err)
				}
				if sub, _ := parsed.Subject(); sub == "" {
					t.Fatal("no subject")
				}
			}
			verify(login(t, e))
			if err := e.Auth.Keys().ForceRotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			verify(login(t, e))
		})
	}
}

// login signs in test/test and returns the access token.
func login(t *testing.T, e *servertest.Env) string {
	t.Helper()
	resp, err := http.Post(e.URL+"/login", "application/json", strings.NewReader(`{"username":"test","password":"test"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("login: %d, %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

package dpop_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/store/sqlite"
)

// exampleStore opens a store on a temporary SQLite file; close removes it.
func exampleStore() (db *sqlite.DB, close func()) {
	dir, err := os.MkdirTemp("", "dpop-example")
	if err != nil {
		panic(err)
	}
	db, err = sqlite.Open(context.Background(), filepath.Join(dir, "latchkey.db"))
	if err != nil {
		panic(err)
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

// A client signs a proof for each request with the key it keeps; a server
// verifies it, learns the key's thumbprint, and refuses the same proof twice.
func ExampleVerifier_Verify() {
	db, done := exampleStore()
	defer done()
	v, err := dpop.New(dpop.Config{Markers: db})
	if err != nil {
		panic(err)
	}

	// The client.
	key, _ := dpop.GenerateKey()
	proof, _ := dpop.NewProof(key, dpop.Params{Method: "POST", URL: "https://server.example/refresh"})

	// The server, with the URL the client used (scheme and host as seen in
	// front of any proxy).
	u, _ := url.Parse("https://server.example/refresh")
	r := dpop.Request{Method: "POST", URL: u, Proofs: []string{proof}}
	p, err := v.Verify(context.Background(), r)
	jkt, _ := dpop.Thumbprint(key.Public())
	fmt.Println(err, p.JKT == jkt, p.Algorithm)

	_, err = v.Verify(context.Background(), r)
	var e *dpop.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code+":", e.Message)
	}
	// Output:
	// <nil> true ES256
	// invalid_dpop_proof: the DPoP proof has been used already
}

// A server that requires nonces answers use_dpop_nonce with a DPoP-Nonce
// header; the client retries once with that nonce.
func ExampleVerifier_Nonce() {
	db, done := exampleStore()
	defer done()
	// The secret is the same on every node, derived from the server's keys.
	v, _ := dpop.New(dpop.Config{Markers: db, NonceKey: []byte("32 bytes of secret, for example.")})
	key, _ := dpop.GenerateKey()
	u, _ := url.Parse("https://server.example/oauth/token")

	send := func(nonce string) error {
		proof, _ := dpop.NewProof(key, dpop.Params{Method: "POST", URL: u.String(), Nonce: nonce})
		_, err := v.Verify(context.Background(), dpop.Request{Method: "POST", URL: u, Proofs: []string{proof}, RequireNonce: true})
		return err
	}
	err := send("")
	fmt.Println(errors.Is(err, dpop.ErrUseNonce))
	header := v.Nonce() // sent as DPoP-Nonce with the error
	fmt.Println(send(header))
	// Output:
	// true
	// <nil>
}

// A resource server that verified an access token offline (with the JWKS)
// checks that the request's proof is by the key the token is bound to.
func ExampleVerifier_VerifyBound() {
	db, done := exampleStore()
	defer done()
	v, _ := dpop.New(dpop.Config{Markers: db})
	key, _ := dpop.GenerateKey()
	token := "eyJ…" // its claims say cnf.jkt:
	cnfJKT, _ := dpop.Thumbprint(key.Public())

	u, _ := url.Parse("https://api.example/protected")
	proof, _ := dpop.NewProof(key, dpop.Params{Method: "GET", URL: u.String(), AccessToken: token})
	_, err := v.VerifyBound(context.Background(), dpop.Request{Method: "GET", URL: u, Proofs: []string{proof}, AccessToken: token}, cnfJKT)
	fmt.Println(err)

	thief, _ := dpop.GenerateKey()
	proof, _ = dpop.NewProof(thief, dpop.Params{Method: "GET", URL: u.String(), AccessToken: token})
	_, err = v.VerifyBound(context.Background(), dpop.Request{Method: "GET", URL: u, Proofs: []string{proof}, AccessToken: token}, cnfJKT)
	fmt.Println(errors.Is(err, dpop.ErrKeyMismatch))
	// Output:
	// <nil>
	// true
}

// A client keeps its key between runs as PKCS #8 PEM (or as a JWK).
func ExampleParseKey() {
	key, _ := dpop.GenerateKey()
	saved, _ := dpop.MarshalPEM(key)

	loaded, err := dpop.ParseKey(saved)
	before, _ := dpop.Thumbprint(key.Public())
	after, _ := dpop.Thumbprint(loaded.Public())
	fmt.Println(err, before == after)
	// Output: <nil> true
}

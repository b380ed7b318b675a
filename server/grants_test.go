package server_test

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/httpauth"
)

// apiKeyGrant is an application's own grant: a fixed key names the user
// "test" (whose id the test fills in).
func apiKeyGrant(userID *string) grant.Grant {
	return grant.Grant{
		Name:      "api_key",
		OAuthType: "urn:example:api-key",
		Account:   func(p grant.Params) string { return "api_key" },
		Resolve: func(ctx context.Context, r grant.Request) (grant.User, error) {
			if subtle.ConstantTimeCompare([]byte(r.Params.Get("key")), []byte("k-123")) != 1 {
				return grant.User{}, latchkey.ErrInvalidCredentials.WithMessage("Unknown API key.")
			}
			return grant.User{ID: *userID, Username: "test"}, nil
		},
	}
}

// An application's own grant works on POST /login and POST /oauth/token
// without touching a handler, gets a fresh session and the login rate limit,
// and is listed in the metadata.
func TestCustomGrant(t *testing.T) {
	var userID string
	trusted, err := httpauth.ParseTrustedProxies("127.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(s *setup) { s.grants = []grant.Grant{apiKeyGrant(&userID)}; s.trustedProxies = trusted })
	first := e.call("POST", "/login", "", `{"username":"test","password":"test"}`).want(t, 200, "")
	userID = first.str("uuid")

	r := e.call("POST", "/login", "", `{"grant":"api_key","key":"k-123"}`).want(t, 200, "")
	if r.str("access_token") == "" || !strings.HasPrefix(r.str("refresh_token"), "lk_rt_") {
		t.Fatalf("custom grant login = %s", r.raw)
	}
	p, err := e.auth.Verify(context.Background(), r.str("access_token"))
	if err != nil || p.UserID != userID || p.Fresh {
		t.Fatalf("the custom grant's token: %+v, %v (want user %s, not fresh: the grant does not set Fresh)", p, err, userID)
	}
	o := e.oauthCall("/oauth/token", "grant_type", "urn:example:api-key", "key", "k-123", "client_id", "app")
	if o.status != 200 || o.str("refresh_token") == "" {
		t.Fatalf("custom grant on /oauth/token = %d %s", o.status, o.raw)
	}
	e.oauthCall("/oauth/token", "grant_type", "urn:example:api-key", "key", "wrong", "client_id", "app").wantOAuth(t, 400, "invalid_grant")
	meta := e.call("GET", "/.well-known/oauth-authorization-server", "", "")
	if !strings.Contains(string(meta.raw), "urn:example:api-key") {
		t.Fatalf("the metadata does not list the grant: %s", meta.raw)
	}

	// Wrong keys count against the grant's account bucket like wrong
	// passwords, across addresses; that bucket is the grant's own, so a
	// user named "api_key" signs in with a password all the while.
	if r := e.call("POST", "/register", "", `{"username":"api_key","password":"long enough"}`); r.status != 201 {
		t.Fatalf("register = %d %s", r.status, r.raw)
	}
	limited := false
	for i := range 60 {
		from := fmt.Sprintf("198.51.100.%d", i)
		r := e.call("POST", "/login", "", `{"grant":"api_key","key":"guess"}`, "X-Forwarded-For", from)
		if r.status == http.StatusTooManyRequests {
			limited = true
			break
		}
		r.want(t, 401, "invalid_credentials")
	}
	if !limited {
		t.Fatal("60 wrong keys from 60 addresses were never rate limited")
	}
	e.call("POST", "/login", "", `{"grant":"api_key","key":"k-123"}`, "X-Forwarded-For", "203.0.113.1").want(t, 429, "rate_limited")
	e.call("POST", "/login", "", `{"username":"api_key","password":"long enough"}`, "X-Forwarded-For", "203.0.113.1").want(t, 200, "")
}

// POST /login selects its grant by the body; an unknown one, a grant the
// server does not offer, or a field of the wrong type is a clear 400.
func TestLoginGrantSelection(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/login", "", `{"grant":"magic","token":"x"}`).want(t, 400, "invalid_request")
	e.call("POST", "/login", "", `{"provider":"google","id_token":"x"}`).want(t, 400, "invalid_request")
	r := e.call("POST", "/login", "", `{"username":5,"password":"test"}`).want(t, 400, "invalid_request")
	if !strings.Contains(r.str("message"), "username has the wrong type") {
		t.Fatalf("message = %q", r.str("message"))
	}
	e.call("POST", "/login", "", `{"username":"test","password":"test","cookies":"yes"}`).want(t, 400, "invalid_request")
	e.call("POST", "/login", "", `[1,2]`).want(t, 400, "invalid_request")
	e.call("POST", "/login", "", `null`).want(t, 400, "invalid_request")
	e.call("POST", "/login", "", `{"username":"test","password":"test","extra":{"a":1}}`).want(t, 200, "")
}

// A malformed request between wrong guesses does not reset the count of
// failures (it neither succeeds nor guesses).
func TestMalformedLoginDoesNotResetLimit(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("p", 1025)
	limited := false
	for i := range 12 {
		if i%2 == 1 {
			e.call("POST", "/login", "", `{"username":"test","password":"`+long+`"}`)
			continue
		}
		if r := e.call("POST", "/login", "", `{"username":"test","password":"wrong one"}`); r.status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("wrong passwords interleaved with malformed requests were never rate limited")
	}
}

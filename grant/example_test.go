package grant_test

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

// An application adds its own grant (here an API key for a service account)
// to the token server: POST /login with {"grant": "api_key", "key": …} then
// gets the same session, tokens and rate limit as a password sign-in.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "grant-example")
	defer os.RemoveAll(dir)
	st, _ := sqlite.Open(ctx, filepath.Join(dir, "latchkey.db"))
	defer st.Close()
	secret := make([]byte, 32)
	rand.Read(secret)
	auth, _ := latchkey.New(ctx, latchkey.Config{Store: st, Secret: secret})
	defer auth.Close()
	accounts, _ := users.New(users.Config{Store: st})
	robot, _ := accounts.Register(ctx, "robot", "an unused long password")

	apiKey := grant.Grant{
		Name: "api_key",
		Resolve: func(ctx context.Context, r grant.Request) (grant.User, error) {
			if subtle.ConstantTimeCompare([]byte(r.Params.Get("key")), []byte("k-123")) != 1 {
				return grant.User{}, latchkey.ErrInvalidCredentials.WithMessage("Unknown API key.")
			}
			return grant.User{ID: robot.ID, Username: robot.Username}, nil
		},
	}
	srv, _ := server.New(server.Config{Auth: auth, Users: accounts, Grants: []grant.Grant{apiKey}})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	for _, key := range []string{"k-123", "guess"} {
		resp, _ := http.Post(ts.URL+"/login", "application/json", strings.NewReader(`{"grant":"api_key","key":"`+key+`"}`))
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, body["token_type"], body["error"])
	}
	// Output:
	// 200 Bearer <nil>
	// 401 <nil> invalid_credentials
}

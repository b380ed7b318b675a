package client_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/password"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

// A Transport turns an http.Client into one that keeps a latchkey session
// alive: every request carries the current access token, and refreshes happen
// once however many goroutines share it.
func Example() {
	tr, err := client.New(client.Config{
		Server: "https://auth.example.com",
		Token:  client.Token{AccessToken: "eyJ…", RefreshToken: "lk_rt_…", Expiry: time.Now().Add(15 * time.Minute)},
		Save: func(ctx context.Context, t client.Token) error {
			return nil // persist t.RefreshToken: the old one is spent
		},
	})
	if err != nil {
		panic(err)
	}
	api := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	_ = api // api.Get("https://api.example.com/things") …
	fmt.Println(tr.Token().RefreshToken)
	// Output: lk_rt_…
}

// With a DPoP key the session is bound to it: a stolen token is useless
// without the key. The key lives in a file next to wherever the refresh token
// is kept; Login signs in with a proof (fetching the server's nonce on the
// way), and the Transport then signs a proof for every refresh and request.
func ExampleLogin_dPoP() {
	url, stop := exampleServer() // a latchkey server with the user test/test
	defer stop()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	key, err := client.LoadOrCreateKey(filepath.Join(dir, "dpop-key.pem"))
	if err != nil {
		panic(err)
	}
	tr, err := client.Login(context.Background(), client.Config{Server: url, Key: key}, "test", "test")
	if err != nil {
		panic(err)
	}
	api := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := api.Get(url + "/me")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var me struct{ Username string }
	json.NewDecoder(resp.Body).Decode(&me)
	fmt.Println(resp.StatusCode, me.Username)

	// The access token alone, as a thief would send it, is refused.
	req, _ := http.NewRequest("GET", url+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+tr.Token().AccessToken)
	stolen, _ := http.DefaultClient.Do(req)
	stolen.Body.Close()
	fmt.Println(stolen.StatusCode, strings.Fields(stolen.Header.Get("WWW-Authenticate"))[0])
	// Output:
	// 200 test
	// 401 DPoP
}

// exampleServer starts a latchkey server over loopback with a SQLite file in
// a temporary directory (which turns DPoP on) and the user test/test.
func exampleServer() (url string, stop func()) {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "latchkey-example")
	st, err := sqlite.Open(ctx, filepath.Join(dir, "example.db"))
	if err != nil {
		panic(err)
	}
	a, err := latchkey.New(ctx, latchkey.Config{Store: st, Secret: []byte(rand.Text() + rand.Text())})
	if err != nil {
		panic(err)
	}
	u, _ := users.New(users.Config{Store: st, Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if _, _, err := u.Ensure(ctx, "test", "test"); err != nil {
		panic(err)
	}
	srv, err := server.New(server.Config{Auth: a, Users: u, Markers: st})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv.Handler())
	return hs.URL, func() { hs.Close(); a.Close(); st.Close(); os.RemoveAll(dir) }
}

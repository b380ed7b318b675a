package client_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/password"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

// startServer runs a real latchkey server with a one-second access token and
// counts the refreshes it serves.
func startServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	return startServerSeeing(t, nil)
}

// startServerSeeing is startServer that also shows each request to see.
func startServerSeeing(t *testing.T, see func(*http.Request)) (string, *atomic.Int64) {
	t.Helper()
	url, refreshes, _ := startServerHandler(t, see)
	return url, refreshes
}

// startServerHandler is startServerSeeing that also returns the server's
// handler, to serve it on a second origin.
func startServerHandler(t *testing.T, see func(*http.Request)) (string, *atomic.Int64, http.Handler) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "client.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	a, err := latchkey.New(ctx, latchkey.Config{Store: st, Secret: secret, AccessTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	u, _ := users.New(users.Config{Store: st, Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if _, _, err := u.Ensure(ctx, "test", "test"); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Auth: a, Users: u, Markers: st}) // markers: DPoP on
	if err != nil {
		t.Fatal(err)
	}
	var refreshes atomic.Int64
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refresh" {
			refreshes.Add(1)
		}
		if see != nil {
			see(r)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL, &refreshes, h
}

func login(t *testing.T, url string) client.Token {
	t.Helper()
	resp, err := http.Post(url+"/login", "application/json", strings.NewReader(`{"username":"test","password":"test"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresAt    int64  `json:"expires_at"`
	}
	json.NewDecoder(resp.Body).Decode(&p)
	return client.Token{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, Expiry: time.Unix(p.ExpiresAt, 0)}
}

// 100 goroutines call a protected endpoint across several access-token
// expiries: no call fails, and each expiry costs one refresh — with Bearer
// tokens and with a session bound to a DPoP key alike.
func TestManyGoroutinesAcrossExpiries(t *testing.T) {
	t.Run("bearer", func(t *testing.T) { manyGoroutines(t, false) })
	t.Run("dpop", func(t *testing.T) { manyGoroutines(t, true) })
}

func manyGoroutines(t *testing.T, withKey bool) {
	url, refreshes := startServer(t)
	var saved atomic.Int64
	cfg := client.Config{Server: url, RefreshBefore: 300 * time.Millisecond,
		Save: func(context.Context, client.Token) error { saved.Add(1); return nil }}
	var tr *client.Transport
	var err error
	if withKey {
		if cfg.Key, err = client.GenerateKey(); err != nil {
			t.Fatal(err)
		}
		tr, err = client.Login(t.Context(), cfg, "test", "test")
		saved.Add(-1) // the login's pair
	} else {
		cfg.Token = login(t, url)
		tr, err = client.New(cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	const run = 3500 * time.Millisecond
	deadline := time.Now().Add(run)
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				resp, err := c.Get(url + "/protected")
				calls.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					if err == nil {
						var e struct{ Error string }
						json.NewDecoder(resp.Body).Decode(&e)
						resp.Body.Close()
						err = errors.New(e.Error)
					}
					t.Logf("call failed: %v", err)
					continue
				}
				resp.Body.Close()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	// exp is rounded up to a whole second, so each 1-second token lives 1-2 s
	// and a 3.5 s run crosses 2 to 4 expiries. Without coalescing, each
	// expiry would cost up to 100 refreshes.
	n := refreshes.Load()
	t.Logf("%d calls, %d failures, %d refreshes over %v", calls.Load(), failures.Load(), n, run)
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed", failures.Load(), calls.Load())
	}
	if n < 2 || n > 5 {
		t.Fatalf("%d refreshes for 2-4 expiries: concurrent refreshes were not coalesced", n)
	}
	if saved.Load() != n {
		t.Fatalf("Save was called %d times for %d refreshes", saved.Load(), n)
	}
}

// A token the client thinks is fresh but the server calls expired is
// refreshed once and the request retried, body included.
func TestReactiveRefresh(t *testing.T) {
	url, refreshes := startServer(t)
	tok := login(t, url)
	time.Sleep(time.Until(tok.Expiry) + 100*time.Millisecond) // expired on the server
	tok.Expiry = time.Now().Add(time.Hour)                    // but the client believes otherwise
	tr, _ := client.New(client.Config{Server: url, Token: tok, RefreshBefore: time.Millisecond})
	req, _ := http.NewRequest("POST", url+"/logout?scope=others", strings.NewReader(""))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("request after the server-side expiry = %v %v", resp, err)
	}
	if refreshes.Load() != 1 {
		t.Fatalf("%d refreshes, want 1", refreshes.Load())
	}
}

// The Transport names itself in its refreshes and in requests that name no
// client, and leaves a User-Agent the caller set alone.
func TestUserAgent(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	url, _ := startServerSeeing(t, func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen[r.URL.Path] = r.UserAgent()
	})
	tok := login(t, url)
	tok.AccessToken = "" // the first request refreshes
	tr, _ := client.New(client.Config{Server: url, Token: tok})
	c := &http.Client{Transport: tr}
	for path, ua := range map[string]string{"/protected": "", "/me": "my-app/2"} {
		req, _ := http.NewRequest("GET", url+path, nil)
		if ua != "" {
			req.Header.Set("User-Agent", ua)
		}
		resp, err := c.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s = %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	for path, want := range map[string]string{"/refresh": client.UserAgent, "/protected": client.UserAgent, "/me": "my-app/2"} {
		if seen[path] != want {
			t.Errorf("%s was sent with User-Agent %q, want %q", path, seen[path], want)
		}
	}
}

func TestSessionEnded(t *testing.T) {
	url, _ := startServer(t)
	tok := login(t, url)
	tr, _ := client.New(client.Config{Server: url, Token: tok})
	c := &http.Client{Transport: tr}
	req, _ := http.NewRequest("POST", url+"/logout", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("logout = %v %v", resp, err)
	}
	time.Sleep(1100 * time.Millisecond)
	_, err := c.Get(url + "/protected")
	if !errors.Is(err, client.ErrSessionEnded) {
		t.Fatalf("after logout and expiry: %v, want ErrSessionEnded", err)
	}
}

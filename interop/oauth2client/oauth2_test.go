package oauth2client_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/servertest"
)

// golang.org/x/oauth2, which nobody here wrote, signs in with the password
// grant and then keeps eight goroutines calling /protected across four
// access-token expiries (real time, 2 s tokens): every call succeeds and each
// refresh rotates the refresh token.
func TestGolangOAuth2Client(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 8 s of real time")
	}
	e := servertest.Start(t, servertest.Options{
		Config: func(c *latchkey.Config) { c.Now = time.Now; c.AccessTTL = 2 * time.Second },
	})
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
	for _, style := range []struct {
		name  string
		style oauth2.AuthStyle
	}{{"InHeader", oauth2.AuthStyleInHeader}, {"InParams", oauth2.AuthStyleInParams}} {
		t.Run(style.name, func(t *testing.T) {
			t.Parallel()
			conf := &oauth2.Config{ClientID: "app", Scopes: []string{"account"},
				Endpoint: oauth2.Endpoint{TokenURL: e.URL + "/oauth/token", AuthStyle: style.style}}
			tok, err := conf.PasswordCredentialsToken(ctx, "test", "test")
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Extra("scope") != "account" || time.Until(tok.Expiry) > 2*time.Second {
				t.Fatalf("token %+v", tok)
			}
			// Refresh 300 ms before expiry rather than x/oauth2's default 10 s,
			// which is longer than these tokens live.
			ts := oauth2.ReuseTokenSourceWithExpiry(tok, conf.TokenSource(ctx, tok), 300*time.Millisecond)
			client := oauth2.NewClient(ctx, ts)

			var (
				mu       sync.Mutex
				refreshs = []string{tok.RefreshToken}
				calls    atomic.Int64
				failures atomic.Int64
				wg       sync.WaitGroup
			)
			stop := time.Now().Add(4*2*time.Second + 200*time.Millisecond)
			for range 8 {
				wg.Go(func() {
					for time.Now().Before(stop) {
						resp, err := client.Get(e.URL + "/protected")
						calls.Add(1)
						if err != nil || resp.StatusCode != 200 {
							failures.Add(1)
							if err == nil {
								t.Errorf("GET /protected: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
							} else {
								t.Errorf("GET /protected: %v", err)
							}
						}
						if resp != nil {
							resp.Body.Close()
						}
						cur, err := ts.Token()
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						if last := refreshs[len(refreshs)-1]; cur.RefreshToken != last {
							refreshs = append(refreshs, cur.RefreshToken)
						}
						mu.Unlock()
						time.Sleep(20 * time.Millisecond)
					}
				})
			}
			wg.Wait()
			if failures.Load() != 0 {
				t.Fatalf("%d of %d calls failed", failures.Load(), calls.Load())
			}
			// Four expiries: four refreshes, each with a new refresh token.
			seen := map[string]bool{}
			for _, rt := range refreshs {
				if seen[rt] {
					t.Fatalf("refresh token repeated: the refresh did not rotate it")
				}
				seen[rt] = true
			}
			if n := len(refreshs) - 1; n < 4 || n > 5 {
				t.Fatalf("%d refreshes over 4 expiries (%d calls), want 4 or 5", n, calls.Load())
			}
			t.Logf("%d calls, %d refreshes, 0 failures", calls.Load(), len(refreshs)-1)
		})
	}
}

package metrics_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/metrics"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

// tokenServer is the token server's handler over a fresh SQLite file, with
// the user test/test, with or without metrics.
type tokenServer struct {
	handler http.Handler
	auth    *latchkey.Auth
	metrics *metrics.Metrics // nil: off
}

func newTokenServer(tb testing.TB, withMetrics bool) *tokenServer {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "latchkey.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	ts := &tokenServer{}
	// No grace window: a replayed refresh token is reuse at once.
	cfg := latchkey.Config{Store: db, Secret: secret, ReuseGrace: -1}
	if withMetrics {
		ts.metrics = metrics.New()
		cfg.Observer = ts.metrics
	}
	if ts.auth, err = latchkey.New(ctx, cfg); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ts.auth.Close() })
	if ts.metrics != nil {
		ts.metrics.WatchKeys(ts.auth)
	}
	u, err := users.New(users.Config{Store: db, Params: servertest.CheapHash})
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := u.Ensure(ctx, "test", "test"); err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Config{Auth: ts.auth, Users: u, Metrics: ts.metrics})
	if err != nil {
		tb.Fatal(err)
	}
	ts.handler = srv.Handler()
	return ts
}

type pair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	UUID         string `json:"uuid"`
	SessionID    string `json:"session_id"`
}

// do serves one request and decodes a token pair from its answer, if any.
func (ts *tokenServer) do(method, path, bearer string, body any) (int, pair) {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = "198.51.100.7:4242"
	r.Header.Set("User-Agent", "metrics-test-agent")
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	ts.handler.ServeHTTP(w, r)
	var p pair
	json.Unmarshal(w.Body.Bytes(), &p)
	return w.Code, p
}

func (ts *tokenServer) login(tb testing.TB) pair {
	tb.Helper()
	code, p := ts.do("POST", "/login", "", map[string]string{"username": "test", "password": "test"})
	if code != 200 || p.RefreshToken == "" {
		tb.Fatalf("POST /login = %d", code)
	}
	return p
}

func (ts *tokenServer) refresh(token string) (int, pair) {
	return ts.do("POST", "/refresh", "", map[string]string{"refresh_token": token})
}

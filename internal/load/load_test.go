package load_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/load"
	"github.com/latchkey/latchkey/password"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

func startServer(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "load.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	a, err := latchkey.New(ctx, latchkey.Config{Store: st, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	u, _ := users.New(users.Config{Store: st, Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	srv, err := server.New(server.Config{Auth: a, Users: u, Registration: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// Every mode runs against a real server, within its bounds, without errors;
// race mode sees no fork and no 409.
func TestModes(t *testing.T) {
	url := startServer(t)
	for _, mode := range []string{load.ModeLogin, load.ModeRefresh, load.ModeProtected, load.ModeMixed, load.ModeRace} {
		t.Run(mode, func(t *testing.T) {
			cfg := load.Config{Target: url, Mode: mode, Concurrency: 8, Duration: 20 * time.Second, Requests: 40, Users: 3}
			if err := load.Prepare(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			res, err := load.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.ByStatus[409] != 0 || res.Forks != 0 {
				t.Fatalf("%s: %+v", mode, res)
			}
			if mode == load.ModeRace {
				if res.Rounds != 40 || res.Requests != 40*8 {
					t.Fatalf("race ran %d rounds, %d requests; want 40 and 320", res.Rounds, res.Requests)
				}
			} else if res.Requests < 40 || res.Requests > 40+8 {
				t.Fatalf("%s sent %d requests; want about 40", mode, res.Requests)
			}
			if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
				t.Fatalf("latencies out of order: %+v", res)
			}
			var out bytes.Buffer
			load.Format(&out, res)
			if !strings.Contains(out.String(), "throughput") {
				t.Fatalf("report: %s", out.String())
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBaseline(t *testing.T) {
	b, err := load.StartBaseline(t.TempDir(), "bench-password")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, mode := range []string{load.ModeProtected, load.ModeRefresh, load.ModeLogin} {
		// The run ends after 50 requests; the long bound only leaves room for
		// 50 argon2id logins under -race on a busy 2-CPU machine (~5/s).
		res, err := load.Run(context.Background(), load.Config{Target: b.URL, Mode: mode, Concurrency: 4, Requests: 50, Duration: 60 * time.Second})
		if err != nil || res.Errors != 0 || res.Requests < 50 {
			t.Fatalf("baseline %s: %+v, %v", mode, res, err)
		}
	}
}

// The baseline's /login is a real argon2id check: a wrong password fails.
func TestBaselineLoginChecksThePassword(t *testing.T) {
	b, err := load.StartBaseline(t.TempDir(), "right")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err := load.Run(context.Background(), load.Config{Target: b.URL, Mode: load.ModeLogin, Password: "wrong", Concurrency: 2, Requests: 4, Duration: 10 * time.Second})
	if err != nil || res.Errors != res.Requests || res.Requests == 0 {
		t.Fatalf("logins with a wrong password against the baseline: %+v, %v; want every one refused", res, err)
	}
}

func TestBadMode(t *testing.T) {
	if _, err := load.Run(context.Background(), load.Config{Mode: "stampede"}); err == nil {
		t.Fatal("an unknown mode ran")
	}
}

// Each ceiling serves its mode without errors, and does the work it stands
// for: the no-store refresh chains MAC-checked tokens and refuses a forged
// one; the verify ceiling refuses a token whose signature is wrong, where the
// fixed-body one answers anything.
func TestCeilings(t *testing.T) {
	for _, kind := range []string{load.CeilingNoStore, load.CeilingFixed, load.CeilingVerify} {
		c, err := load.StartCeiling(kind, "bench-password")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		mode := load.ModeProtected
		if kind == load.CeilingNoStore {
			mode = load.ModeRefresh
		}
		res, err := load.Run(context.Background(), load.Config{Target: c.URL, Mode: mode, Concurrency: 4, Requests: 200, Duration: 60 * time.Second})
		if err != nil || res.Errors != 0 || res.Requests < 200 {
			t.Fatalf("ceiling %s, mode %s: %+v, %v", kind, mode, res, err)
		}
	}
	c, err := load.StartCeiling(load.CeilingVerify, "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	login, err := http.Post(c.URL+"/login", "application/json", strings.NewReader(`{"username":"u","password":"pw"}`))
	if err != nil {
		t.Fatal(err)
	}
	var pair struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		SessionID    string `json:"session_id"`
	}
	json.NewDecoder(login.Body).Decode(&pair)
	login.Body.Close()
	if login.StatusCode != 200 || pair.AccessToken == "" || pair.SessionID == "" {
		t.Fatalf("ceiling login: %d %+v", login.StatusCode, pair)
	}
	call := func(method, path, bearer string) int {
		req, _ := http.NewRequest(method, c.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	flip := func(s string) string {
		b := []byte(s)
		i := len(b) - 10
		b[i] ^= 1
		return string(b)
	}
	if got := call("GET", "/protected", pair.AccessToken); got != 200 {
		t.Fatalf("verify ceiling refused its own token: %d", got)
	}
	if got := call("GET", "/protected", flip(pair.AccessToken)); got != 401 {
		t.Fatalf("verify ceiling answered a token with a bad signature: %d", got)
	}
	if got := call("POST", "/refresh", flip(pair.RefreshToken)); got != 401 {
		t.Fatalf("no-store ceiling answered a forged refresh token: %d", got)
	}
	if got := call("POST", "/refresh", pair.RefreshToken); got != 200 {
		t.Fatalf("no-store ceiling refused its own refresh token: %d", got)
	}
	if _, err := load.StartCeiling("teleport", "pw"); err == nil {
		t.Fatal("an unknown ceiling started")
	}
}

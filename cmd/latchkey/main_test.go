package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
)

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var listening = regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)

// startServe runs `latchkey serve` in the background and returns its URL, its
// log, and a stop function that cancels it and returns run's error.
func startServe(t *testing.T, args []string, env map[string]string) (string, *testenv.Buffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testenv.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), envFunc(env), strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listening.FindStringSubmatch(logs.String()); m != nil {
			stopped := false
			var err error
			stop := func() error {
				if !stopped {
					stopped = true
					cancel()
					err = <-done
				}
				return err
			}
			t.Cleanup(func() { stop() })
			return m[1], logs, stop
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func post(t *testing.T, url, bearer, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return send(t, req)
}

// send sends req and decodes its JSON answer (nil if it has none).
func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestServeDemoFlowAndSecretFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "lk.db")
	url, logs, stop := startServe(t, []string{"--demo", "--store", "sqlite:" + db}, nil)
	code, pair := post(t, url+"/login", "", `{"username":"test", "password":"test"}`)
	if code != 200 {
		t.Fatalf("login = %d %v", code, pair)
	}
	access, refresh := pair["access_token"].(string), pair["refresh_token"].(string)
	req, _ := http.NewRequest("GET", url+"/protected", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("protected = %v %v", resp, err)
	}
	resp.Body.Close()
	if code, out := post(t, url+"/refresh", refresh, ""); code != 200 {
		t.Fatalf("refresh = %d %v", code, out)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	fi, err := os.Stat(db + ".secret")
	if err != nil {
		t.Fatalf("no secret file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode = %v, want 0600", fi.Mode().Perm())
	}
	secret, _ := os.ReadFile(db + ".secret")
	if strings.Contains(logs.String(), strings.TrimSpace(string(secret))) || strings.Contains(logs.String(), access) || strings.Contains(logs.String(), refresh) {
		t.Fatal("a secret or token was logged")
	}
	// A restart on the same file keeps the same secret and keys: the old
	// refresh token's session is still known (rotated: reuse is detected).
	url, _, _ = startServe(t, []string{"--demo", "--store", "sqlite:" + db}, nil)
	if code, out := post(t, url+"/login", "", `{"username":"test", "password":"test"}`); code != 200 {
		t.Fatalf("login after restart = %d %v", code, out)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"LATCHKEY_STORE":      "sqlite:" + filepath.Join(dir, "env.db"),
		"LATCHKEY_ACCESS_TTL": "90s",
		"LATCHKEY_DEMO":       "true",
	}
	// The flag wins over the environment.
	url, _, _ := startServe(t, []string{"--access-ttl", "2m"}, env)
	code, pair := post(t, url+"/login", "", `{"username":"test","password":"test"}`)
	if code != 200 || pair["expires_in"].(float64) != 120 {
		t.Fatalf("login = %d %v, want expires_in 120", code, pair)
	}

	// LATCHKEY_TRUSTED_PROXIES: the loopback peer is a proxy, and the session
	// records the address it forwards.
	env["LATCHKEY_STORE"] = "sqlite:" + filepath.Join(dir, "proxied.db")
	env["LATCHKEY_TRUSTED_PROXIES"] = "127.0.0.1, ::1"
	url, _, _ = startServe(t, nil, env)
	req, _ := http.NewRequest("POST", url+"/login", strings.NewReader(`{"username":"test","password":"test"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
	if code, _ := send(t, req); code != 200 {
		t.Fatalf("login = %d", code)
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"sessions", "list", "--store", env["LATCHKEY_STORE"], "test"}, envFunc(env), strings.NewReader(""), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "203.0.113.9") || strings.Contains(out.String(), "198.51.100.1") {
		t.Fatalf("sessions list shows no forwarded client address 203.0.113.9:\n%s", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "no command"},
		{[]string{"frobnicate"}, nil, "unknown command"},
		{[]string{"serve", "--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"serve", "--access-ttl", "soon"}, nil, "access-ttl"},
		{[]string{"serve"}, map[string]string{"LATCHKEY_ACCESS_TTL": "soon"}, "LATCHKEY_ACCESS_TTL"},
		{[]string{"serve", "--token-locations", "headers,carrier-pigeon"}, nil, "carrier-pigeon"},
		{[]string{"serve", "--store", "mysql://x"}, nil, "--store"},
		{[]string{"serve", "--trusted-proxies", "10.0.0.0/8,lb.internal"}, nil, "lb.internal"},
		{[]string{"serve"}, map[string]string{"LATCHKEY_TRUSTED_PROXIES": "0.0.0.0/0"}, "every address"},
		{[]string{"users"}, nil, "subcommand"},
		{[]string{"users", "add"}, nil, "argument"},
		{[]string{"users", "frobnicate"}, nil, "unknown command"},
		{[]string{"bench"}, nil, "unknown command"},
		{[]string{"users", "list", "extra"}, nil, "no arguments"},
		// Each command takes only its own flags.
		{[]string{"users", "list", "--confidential"}, nil, "--confidential"},
		{[]string{"users", "list", "--access-ttl", "1m"}, nil, "--access-ttl"},
		{[]string{"keys", "list", "--force"}, nil, "--force"},
		{[]string{"clients", "add", "--force", "x"}, nil, "--force"},
		{[]string{"sessions", "list", "--demo", "alice"}, nil, "--demo"},
		{[]string{"serve", "--confidential"}, nil, "--confidential"},
		{[]string{"version", "--store", "sqlite:x.db"}, nil, "--store"},
		{[]string{"users", "disable", "--access-ttl", "soon", "alice"}, nil, "access-ttl"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), tc.args, envFunc(tc.env), strings.NewReader(""), &bytes.Buffer{}, &stderr)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestStartupRefusals(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"weak secret":        {[]string{"--store", "sqlite:" + filepath.Join(dir, "a.db")}, map[string]string{"LATCHKEY_SECRET": "hunter2"}, "LATCHKEY_SECRET"},
		"repetitive secret":  {[]string{"--store", "sqlite:" + filepath.Join(dir, "b.db")}, map[string]string{"LATCHKEY_SECRET": "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh"}, "repetitive"},
		"bad algorithm":      {[]string{"--store", "sqlite:" + filepath.Join(dir, "c.db"), "--signing-alg", "none"}, nil, "none"},
		"postgres no secret": {[]string{"--store", "postgres://u:pw@127.0.0.1:1/x"}, nil, "LATCHKEY_SECRET"},
		"password in query":  {[]string{"--issuer", "http://x", "--store", "postgres://u@127.0.0.1:1/x?password=hunter2&sslmode=disable"}, map[string]string{"LATCHKEY_SECRET": "uR2m8VQ0d3Yc5Jk1nX7pT4sW9bE6aH0gL3iO8qZ5fC2="}, "opening store"},
		"scheme forgotten":   {[]string{"--store", "u:hunter2@127.0.0.1:5432/x"}, nil, "want sqlite:PATH"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...), envFunc(tc.env), strings.NewReader(""), &bytes.Buffer{}, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks a password: %v", err)
			}
		})
	}
}

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	store := "sqlite:" + filepath.Join(dir, "admin.db")
	admin := func(stdin string, args ...string) (string, error) {
		var out, stderr bytes.Buffer
		full := append([]string{args[0], args[1], "--store", store}, args[2:]...)
		err := run(context.Background(), full, envFunc(nil), strings.NewReader(stdin), &out, &stderr)
		return out.String(), err
	}
	if _, err := admin("correct horse battery\n", "users", "add", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin("short\n", "users", "add", "bob"); err == nil || !strings.Contains(err.Error(), "weak_password") {
		t.Fatalf("users add with a short password = %v", err)
	}
	out, err := admin("", "users", "list")
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "active") {
		t.Fatalf("users list = %q, %v", out, err)
	}
	// A session for alice, through the server on the same store.
	url, _, stop := startServe(t, []string{"--store", store}, nil)
	code, pair := post(t, url+"/login", "", `{"username":"alice","password":"correct horse battery"}`)
	if code != 200 {
		t.Fatalf("login = %d %v", code, pair)
	}
	stop()
	sid := pair["session_id"].(string)
	out, err = admin("", "sessions", "list", "alice")
	if err != nil || !strings.Contains(out, sid) {
		t.Fatalf("sessions list = %q, %v", out, err)
	}
	if _, err := admin("", "sessions", "revoke", sid); err != nil {
		t.Fatal(err)
	}
	if out, _ := admin("", "sessions", "list", "alice"); strings.Contains(out, sid) {
		t.Fatalf("revoked session still listed: %q", out)
	}
	before, err := admin("", "keys", "list")
	if err != nil || strings.Count(before, "EdDSA") != 2 || !strings.Contains(before, "current") || !strings.Contains(before, "next") {
		t.Fatalf("keys list = %q, %v", before, err)
	}
	if _, err := admin("", "keys", "rotate"); err == nil || !strings.Contains(err.Error(), "published") {
		t.Fatalf("rotating a next key published just now = %v, want a refusal", err)
	}
	after, err := admin("", "keys", "rotate", "--force")
	if err != nil || strings.Count(after, "EdDSA") != 3 || !strings.Contains(after, "retired") {
		t.Fatalf("keys rotate = %q, %v", after, err)
	}
	if out, err := admin("", "users", "disable", "alice"); err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("users disable = %q, %v", out, err)
	}
	url, _, _ = startServe(t, []string{"--store", store}, nil)
	if code, out := post(t, url+"/login", "", `{"username":"alice","password":"correct horse battery"}`); code != 401 {
		t.Fatalf("disabled user login = %d %v", code, out)
	}
	var ver bytes.Buffer
	if err := run(context.Background(), []string{"version"}, envFunc(nil), nil, &ver, &bytes.Buffer{}); err != nil || !strings.HasPrefix(ver.String(), "latchkey ") {
		t.Fatalf("version = %q, %v", ver.String(), err)
	}
}

// A signal lets in-flight requests finish: every login the server started
// (each an argon2id hash long) reaches its client with 200 — none is cut off
// after its session was created — and the store is closed cleanly afterwards
// (a restart on the same file works). Connections still in the kernel's accept
// queue when the listener closes are dropped unread, as with any server; their
// clients see a refused or closed connection and no session exists for them.
func TestGracefulShutdown(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "grace.db")
	url, logs, stop := startServe(t, []string{"--demo", "--store", db}, nil)
	const n = 2 // one argon2id round under -race stays well inside the 10 s grace
	type result struct {
		code int
		err  error
	}
	results := make(chan result, n)
	started := make(chan struct{}, n)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		go func() {
			req, _ := http.NewRequest("POST", url+"/login", strings.NewReader(`{"username":"test","password":"test"}`))
			req.Header.Set("Content-Type", "application/json")
			started <- struct{}{}
			resp, err := client.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			resp.Body.Close()
			results <- result{code: resp.StatusCode}
		}()
	}
	for range n {
		<-started
	}
	time.Sleep(5 * time.Millisecond) // let the requests reach the server
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	ok := 0
	for range n {
		r := <-results
		switch {
		case r.err == nil && r.code == 200:
			ok++
		case r.err != nil:
			// never served: refused, or dropped from the accept queue
		default:
			t.Errorf("login answered %d during shutdown", r.code)
		}
	}
	served := strings.Count(logs.String(), "msg=login ")
	if served != ok {
		t.Fatalf("the server created %d sessions but only %d responses arrived: requests were cut off", served, ok)
	}
	if ok == 0 {
		t.Fatal("no request was in flight when the server stopped; the test proved nothing")
	}
	url, _, _ = startServe(t, []string{"--store", db}, nil)
	if code, out := post(t, url+"/login", "", `{"username":"test","password":"test"}`); code != 200 {
		t.Fatalf("login after restart = %d %v", code, out)
	}
}

// Administrative commands take the stored keys as they are: run with default
// flags against a deployment signing with ES256, they switch nothing to EdDSA
// and delete nothing.
func TestAdminLeavesKeysAlone(t *testing.T) {
	store := "sqlite:" + filepath.Join(t.TempDir(), "es.db")
	_, _, stop := startServe(t, []string{"--store", store, "--signing-alg", "ES256"}, nil)
	stop()
	var before, after bytes.Buffer
	if err := run(context.Background(), []string{"keys", "list", "--store", store}, envFunc(nil), strings.NewReader(""), &before, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"users", "list"}, {"keys", "list"}} {
		if err := run(context.Background(), append(cmd, "--store", store), envFunc(nil), strings.NewReader(""), &after, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(after.String(), "EdDSA") || !strings.Contains(before.String(), "ES256  current") {
		t.Fatalf("keys before:\n%s\nafter admin commands:\n%s", before.String(), after.String())
	}
	// keys rotate keeps the deployment's algorithm.
	var rotated bytes.Buffer
	if err := run(context.Background(), []string{"keys", "rotate", "--force", "--store", store}, envFunc(nil), strings.NewReader(""), &rotated, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rotated.String(), "EdDSA") {
		t.Fatalf("keys rotate switched the algorithm:\n%s", rotated.String())
	}
}

// gcPercent reads GOGC (SetGCPercent is the only way to read it).
func gcPercent() int {
	v := debug.SetGCPercent(100)
	debug.SetGCPercent(v)
	return v
}

// serve applies its collector policy while it runs, unless the operator set
// GOGC or GOMEMLIMIT or --memory-policy off, says which in one log line, and
// leaves the process as it found it.
func TestServeCollectorPolicy(t *testing.T) {
	before, limit := gcPercent(), debug.SetMemoryLimit(-1)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want int
		log  string
	}{
		{nil, nil, serveMemory.GCPercent, `msg="memory policy: GOGC=200, soft limit max(44 MiB, 2x live heap`},
		{[]string{"--memory-policy", "auto"}, nil, serveMemory.GCPercent, `msg="memory policy: GOGC=200`},
		{nil, map[string]string{"GOGC": "100"}, before, `msg="memory policy off: GOGC is set"`},
		{nil, map[string]string{"GOMEMLIMIT": "1GiB"}, before, `msg="memory policy off: GOMEMLIMIT is set"`},
		{[]string{"--memory-policy", "auto"}, map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"}, before, `msg="memory policy off: GOGC and GOMEMLIMIT are set"`},
		{[]string{"--memory-policy", "off"}, nil, before, `msg="memory policy off: --memory-policy=off`},
		{nil, map[string]string{"LATCHKEY_MEMORY_POLICY": "off"}, before, `memory_policy=off`},
	} {
		db := "sqlite:" + filepath.Join(t.TempDir(), "gc.db")
		_, logs, stop := startServe(t, append([]string{"--store", db}, tc.args...), tc.env)
		if got := gcPercent(); got != tc.want {
			t.Errorf("%v env %v: GOGC %d while serving, want %d", tc.args, tc.env, got, tc.want)
		}
		if got := debug.SetMemoryLimit(-1); tc.want == before && got != limit {
			t.Errorf("%v env %v: memory limit %d while serving, want %d", tc.args, tc.env, got, limit)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), tc.log) || strings.Count(logs.String(), "memory policy") != 1 {
			t.Errorf("%v env %v: log does not say %q once:\n%s", tc.args, tc.env, tc.log, logs.String())
		}
		if got, l := gcPercent(), debug.SetMemoryLimit(-1); got != before || l != limit {
			t.Fatalf("%v env %v: after serve GOGC %d limit %d, want %d and %d", tc.args, tc.env, got, l, before, limit)
		}
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"serve", "--memory-policy", "sometimes"}, nil},
		{[]string{"serve"}, map[string]string{"LATCHKEY_MEMORY_POLICY": "never"}},
	} {
		err := run(context.Background(), tc.args, envFunc(tc.env), strings.NewReader(""), io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "memory-policy") {
			t.Errorf("%q env %v = %v, want a usage error naming the memory policy", tc.args, tc.env, err)
		}
	}
	if got, l := gcPercent(), debug.SetMemoryLimit(-1); got != before || l != limit {
		t.Fatalf("a refused serve changed GOGC to %d and the limit to %d", got, l)
	}
}

// --request-log takes all, failed or off, from the flag or the environment.
func TestRequestLogFlagRefusesOtherValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"serve", "--request-log", "some"}, nil},
		{[]string{"serve", "--request-log", ""}, nil},
		{[]string{"serve"}, map[string]string{"LATCHKEY_REQUEST_LOG": "ALL"}},
	} {
		err := run(context.Background(), tc.args, envFunc(tc.env), strings.NewReader(""), io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "request-log") {
			t.Errorf("%q env %v = %v, want a usage error naming --request-log", tc.args, tc.env, err)
		}
	}
}

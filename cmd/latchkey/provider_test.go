package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

// A --provider value that cannot work stops serve at start with a message
// that says what to change, from the flag and from LATCHKEY_PROVIDERS.
func TestProviderConfigRefused(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "p.db")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		says string
	}{
		{[]string{"--provider", "google"}, nil, "NAME=ISSUER_URL"},
		{[]string{"--provider", "g=http://accounts.example,client_id=x"}, nil, "https"},
		{[]string{"--provider", "g=https://a.example"}, nil, "client_id"},
		{[]string{"--provider", "g=https://a.example,client_id=x,secret=y"}, nil, "unknown key"},
		{nil, map[string]string{"LATCHKEY_PROVIDERS": "g=https://a.example,client_id=x;h=ftp://b.example,client_id=y"}, "LATCHKEY_PROVIDERS"},
		{[]string{"--provider", "g=https://a.example,client_id=x", "--provider", "g=https://b.example,client_id=y"}, nil, "two providers"},
		{[]string{"--provider-signup", "maybe"}, nil, "--provider-signup"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0", "--store", db}, tc.args...), envFunc(tc.env), strings.NewReader(""), &bytes.Buffer{}, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("serve %v (env %v) = %v, want an error about %q", tc.args, tc.env, err, tc.says)
		}
	}
}

// A provider that cannot be reached does not stop the server: it starts,
// answers its health check, refuses a garbage token at once and a real-looking
// one with 503 unavailable.
func TestServeWithProviderDown(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "p.db")
	base, logs, stop := startServe(t, []string{"--store", db, "--provider", "down=http://127.0.0.1:1,client_id=app"}, nil)
	defer stop()
	if code, body := send(t, mustReq(t, "GET", base+"/healthz", "")); code != 200 {
		t.Fatalf("healthz = %d %v", code, body)
	}
	if code, body := send(t, mustReq(t, "POST", base+"/login", `{"provider":"down","id_token":"garbage"}`)); code != 401 || body["error"] != "invalid_token" {
		t.Fatalf("garbage token = %d %v", code, body)
	}
	tok := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjEifQ.c2ln" // {"alg":"RS256","kid":"k"}.{"iss":"http://127.0.0.1:1"}
	if code, body := send(t, mustReq(t, "POST", base+"/login", `{"provider":"down","id_token":"`+tok+`"}`)); code != 503 || body["error"] != "unavailable" {
		t.Fatalf("provider down = %d %v", code, body)
	}
	if !strings.Contains(logs.String(), "provider configured") || strings.Contains(logs.String(), "client_secret=") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

func mustReq(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// users show lists an account's identities.
func TestUsersShowIdentities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	us, err := users.New(users.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := us.SignInWith(ctx, users.Outside{Issuer: "https://accounts.google.com", Provider: "google", Subject: "1234567890", Email: "ann@example.com"}, true)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out bytes.Buffer
	if err := run(ctx, []string{"users", "show", "--store", "sqlite:" + path, u.Username}, envFunc(nil), strings.NewReader(""), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{u.ID, "https://accounts.google.com", "1234567890", "ann@example.com", "PASSWORD  false"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("users show printed %q, missing %q", out.String(), want)
		}
	}
	err = run(ctx, []string{"users", "show", "--store", "sqlite:" + path, "nobody"}, envFunc(nil), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("users show of an unknown user = %v", err)
	}
}

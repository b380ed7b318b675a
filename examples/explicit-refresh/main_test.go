package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlow drives the example over real HTTP: login, protected, refresh,
// protected with the new token, and the old refresh token refused afterwards.
func TestFlow(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	app, closeApp, err := newApp(context.Background(), filepath.Join(t.TempDir(), "app.db"), secret)
	if err != nil {
		t.Fatal(err)
	}
	defer closeApp()
	srv := httptest.NewServer(app)
	defer srv.Close()

	call := func(method, path, bearer, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	if code, out := call("POST", "/login", "", `{"username":"test","password":"wrong"}`); code != 401 || out["error"] != "invalid_credentials" {
		t.Fatalf("login with a wrong password = %d %v, want 401 invalid_credentials", code, out)
	}
	code, pair := call("POST", "/login", "", `{"username":"test", "password":"test"}`)
	if code != 200 {
		t.Fatalf("login = %d %v", code, pair)
	}
	access, refresh := pair["access_token"].(string), pair["refresh_token"].(string)
	if code, out := call("GET", "/protected", access, ""); code != 200 || out["message"] != "You have access" {
		t.Fatalf("protected = %d %v", code, out)
	}
	if code, out := call("GET", "/protected", "", ""); code != 401 || out["error"] != "missing_token" {
		t.Fatalf("protected without a token = %d %v", code, out)
	}
	code, next := call("POST", "/refresh", refresh, "")
	if code != 200 || next["refresh_token"] == refresh || next["access_token"] == "" {
		t.Fatalf("refresh = %d %v", code, next)
	}
	if code, out := call("GET", "/protected", next["access_token"].(string), ""); code != 200 {
		t.Fatalf("protected with the refreshed token = %d %v", code, out)
	}
	if code, out := call("POST", "/refresh", access, ""); code != 401 || out["error"] != "wrong_token_type" {
		t.Fatalf("refresh with an access token = %d %v, want wrong_token_type", code, out)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// oauthPost sends a form to an OAuth endpoint, with HTTP Basic when basic is "id:secret".
func oauthPost(t *testing.T, endpoint, basic string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id, secret, ok := strings.Cut(basic, ":"); ok {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return send(t, req)
}

// The clients commands register, list and remove OAuth clients in the store a
// server then uses; a removed client's refresh tokens stop working.
func TestClientsCommands(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "clients.db")
	admin := func(args ...string) (string, string, error) {
		var out, stderr bytes.Buffer
		full := append([]string{args[0], args[1], "--store", db}, args[2:]...)
		err := run(context.Background(), full, envFunc(nil), strings.NewReader(""), &out, &stderr)
		return out.String(), stderr.String(), err
	}
	out, note, err := admin("clients", "add", "--confidential", "--client-name", "billing backend", "billing")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`client_secret: (lk_cs_[A-Za-z0-9_-]{43})\n`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "billing") || !strings.Contains(note, "only now") {
		t.Fatalf("clients add --confidential printed %q / %q", out, note)
	}
	secret := m[1]
	if out, _, err := admin("clients", "add", "spa"); err != nil || !strings.Contains(out, "spa") || strings.Contains(out, "secret") {
		t.Fatalf("clients add spa = %q, %v", out, err)
	}
	if _, _, err := admin("clients", "add", "spa"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("adding a taken id = %v", err)
	}
	if _, _, err := admin("clients", "add", "no spaces"); err == nil || !strings.Contains(err.Error(), "client id") {
		t.Fatalf("adding a malformed id = %v", err)
	}
	if _, _, err := admin("clients", "add", "--origin", "https://app.example.com/", "web"); err == nil || !strings.Contains(err.Error(), "--origin") {
		t.Fatalf("adding a client with a malformed origin = %v", err)
	}
	if out, _, err := admin("clients", "add", "--origin", "https://app.example.com, http://localhost:5173", "--dpop-required", "web"); err != nil || !strings.Contains(out, "web") {
		t.Fatalf("clients add web --origin = %q, %v", out, err)
	}
	out, _, err = admin("clients", "list")
	if err != nil || !regexp.MustCompile(`billing\s+confidential\s+optional\s+\S+\s+-\s+billing backend\n`).MatchString(out) ||
		!regexp.MustCompile(`spa\s+public`).MatchString(out) || strings.Contains(out, secret) ||
		!regexp.MustCompile(`web\s+public\s+required\s+\S+\s+https://app.example.com,http://localhost:5173\s`).MatchString(out) {
		t.Fatalf("clients list = %q, %v", out, err)
	}

	base, _, stop := startServe(t, []string{"--demo", "--store", db}, nil)
	password := url.Values{"grant_type": {"password"}, "username": {"test"}, "password": {"test"}}
	code, tok := oauthPost(t, base+"/oauth/token", "billing:"+secret, password)
	if code != 200 || tok["refresh_token"] == nil {
		t.Fatalf("password grant as billing = %d %v", code, tok)
	}
	if code, body := oauthPost(t, base+"/oauth/token", "billing:wrong", password); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("wrong secret = %d %v", code, body)
	}
	// --demo registered the public client demo.
	demo := url.Values{"grant_type": {"password"}, "username": {"test"}, "password": {"test"}, "client_id": {"demo"}}
	if code, body := oauthPost(t, base+"/oauth/token", "", demo); code != 200 {
		t.Fatalf("password grant as demo = %d %v", code, body)
	}
	if out, _, err := admin("clients", "remove", "billing"); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("clients remove = %q, %v", out, err)
	}
	if _, _, err := admin("clients", "remove", "billing"); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("removing a removed client = %v", err)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}
	if code, body := oauthPost(t, base+"/oauth/token", "billing:"+secret, refresh); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("refresh by a removed client = %d %v", code, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// curl runs the real curl binary, as the README and docs/oauth.md do.
func curl(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "--fail-with-body"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %q: %v: %s", args, err, out)
	}
	var body map[string]any
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &body); err != nil {
			t.Fatalf("curl %q: %q is not JSON", args, out)
		}
	}
	return body
}

// The curl commands of the README and docs/oauth.md, against `serve --demo`.
func TestCurlAsDocumented(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	base, _, _ := startServe(t, []string{"--demo", "--cookie-secure=false", "--store", "sqlite:" + filepath.Join(t.TempDir(), "curl.db")}, nil)
	pair := curl(t, "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"username":"test", "password":"test"}`, base+"/login")
	if got := curl(t, "-H", "Authorization: Bearer "+pair["access_token"].(string), base+"/protected"); got["message"] != "You have access" {
		t.Fatalf("protected = %v", got)
	}
	next := curl(t, "-X", "POST", "-H", "Authorization: Bearer "+pair["refresh_token"].(string), base+"/refresh")
	curl(t, "-H", "Authorization: Bearer "+next["access_token"].(string), base+"/protected")

	tok := curl(t, "-u", "demo:", "-d", "grant_type=password", "-d", "username=test", "-d", "password=test", base+"/oauth/token")
	if tok["token_type"] != "Bearer" || tok["scope"] != "account" {
		t.Fatalf("token = %v", tok)
	}
	rt := tok["refresh_token"].(string)
	again := curl(t, "-u", "demo:", "-d", "grant_type=refresh_token", "-d", "refresh_token="+rt, base+"/oauth/token")
	curl(t, "-u", "demo:", "-d", "token="+again["refresh_token"].(string), "-d", "token_type_hint=refresh_token", base+"/oauth/revoke")
	md := curl(t, base+"/.well-known/oauth-authorization-server")
	if md["token_endpoint"] != base+"/oauth/token" {
		t.Fatalf("metadata = %v", md)
	}
	// The revoked session's refresh token is refused, as RFC 6749 says.
	out, _ := exec.Command("curl", "-sS", "-u", "demo:", "-d", "grant_type=refresh_token", "-d", "refresh_token="+again["refresh_token"].(string), base+"/oauth/token").Output()
	if !strings.Contains(string(out), `"error":"invalid_grant"`) {
		t.Fatalf("refresh after revocation = %s", out)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve writes audit events as JSON lines to --audit-log and keeps them in
// the store; `audit list` reads them back, by user, as a table or JSON; an
// operator's changes are recorded with the admin as actor.
func TestAuditTrail(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "audit.db")
	logPath := filepath.Join(dir, "audit.jsonl")
	base, _, stop := startServe(t, []string{"--store", db, "--demo", "--audit-log", logPath}, nil)
	if code, _ := post(t, base+"/login", "", `{"username":"test","password":"wrong password"}`); code != 401 {
		t.Fatalf("wrong password = %d", code)
	}
	if code, _ := post(t, base+"/login", "", `{"username":"test","password":"test"}`); code != 200 {
		t.Fatalf("login = %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("audit log line %q: %v", l, err)
		}
		kinds = append(kinds, ev["kind"].(string))
		if strings.Contains(l, "wrong password") {
			t.Fatal("a password reached the audit log")
		}
	}
	if strings.Join(kinds, " ") != "login_failed login" {
		t.Fatalf("audit log kinds = %v", kinds)
	}
	if info, err := os.Stat(logPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("audit log mode = %v, %v", info.Mode(), err)
	}

	admin := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		full := append([]string{args[0], args[1], "--store", db}, args[2:]...)
		if err := run(context.Background(), full, envFunc(nil), strings.NewReader(""), &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String()
	}
	admin("users", "disable", "test")
	table := admin("audit", "list", "--user", "test")
	for _, want := range []string{"user_disabled", "admin", "session_revoked", "login_failed", `"reason":"admin"`} {
		if !strings.Contains(table, want) {
			t.Fatalf("audit list --user test lacks %q:\n%s", want, table)
		}
	}
	lines := admin("audit", "list", "--json", "--since", "1h")
	var first map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(lines, "\n", 2)[0]), &first); err != nil || first["kind"] != "session_revoked" && first["kind"] != "user_disabled" {
		t.Fatalf("audit list --json, newest first: %v %v\n%s", first, err, lines)
	}
	if err := run(context.Background(), []string{"audit", "list", "--store", db, "--user", "nobody"}, envFunc(nil), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("audit list of an unknown user succeeded")
	}
}

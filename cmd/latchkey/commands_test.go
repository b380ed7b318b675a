package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runProcess runs `latchkey ARGS` as a separate OS process (the test binary,
// see TestMain) and returns its stdout, stderr and exit status.
func runProcess(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	full, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(full))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// flagLine matches the line of flag name in a command's help.
func flagLine(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(name) + `( |$)`)
}

// `latchkey CMD -h` prints that command's usage and exactly its flags to
// stdout and succeeds; every flag belongs to some command.
func TestCommandHelpListsOnlyItsFlags(t *testing.T) {
	used := map[string]bool{}
	for _, c := range commands {
		for _, name := range c.flags {
			if _, ok := flagDefs[name]; !ok {
				t.Fatalf("%s has the undefined flag %q", c.name, name)
			}
			used[name] = true
		}
		for _, h := range []string{"-h", "--help"} {
			var out, stderr bytes.Buffer
			args := append(strings.Fields(c.name), h)
			if err := run(context.Background(), args, envFunc(nil), strings.NewReader(""), &out, &stderr); err != nil {
				t.Fatalf("%q: %v", args, err)
			}
			if !strings.HasPrefix(out.String(), "usage: latchkey "+c.name) || stderr.Len() != 0 {
				t.Fatalf("%q printed %q to stdout and %q to stderr", args, out.String(), stderr.String())
			}
			for name := range flagDefs {
				if got, want := flagLine(name).MatchString(out.String()), slices.Contains(c.flags, name); got != want {
					t.Errorf("%q lists --%s: %v, want %v:\n%s", args, name, got, want, out.String())
				}
			}
		}
	}
	for name := range flagDefs {
		if !used[name] {
			t.Errorf("no command has --%s", name)
		}
	}
}

// The flags each command reads, as the README documents them.
func TestCommandFlags(t *testing.T) {
	want := map[string][]string{
		"users add":       {"store", "store-pool"},
		"users list":      {"store", "store-pool"},
		"users show":      {"store", "store-pool"},
		"audit list":      {"user", "since", "json", "store", "store-pool"},
		"users disable":   {"store", "store-pool", "access-ttl", "leeway"},
		"users enable":    {"store", "store-pool"},
		"sessions list":   {"store", "store-pool"},
		"sessions revoke": {"store", "store-pool", "access-ttl", "leeway"},
		"clients add":     {"confidential", "client-name", "origin", "dpop-required", "store", "store-pool"},
		"clients list":    {"store", "store-pool"},
		"clients remove":  {"store", "store-pool"},
		"keys list":       {"store", "store-pool"},
		"keys rotate":     {"force", "store", "store-pool"},
		"version":         nil,
	}
	for _, c := range commands {
		if c.name == "serve" {
			continue
		}
		w, ok := want[c.name]
		if !ok {
			t.Errorf("command %q is not in this test", c.name)
			continue
		}
		got, w := slices.Sorted(slices.Values(c.flags)), slices.Sorted(slices.Values(w))
		if !slices.Equal(got, w) {
			t.Errorf("%s has flags %v, want %v", c.name, got, w)
		}
	}
}

// `latchkey help`, `latchkey --help` and `latchkey -h` print every command to
// stdout and succeed; `latchkey users -h` only the users commands.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		var out, stderr bytes.Buffer
		if err := run(context.Background(), args, envFunc(nil), nil, &out, &stderr); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		for _, c := range commands {
			if !strings.Contains(out.String(), "  "+c.name) {
				t.Errorf("%q does not list %s:\n%s", args, c.name, out.String())
			}
		}
		if strings.Contains(out.String(), "bench") || stderr.Len() != 0 {
			t.Errorf("%q printed %q to stdout and %q to stderr", args, out.String(), stderr.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"users", "-h"}, envFunc(nil), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "users disable NAME") || strings.Contains(out.String(), "keys") {
		t.Fatalf("users -h:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"help", "keys", "rotate"}, envFunc(nil), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "usage: latchkey keys rotate") || !flagLine("force").MatchString(out.String()) {
		t.Fatalf("help keys rotate:\n%s", out.String())
	}
}

// As a process: help exits 0 with the usage on stdout; a flag of another
// command exits 2 naming the flag.
func TestExitStatus(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"users", "list", "--help"}, {"serve", "-h"}} {
		out, stderr, code := runProcess(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "usage: latchkey") || stderr != "" {
			t.Errorf("latchkey %q: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
	}
	out, stderr, code := runProcess(t, nil, "users", "list", "--confidential")
	if code != 2 || !strings.Contains(stderr, "latchkey: users list does not take --confidential") || out != "" {
		t.Fatalf("users list --confidential: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, stderr, code := runProcess(t, nil, "bench"); code != 2 || !strings.Contains(stderr, `unknown command "bench"`) {
		t.Fatalf("bench: exit %d, stderr %q", code, stderr)
	}
}

// One environment file serves serve and every administrative command: each
// command reads the LATCHKEY_ variables of its own flags and ignores the
// others, even values it could not parse.
func TestSharedEnvironmentFile(t *testing.T) {
	env := map[string]string{
		"LATCHKEY_ADDR":             "127.0.0.1:0",
		"LATCHKEY_STORE":            "sqlite:" + filepath.Join(t.TempDir(), "shared.db"),
		"LATCHKEY_ISSUER":           "http://auth.test",
		"LATCHKEY_ACCESS_TTL":       "2m",
		"LATCHKEY_LEEWAY":           "5s",
		"LATCHKEY_REUSE_GRACE":      "5s",
		"LATCHKEY_TOKEN_LOCATIONS":  "headers,json",
		"LATCHKEY_TRUSTED_PROXIES":  "127.0.0.1",
		"LATCHKEY_COOKIE_SECURE":    "false",
		"LATCHKEY_REVOCATION_DELAY": "500ms",
		"LATCHKEY_DEMO":             "true",
		"LATCHKEY_MEMORY_POLICY":    "off",
		"LATCHKEY_FORCE":            "true", // no setting: keys rotate must not read it
		"LATCHKEY_CONFIDENTIAL":     "true", // nor clients add this one
	}
	url, _, stop := startServe(t, nil, env)
	code, pair := post(t, url+"/login", "", `{"username":"test","password":"test"}`)
	if code != 200 || pair["expires_in"].(float64) != 120 {
		t.Fatalf("login = %d %v, want expires_in 120 from LATCHKEY_ACCESS_TTL", code, pair)
	}
	stop()
	admin := func(stdin string, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), args, envFunc(env), strings.NewReader(stdin), &out, io.Discard); err != nil {
			t.Fatalf("%q with the shared environment: %v", args, err)
		}
		return out.String()
	}
	admin("a long password\n", "users", "add", "bob")
	if out := admin("", "users", "list"); !strings.Contains(out, "test") || !strings.Contains(out, "bob") {
		t.Fatalf("users list does not read LATCHKEY_STORE:\n%s", out)
	}
	sid := pair["session_id"].(string)
	// The session list names the device: the login above came from Go's net/http.
	if out := admin("", "sessions", "list", "test"); !strings.Contains(out, sid) || !strings.Contains(out, "DEVICE") || !strings.Contains(out, "Go HTTP client") {
		t.Fatalf("sessions list:\n%s", out)
	}
	admin("", "sessions", "revoke", sid)
	admin("", "users", "disable", "bob")
	admin("", "users", "enable", "bob")
	if out := admin("", "clients", "add", "spa"); !strings.Contains(out, "public") {
		t.Fatalf("clients add read LATCHKEY_CONFIDENTIAL:\n%s", out)
	}
	admin("", "clients", "list")
	admin("", "clients", "remove", "spa")
	admin("", "keys", "list")
	if err := run(context.Background(), []string{"keys", "rotate"}, envFunc(env), nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "published") {
		t.Fatalf("keys rotate read LATCHKEY_FORCE: %v", err)
	}
	admin("", "keys", "rotate", "--force")

	// A value only serve reads may be anything to the others; the variables
	// of a command's own flags are read and checked.
	env["LATCHKEY_REFRESH_TTL"] = "soon"
	env["LATCHKEY_MEMORY_POLICY"] = "sometimes"
	env["LATCHKEY_ACCESS_TTL"] = "soon"
	admin("", "users", "list")
	admin("", "keys", "list")
	for _, args := range [][]string{{"users", "disable", "bob"}, {"sessions", "revoke", sid}, {"serve"}} {
		err := run(context.Background(), args, envFunc(env), nil, io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "LATCHKEY_ACCESS_TTL") {
			t.Errorf("%q with LATCHKEY_ACCESS_TTL=soon: %v, want a usage error naming it", args, err)
		}
	}
}

// Flag and variable names are public interface: the README's configuration
// table documents every flag of serve under its own variable.
func TestReadmeDocumentsServeFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range serveFlags {
		row := "| `--" + name + "` | `" + envName(name) + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no configuration row %q", row)
		}
	}
}

// --cors-origins takes exact origins only; a wildcard or a path is a usage
// error naming the flag, from the flag or the variable.
func TestCORSOriginsFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"serve", "--cors-origins", "https://app.example.com,*"}, nil},
		{[]string{"serve"}, map[string]string{"LATCHKEY_CORS_ORIGINS": "https://app.example.com/"}},
	} {
		err := run(context.Background(), c.args, envFunc(c.env), nil, io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "--cors-origins") {
			t.Errorf("%q %v: %v, want a usage error naming --cors-origins", c.args, c.env, err)
		}
	}
}

package dpopnode_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// oauth4webapi in Node runs dpop.test.mjs against `latchkey serve --demo`.
func TestOAuth4WebAPIDPoPInNode(t *testing.T) {
	node := os.Getenv("LATCHKEY_TEST_NODE")
	if node == "" {
		t.Skip("LATCHKEY_TEST_NODE is not set (the path to node); skipping the oauth4webapi DPoP interop test")
	}
	if _, err := exec.LookPath(node); err != nil {
		t.Fatalf("LATCHKEY_TEST_NODE=%q: %v", node, err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "oauth4webapi", "package.json")); err != nil {
		t.Fatalf("oauth4webapi is not installed here (%v): run `npm ci --prefix interop/dpopnode`", err)
	}
	base := startServe(t)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "dpop.test.mjs")
	cmd.Env = append(os.Environ(), "LATCHKEY_URL="+base)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test dpop.test.mjs: %v\n%s", err, out)
	}
	// A file whose tests were all filtered out or never registered passes too:
	// make sure each ran.
	if n := len(regexp.MustCompile(`(?m)^\s*✔ `).FindAll(out, -1)); n < 7 {
		t.Fatalf("%d passing tests in the output, want 7:\n%s", n, out)
	}
	t.Logf("%s", out)
}

// startServe builds latchkey and runs `serve --demo` on a loopback port with
// a SQLite file of its own; it returns the base URL.
func startServe(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "latchkey")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/latchkey/latchkey/cmd/latchkey").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--store", "sqlite:"+filepath.Join(dir, "lk.db"), "--demo")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	var mu sync.Mutex
	var logs bytes.Buffer
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case base := <-addr:
		return base
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("serve did not start:\n%s", logs.String())
		return ""
	}
}

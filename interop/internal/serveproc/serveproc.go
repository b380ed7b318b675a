// Package serveproc runs the product as an operator does: the latchkey
// binary, built from this checkout, started as `latchkey serve` in a process
// of its own on a loopback port, for tests that drive it over HTTP from
// outside (a Node client, another provider).
package serveproc

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

var listening = regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)

// Start builds latchkey and runs `serve --demo` on a loopback port with a
// SQLite file of its own, with env added to this process's environment; it
// returns the base URL. The process gets SIGTERM when the test ends; if it
// does not say it is listening within a minute, the test fails with its log.
func Start(t testing.TB, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "latchkey")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/latchkey/latchkey/cmd/latchkey").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--store", "sqlite:"+filepath.Join(dir, "lk.db"), "--demo")
	cmd.Env = append(os.Environ(), env...)
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
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
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

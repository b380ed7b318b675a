package dpopnode_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/latchkey/latchkey/interop/internal/serveproc"
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
	base := serveproc.Start(t)

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

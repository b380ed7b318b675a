package model

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// properties are the LTL properties of rotation.pml; each is searched on its
// own, exhaustively. docs/protocol.md states them in words.
var properties = []struct {
	name     string
	liveness bool // searched for acceptance cycles (pan -a)
}{
	{name: "no_fork"},
	{name: "no_stale"},
	{name: "revoked_final"},
	{name: "recover", liveness: true},
	{name: "forged_inert"},
	{name: "reuse_revokes"},
}

// mutants are bugs planted in the model by a macro. Each must be caught by
// the properties named, searched with the in-line assertions off (so the
// temporal property itself finds it), and, if asserted, by the in-line
// assertions alone.
var mutants = []struct {
	macro      string
	properties []string
	asserted   bool
}{
	{macro: "MUTANT_NO_GEN_CHECK", properties: []string{"no_fork", "no_stale"}, asserted: true},
	{macro: "MUTANT_GRACE_AFTER_REVOKE", properties: []string{"revoked_final"}},
	{macro: "MUTANT_REUSE_BEFORE_MAC", properties: []string{"forged_inert"}, asserted: true},
	{macro: "MUTANT_NO_LIVE_CHECK", properties: []string{"revoked_final"}},
	{macro: "MUTANT_NO_GRACE", properties: []string{"recover"}, asserted: true},
	{macro: "MUTANT_REUSE_NO_REVOKE", properties: []string{"reuse_revokes"}},
}

// searchTimeout bounds one run of pan; the real model's longest search takes
// well under a minute on an idle core.
const searchTimeout = 10 * time.Minute

// TestRotationModel searches the model exhaustively: the in-line assertions
// and end states, then each LTL property. Any violation fails the test with
// the counterexample's trail, and so does a search that did not complete.
func TestRotationModel(t *testing.T) {
	spin := spinPath(t)
	safety := build(t, spin, "-O2", true)
	t.Run("assertions", func(t *testing.T) {
		out, errs := search(t, safety)
		mustPass(t, safety, out, errs)
	})
	claims := build(t, spin, "-O2", false)
	for _, p := range properties {
		t.Run(p.name, func(t *testing.T) {
			out, errs := search(t, claims, claimArgs(p.name)...)
			mustPass(t, claims, out, errs)
		})
	}
}

// TestRotationMutants checks that the model catches the bugs it should: each
// mutant yields a counterexample.
func TestRotationMutants(t *testing.T) {
	spin := spinPath(t)
	for _, m := range mutants {
		t.Run(m.macro, func(t *testing.T) {
			claims := build(t, spin, "-O0", false, "-D"+m.macro, "-DLTL_ONLY")
			for _, p := range m.properties {
				out, errs := search(t, claims, claimArgs(p)...)
				if errs == 0 {
					t.Errorf("%s: spin found no violation of %s; want a counterexample\n%s", m.macro, p, out)
					continue
				}
				t.Logf("%s violates %s:\n%s", m.macro, p, tail(trail(t, claims), 30))
			}
			if m.asserted {
				safety := build(t, spin, "-O0", true, "-D"+m.macro)
				out, errs := search(t, safety)
				if errs == 0 || !strings.Contains(out, "assertion violated") {
					t.Errorf("%s: the in-line assertions found no violation; want one\n%s", m.macro, out)
				}
			}
		})
	}
}

// spinPath is LATCHKEY_TEST_SPIN, checked: unset skips the test, set but
// unusable fails it.
func spinPath(t *testing.T) string {
	t.Helper()
	spin := os.Getenv("LATCHKEY_TEST_SPIN")
	if spin == "" {
		t.Skip("LATCHKEY_TEST_SPIN is not set: set it to the spin binary (Debian package spin, with gcc) to check the rotation model")
	}
	out, err := exec.Command(spin, "-V").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Spin Version") {
		t.Fatalf("LATCHKEY_TEST_SPIN=%s: spin -V: %v\n%s", spin, err, out)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatalf("spin needs gcc to compile its verifier: %v", err)
	}
	return spin
}

// model is a verifier built from rotation.pml in its own directory.
type model struct {
	dir     string
	spin    string
	defines []string
}

// build generates the verifier with spin -a (defines are preprocessor
// definitions such as -DMUTANT_NO_GRACE) and compiles it with gcc at opt.
// noclaim builds a verifier of the assertions and end states only.
func build(t *testing.T, spin, opt string, noclaim bool, defines ...string) model {
	t.Helper()
	src, err := os.ReadFile("rotation.pml")
	if err != nil {
		t.Fatal(err)
	}
	m := model{dir: t.TempDir(), spin: spin, defines: defines}
	if err := os.WriteFile(filepath.Join(m.dir, "rotation.pml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, m.dir, spin, append(append([]string{}, defines...), "-a", "rotation.pml")...)
	// MEMLIM bounds the verifier's memory (MB): a search that needs more
	// stops incomplete, and an incomplete search fails the test.
	cflags := []string{opt, "-DMEMLIM=2048", "-DCOLLAPSE", "-o", "pan", "pan.c"}
	if noclaim {
		cflags = append([]string{"-DNOCLAIM"}, cflags...)
	}
	run(t, m.dir, "gcc", cflags...)
	return m
}

// run runs a command in dir and fails the test if it fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func claimArgs(property string) []string {
	for _, p := range properties {
		if p.name == property && p.liveness {
			return []string{"-a", "-N", property}
		}
	}
	return []string{"-N", property}
}

var (
	errorsRE = regexp.MustCompile(`errors: (\d+)`)
	statesRE = regexp.MustCompile(`(\d+) states, stored`)
)

// search runs pan with args and returns its output and the number of
// errors it reports.
func search(t *testing.T, m model, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), searchTimeout)
	defer cancel()
	// -m bounds the depth of the search stack, well above the model's
	// deepest path (about 200 steps); reaching it is reported and fails.
	cmd := exec.CommandContext(ctx, "./pan", append([]string{"-m100000", "-n"}, args...)...)
	cmd.Dir = m.dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("pan %s: no answer in %v", strings.Join(args, " "), searchTimeout)
	}
	// pan exits 0 whether or not it found an error; anything else is a crash.
	if err != nil {
		t.Fatalf("pan %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	match := errorsRE.FindSubmatch(out)
	if match == nil {
		t.Fatalf("pan %s: no error count in its output\n%s", strings.Join(args, " "), out)
	}
	errs, _ := strconv.Atoi(string(match[1]))
	states := "?"
	if s := statesRE.FindSubmatch(out); s != nil {
		states = string(s[1])
	}
	t.Logf("pan %s: %d errors, %s states, %v", strings.Join(args, " "), errs, states, time.Since(start).Round(time.Millisecond))
	return string(out), errs
}

// mustPass fails the test unless the search completed without an error;
// on an error it prints the counterexample's trail.
func mustPass(t *testing.T, m model, out string, errs int) {
	t.Helper()
	if errs > 0 {
		t.Fatalf("spin found a violation:\n%s\ntrail:\n%s", out, trail(t, m))
	}
	for _, bad := range []string{"Search not completed", "max search depth too small", "reached -DMEMLIM bound"} {
		if strings.Contains(out, bad) {
			t.Fatalf("the search is not exhaustive (%s):\n%s", bad, out)
		}
	}
}

// trail replays the counterexample pan left in rotation.pml.trail.
func trail(t *testing.T, m model) string {
	t.Helper()
	args := append(append([]string{}, m.defines...), "-t", "-p", "-g", "rotation.pml")
	cmd := exec.Command(m.spin, args...)
	cmd.Dir = m.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "spin -t: " + err.Error() + "\n" + string(out)
	}
	return string(out)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/load"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(ceilingEnv); kind != "" {
		os.Exit(serveCeiling(kind)) // a ceiling's child process
	}
	os.Exit(m.Run())
}

// A bounded run against a bare server reports its result, as text and as JSON.
func TestRun(t *testing.T) {
	b, err := load.StartBaseline(t.TempDir(), "bench-password")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	args := []string{"--target", b.URL, "--mode", "protected", "--concurrency", "2", "--requests", "20", "--duration", "20s", "--prepare=false"}
	var out, progress bytes.Buffer
	if err := run(context.Background(), args, &out, &progress); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	if !strings.Contains(out.String(), "throughput") {
		t.Fatalf("report:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), append(args, "--json"), &out, &progress); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Result   load.Result
		Baseline *load.Result
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("--json printed %q: %v", out.String(), err)
	}
	if got.Result.Mode != "protected" || got.Result.Requests < 20 || got.Result.Errors != 0 || got.Baseline != nil {
		t.Fatalf("--json result: %+v", got)
	}
}

// --baseline measures the bare server too and reports the ratio.
func TestRunBaseline(t *testing.T) {
	b, err := load.StartBaseline(t.TempDir(), "bench-password")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var out bytes.Buffer
	args := []string{"--target", b.URL, "--mode", "refresh", "--concurrency", "2", "--requests", "20", "--duration", "20s", "--prepare=false", "--baseline"}
	if err := run(context.Background(), args, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "latchkey / baseline throughput:") {
		t.Fatalf("report:\n%s", out.String())
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	for _, h := range []string{"-h", "--help"} {
		var out, stderr bytes.Buffer
		if err := run(context.Background(), []string{h}, &out, &stderr); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		if !strings.Contains(out.String(), "usage: latchkey-bench") || !strings.Contains(out.String(), "-concurrency") || stderr.Len() != 0 {
			t.Fatalf("%s printed %q to stdout and %q to stderr", h, out.String(), stderr.String())
		}
	}
	for _, args := range [][]string{{"--no-such-flag"}, {"--concurrency", "many"}, {"extra"}} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

// --ceiling with --rounds measures the ceilings of the mode in alternating
// rounds and reports each ratio and their median; a mode without a ceiling
// is a usage error.
func TestRunCeilingRounds(t *testing.T) {
	c, err := load.StartCeiling(load.CeilingFixed, "bench-password")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out bytes.Buffer
	args := []string{"--target", c.URL, "--mode", "protected", "--concurrency", "2", "--requests", "20", "--duration", "20s",
		"--prepare=false", "--ceiling", "--rounds", "2"}
	if err := run(context.Background(), args, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== round 2 of 2", "[ceiling: fixed body]", "[ceiling: bare Ed25519 verify]",
		"latchkey / fixed throughput:", "latchkey / verify throughput:", "median of 2 rounds, latchkey / verify throughput:"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), append(args, "--json"), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rounds []struct {
			Result     load.Result
			References map[string]load.Result
		}
		Ratios map[string][]float64
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Rounds) != 2 || len(got.Ratios["fixed"]) != 2 || len(got.Ratios["verify"]) != 2 || got.Rounds[1].References["verify"].Requests < 20 {
		t.Fatalf("--json: %s", out.String())
	}
	for _, bad := range [][]string{{"--mode", "login", "--ceiling"}, {"--rounds", "0"}} {
		var u usageError
		if err := run(context.Background(), bad, &bytes.Buffer{}, &bytes.Buffer{}); !errors.As(err, &u) {
			t.Errorf("run(%q) = %v, want a usage error", bad, err)
		}
	}
}

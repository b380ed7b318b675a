// Command latchkey-bench drives a running latchkey server with load and
// reports throughput and latency (docs/benchmarks.md):
//
//	go build -o latchkey-bench ./cmd/latchkey-bench
//	latchkey-bench --target http://127.0.0.1:8080 --mode refresh --concurrency 32
//
// It is a tool for measuring a deployment, not part of the product binary.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/internal/load"
)

// ceilingEnv makes the program serve a ceiling (its value, the kind) on
// loopback instead of measuring: --ceiling starts each ceiling as a child
// process of this same binary, so that a ceiling, like the server it is
// compared with, does not share the load generator's process.
const ceilingEnv = "LATCHKEY_BENCH_CEILING"

func main() {
	if kind := os.Getenv(ceilingEnv); kind != "" {
		os.Exit(serveCeiling(kind))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "latchkey-bench:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// serveCeiling is the child process of startCeiling: it prints the
// ceiling's URL and serves until its standard input closes (the parent
// ended).
func serveCeiling(kind string) int {
	c, err := load.StartCeiling(kind, os.Getenv(ceilingEnv+"_PASSWORD"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "latchkey-bench:", err)
		return 1
	}
	fmt.Println(c.URL)
	io.Copy(io.Discard, os.Stdin)
	c.Close()
	return 0
}

// startCeiling starts a ceiling of kind in a child process and returns its
// URL and what stops it.
func startCeiling(kind, pw string) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$") // the flag only matters to a test binary
	cmd.Env = append(os.Environ(), ceilingEnv+"="+kind, ceilingEnv+"_PASSWORD="+pw)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		stop()
		return "", nil, fmt.Errorf("the %s ceiling did not start: %q %v", kind, line, err)
	}
	return strings.TrimSpace(line), stop, nil
}

// usageError is a mistake in the command line; main exits 2 for it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run is the whole program: main only supplies the process's environment.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("latchkey-bench", flag.ContinueOnError)
	var cfg load.Config
	fs.StringVar(&cfg.Target, "target", "http://127.0.0.1:8080", "base URL of the latchkey server")
	fs.StringVar(&cfg.Mode, "mode", load.ModeProtected, "login, refresh, protected, mixed or race")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "concurrent clients")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "longest the run may last")
	fs.IntVar(&cfg.Requests, "requests", 0, "most requests to send (race: rounds); 0 = until --duration")
	fs.IntVar(&cfg.Users, "users", 1, "distinct accounts")
	fs.StringVar(&cfg.Username, "user", "bench", "account name prefix")
	fs.StringVar(&cfg.Password, "password", "bench-password", "account password")
	prepare := fs.Bool("prepare", true, "register the accounts first (needs open registration)")
	baseline := fs.Bool("baseline", false, "first measure a bare verify/write server on loopback in the same run and report the ratio")
	ceiling := fs.Bool("ceiling", false, "also measure the mode's ceilings in the same run, each a bare server in its own process, and report the ratio to each: refresh against a handler that does all but store (MAC check, EdDSA signature, the pair's JSON); protected against a fixed-body handler and a bare Ed25519-verify handler")
	rounds := fs.Int("rounds", 1, "measure this many rounds, alternating which server goes first, and report each round's ratios and their median")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: latchkey-bench [flags]\n\nDrive a running latchkey server with load.\n\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard) // errors are returned, help goes to stdout
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return nil
		}
		usage(stderr)
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("latchkey-bench takes no arguments, got %q", fs.Args())}
	}
	if *rounds < 1 || *rounds > 50 {
		return usageError{"--rounds takes 1 to 50"}
	}
	var kinds []string
	if *ceiling {
		if kinds = load.CeilingsFor(cfg.Mode); kinds == nil {
			return usageError{fmt.Sprintf("--ceiling: mode %s has no ceiling (refresh and protected have)", cfg.Mode)}
		}
	}
	cfg.Progress = stderr
	// The reference servers run in this process, started once for the run.
	refs := map[string]string{} // name → URL
	var names []string
	if *baseline {
		dir, err := os.MkdirTemp("", "latchkey-baseline")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b, err := load.StartBaseline(dir, cfg.Password)
		if err != nil {
			return err
		}
		defer b.Close()
		refs["baseline"], names = b.URL, append(names, "baseline")
	}
	for _, k := range kinds {
		url, stop, err := startCeiling(k, cfg.Password)
		if err != nil {
			return err
		}
		defer stop()
		refs[k], names = url, append(names, k)
	}
	if *prepare {
		if err := load.Prepare(ctx, cfg); err != nil {
			return err
		}
	}
	var all []round
	for i := range *rounds {
		r := round{Refs: map[string]*load.Result{}}
		measureRefs := func() error {
			for _, n := range names {
				c := cfg
				c.Target = refs[n]
				res, err := load.Run(ctx, c)
				if err != nil {
					return fmt.Errorf("%s: %w", n, err)
				}
				r.Refs[n] = &res
			}
			return nil
		}
		// Odd rounds measure latchkey first, so that neither side always
		// gets the warmer (or the busier) machine.
		if i%2 == 0 {
			if err := measureRefs(); err != nil {
				return err
			}
		}
		res, err := load.Run(ctx, cfg)
		if err != nil {
			return err
		}
		r.Result = res
		if i%2 == 1 {
			if err := measureRefs(); err != nil {
				return err
			}
		}
		all = append(all, r)
	}
	if *asJSON {
		out := map[string]any{"result": all[0].Result, "baseline": all[0].Refs["baseline"]}
		if len(kinds) > 0 || *rounds > 1 {
			out["rounds"] = all
			ratios := map[string][]float64{}
			for _, n := range names {
				ratios[n] = ratiosOf(all, n)
			}
			out["ratios"] = ratios
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	for i, r := range all {
		if len(all) > 1 {
			fmt.Fprintf(stdout, "== round %d of %d\n", i+1, len(all))
		}
		for _, n := range names {
			fmt.Fprintf(stdout, "[%s] ", refTitle(n))
			load.Format(stdout, *r.Refs[n])
			fmt.Fprintln(stdout)
		}
		if len(names) > 0 {
			fmt.Fprint(stdout, "[latchkey] ")
		}
		load.Format(stdout, r.Result)
		for _, n := range names {
			if b := r.Refs[n]; b.PerSecond > 0 {
				fmt.Fprintf(stdout, "\nlatchkey / %s throughput: %.2f (p99 %.2f ms against %.2f ms)", n, r.Result.PerSecond/b.PerSecond, r.Result.P99, b.P99)
			}
		}
		if len(names) > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintln(stdout)
	}
	if len(all) > 1 {
		for _, n := range names {
			rs := ratiosOf(all, n)
			fmt.Fprintf(stdout, "median of %d rounds, latchkey / %s throughput: %.2f (each: %s)\n", len(rs), n, median(rs), fmtRatios(rs))
		}
	}
	return nil
}

// round is one measurement of latchkey and of each reference server.
type round struct {
	Result load.Result             `json:"result"`
	Refs   map[string]*load.Result `json:"references,omitempty"`
}

// refTitle says what a reference server is, for the report.
func refTitle(name string) string {
	switch name {
	case load.CeilingNoStore:
		return "ceiling: refresh without a store"
	case load.CeilingFixed:
		return "ceiling: fixed body"
	case load.CeilingVerify:
		return "ceiling: bare Ed25519 verify"
	}
	return "baseline"
}

// ratiosOf is latchkey's throughput over reference n's, round by round.
func ratiosOf(all []round, n string) []float64 {
	var out []float64
	for _, r := range all {
		if b := r.Refs[n]; b != nil && b.PerSecond > 0 {
			out = append(out, r.Result.PerSecond/b.PerSecond)
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ")
}

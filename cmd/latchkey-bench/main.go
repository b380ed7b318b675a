// Command latchkey-bench drives a running latchkey server with load and
// reports throughput and latency (docs/benchmarks.md):
//
//	go build -o latchkey-bench ./cmd/latchkey-bench
//	latchkey-bench --target http://127.0.0.1:8080 --mode refresh --concurrency 32
//
// It is a tool for measuring a deployment, not part of the product binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/internal/load"
)

func main() {
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
	cfg.Progress = stderr
	var base *load.Result
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
		bc := cfg
		bc.Target = b.URL
		r, err := load.Run(ctx, bc)
		if err != nil {
			return err
		}
		base = &r
	}
	if *prepare {
		if err := load.Prepare(ctx, cfg); err != nil {
			return err
		}
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"result": res, "baseline": base})
	}
	if base != nil {
		load.Format(stdout, *base)
		fmt.Fprintln(stdout)
	}
	load.Format(stdout, res)
	if base != nil && base.PerSecond > 0 {
		fmt.Fprintf(stdout, "\nlatchkey / baseline throughput: %.2f\n", res.PerSecond/base.PerSecond)
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/latchkey/latchkey/internal/load"
)

// bench runs the load tool: `latchkey bench --mode refresh --concurrency 32`.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("latchkey bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
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

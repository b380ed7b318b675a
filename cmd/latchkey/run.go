package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/memlimit"
)

// usageError is a mistake in the command line; main exits 2 for it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const usage = `usage: latchkey <command> [flags] [arguments]

commands:
  serve                       start the token server
  users add NAME              add a user; the password is read from standard input
  users list                  list users
  users disable NAME          disable a user and revoke all of its sessions
  users enable NAME           enable a disabled user
  sessions list NAME          list a user's live sessions
  sessions revoke ID          revoke one session
  clients add ID              register a public OAuth client (--confidential: with a secret, printed once)
  clients list                list OAuth clients
  clients remove ID           remove an OAuth client: its refresh tokens stop working
  keys list                   list signing keys
  keys rotate                 publish a new next key and start signing with the previous next key
  bench                       drive a running server with load (latchkey bench -h)
  version                     print the version

Run 'latchkey serve -h' for the flags (every command accepts them).`

// run is the whole program: main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "latchkey", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	case "serve":
		o, pos, err := parseOptions("serve", rest, getenv, stderr)
		if err != nil {
			return err
		}
		if len(pos) > 0 {
			return usagef("serve takes no arguments, got %q", pos)
		}
		if getenv("GOGC") == "" && getenv("GOMEMLIMIT") == "" {
			defer memlimit.Follow(serveMemory)()
		}
		return serve(ctx, o, stderr)
	case "bench":
		return bench(ctx, rest, stdout, stderr)
	case "users", "sessions", "keys", "clients":
		if len(rest) == 0 {
			return usagef("%s needs a subcommand (see 'latchkey help')", cmd)
		}
		sub := rest[0]
		o, pos, err := parseOptions(cmd+" "+sub, rest[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return admin(ctx, o, cmd, sub, pos, stdin, stdout, stderr)
	}
	fmt.Fprintln(stderr, usage)
	return usagef("unknown command %q", cmd)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// serveMemory is the server's garbage-collector policy unless GOGC or
// GOMEMLIMIT is set: collect rarely while the heap is small, and cap the
// garbage password hashes leave at 44 MiB, or at what Go's default pacing
// would allow once the process is larger (docs/benchmarks.md, Memory).
var serveMemory = memlimit.Policy{GCPercent: 200, Floor: 44 << 20, Factor: 2, Every: time.Second}

// parseOptions parses the flags shared by every command, then fills each flag
// not given on the command line from its LATCHKEY_ environment variable.
func parseOptions(name string, args []string, getenv func(string) string, stderr io.Writer) (*options, []string, error) {
	fs := flag.NewFlagSet("latchkey "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := defineOptions(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, usagef("help requested")
		}
		return nil, nil, usageError{err.Error()}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		v := getenv(env)
		if set[f.Name] || v == "" || err != nil {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = usagef("%s=%q: %v", env, v, e)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	if err := o.finish(getenv); err != nil {
		return nil, nil, err
	}
	return o, fs.Args(), nil
}

func envName(flagName string) string {
	return "LATCHKEY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

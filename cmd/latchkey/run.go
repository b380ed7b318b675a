package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"time"

	"github.com/latchkey/latchkey/internal/memlimit"
)

// usageError is a mistake in the command line; main exits 2 for it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run is the whole program: main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage(""))
		return usagef("no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" { // latchkey help users add
			return run(ctx, append(slices.Clip(args[1:]), "-h"), getenv, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage(""))
		return nil
	case "--version", "-version":
		args = []string{"version"}
	}
	c, rest, groupHelp, err := lookup(args)
	if err != nil {
		if isGroup(args[0]) {
			fmt.Fprint(stderr, usage(args[0]))
		} else {
			fmt.Fprint(stderr, usage(""))
		}
		return err
	}
	if groupHelp {
		fmt.Fprint(stdout, usage(args[0]))
		return nil
	}
	o, pos, err := c.parse(rest, getenv, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.run(ctx, &call{o: o, args: pos, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr})
}

func runVersion(_ context.Context, c *call) error {
	fmt.Fprintln(c.stdout, "latchkey", version())
	return nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func runServe(ctx context.Context, c *call) error {
	return serve(ctx, c.o, c.getenv, c.stderr)
}

// serveMemory is the server's garbage-collector policy (--memory-policy auto):
// collect rarely while the heap is small, and cap the garbage password hashes
// leave at 44 MiB, or at what Go's default pacing would allow once the process
// is larger (docs/benchmarks.md, Memory).
var serveMemory = memlimit.Policy{GCPercent: 200, Floor: 44 << 20, Factor: 2, Every: time.Second}

// memoryPolicy decides whether serve applies serveMemory, and says why: with
// --memory-policy auto it does unless the operator set GOGC or GOMEMLIMIT.
func memoryPolicy(policy string, getenv func(string) string) (apply bool, why string) {
	if policy == memoryOff {
		return false, "memory policy off: --memory-policy=off, Go's collector settings apply"
	}
	var set []string
	for _, v := range []string{"GOGC", "GOMEMLIMIT"} {
		if getenv(v) != "" {
			set = append(set, v)
		}
	}
	switch len(set) {
	case 0:
		p := serveMemory
		return true, fmt.Sprintf("memory policy: GOGC=%d, soft limit max(%d MiB, %gx live heap and scanned stacks + runtime overhead), re-read every %v",
			p.GCPercent, p.Floor>>20, p.Factor, p.Every)
	case 1:
		return false, fmt.Sprintf("memory policy off: %s is set", set[0])
	}
	return false, "memory policy off: GOGC and GOMEMLIMIT are set"
}

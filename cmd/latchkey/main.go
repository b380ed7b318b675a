// Command latchkey runs the latchkey token server and administers its store.
//
//	latchkey serve [flags]                      start the HTTP API
//	latchkey users add|list|disable|enable      manage accounts
//	latchkey sessions list USER | revoke ID     a user's sessions
//	latchkey clients add|list|remove            OAuth clients
//	latchkey keys list|rotate                   signing keys
//	latchkey version
//
// Each command takes only the flags it reads (latchkey COMMAND -h lists them);
// every setting is also an environment variable (LATCHKEY_ADDR for --addr, …),
// flags win, and a command ignores the variables of other commands' flags, so
// one environment file serves them all. The deployment secret comes only from
// LATCHKEY_SECRET (or, on SQLite, a generated file beside the database), never
// from a flag. The load generator is a separate command, cmd/latchkey-bench.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr and returns the process's exit status: 0, 2
// for a mistake in the command line, 1 for any other failure.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "latchkey:", err)
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

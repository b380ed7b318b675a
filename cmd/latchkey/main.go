// Command latchkey runs the latchkey token server and administers its store.
//
//	latchkey serve [flags]                 start the HTTP API
//	latchkey users add|list|disable|enable manage accounts
//	latchkey sessions list USER | revoke ID
//	latchkey keys list|rotate              signing keys
//	latchkey version
//
// Every flag is also an environment variable (LATCHKEY_ADDR for --addr, …);
// flags win. The deployment secret comes only from LATCHKEY_SECRET (or, on
// SQLite, a generated file beside the database), never from a flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(os.Stderr, "latchkey:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "latchkey:", err)
		os.Exit(1)
	}
}

//go:build !linux

package postgres

import (
	"syscall"
	"time"
)

// unanswered sets nothing outside Linux: a query on a connection whose
// packets vanish waits until TCP gives up or the request is cancelled.
func unanswered(time.Duration) func(network, address string, c syscall.RawConn) error { return nil }

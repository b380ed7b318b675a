package postgres

import (
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// unanswered is a net.Dialer Control function that makes the kernel drop a
// TCP connection to the server when data it sent stays unacknowledged for d
// (TCP_USER_TIMEOUT). A query on a connection whose packets vanish — the
// network to the database cut, not refused — then fails after d and its
// request is answered 503 unavailable, instead of waiting for TCP to give up
// (about 15 minutes) or for the client to hang up. A slow query is not
// affected: the server's kernel acknowledges what it receives at once.
func unanswered(d time.Duration) func(network, address string, c syscall.RawConn) error {
	ms := int(d.Milliseconds())
	return func(network, _ string, c syscall.RawConn) error {
		if !strings.HasPrefix(network, "tcp") {
			return nil // a Unix socket has no network to lose
		}
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
		}); err != nil {
			return err
		}
		return serr
	}
}

package storetest

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// Parallel32 runs body on 32 goroutines, as 32 HTTP clients would, whatever
// GOMAXPROCS is.
func Parallel32(b *testing.B, body func(*testing.PB)) {
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(body)
}

// BenchRotateSession measures the compare-and-swap of a refresh on s: 32
// goroutines, each rotating its own session, so every swap succeeds and the
// figure is the cost of a successful rotation under contention. The sessions
// are first-party (registration ""), the common refresh. A backend's
// benchmark calls it next to a bare write of its own, for the ratio.
func BenchRotateSession(b *testing.B, s store.Store) {
	ctx := context.Background()
	at := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids atomic.Int64
	b.ReportAllocs()
	Parallel32(b, func(pb *testing.PB) {
		id := fmt.Sprint("s", ids.Add(1))
		if err := s.CreateSession(ctx, store.Session{ID: id, UserID: "u", RotatedAt: at, CreatedAt: at, LastUsedAt: at,
			IdleExpiresAt: at.Add(time.Hour), ExpiresAt: at.Add(24 * time.Hour)}); err != nil {
			b.Error(err)
			return
		}
		r := store.Rotation{At: at, IdleExpiresAt: at.Add(time.Hour)}
		for r.From = 0; pb.Next(); r.From++ {
			if _, err := s.RotateSession(ctx, id, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

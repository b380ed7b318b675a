package latchkey_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/refreshtoken"
	"github.com/latchkey/latchkey/store"
)

// BenchmarkRefreshWithSessions refreshes one session while the SQLite store
// holds 1 thousand, 100 thousand or 1 million other live sessions: the cost
// should not grow beyond the index lookup. Seeding a million sessions takes
// about a minute; run it on purpose:
//
//	go test -run '^$' -bench RefreshWithSessions -benchtime 2000x .
func BenchmarkRefreshWithSessions(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%d", n), func(b *testing.B) {
			f := newFixture(b, nil)
			ctx := context.Background()
			now := f.clock.Now()
			for i := range n {
				err := f.store.CreateSession(ctx, store.Session{
					ID: refreshtoken.NewSessionID().String(), UserID: fmt.Sprintf("user-%d", i%50_000),
					RotatedAt: now, CreatedAt: now, LastUsedAt: now,
					IdleExpiresAt: now.Add(24 * time.Hour), ExpiresAt: now.Add(48 * time.Hour),
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			tok, err := f.auth.Login(ctx, "user-1", latchkey.LoginOptions{})
			if err != nil {
				b.Fatal(err)
			}
			rt := tok.RefreshToken
			b.ResetTimer()
			for b.Loop() {
				next, err := f.auth.Refresh(ctx, rt, latchkey.RefreshOptions{})
				if err != nil {
					b.Fatal(err)
				}
				rt = next.RefreshToken
			}
		})
	}
}

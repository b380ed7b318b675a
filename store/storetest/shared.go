package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// RunShared checks that two handles on one underlying store — two nodes of
// one deployment, two processes on one file — behave as one store. open
// returns two handles on the same fresh, empty store (registering their
// cleanup); it is called once per subtest.
func RunShared(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	t.Run("RotateContention", func(t *testing.T) { sharedRotateContention(t, open) })
	t.Run("RevocationVisible", func(t *testing.T) { sharedRevocationVisible(t, open) })
	t.Run("Markers", func(t *testing.T) { sharedMarkers(t, open) })
	t.Run("Audit", func(t *testing.T) { sharedAudit(t, open) })
	t.Run("Buckets", func(t *testing.T) { sharedBuckets(t, open) })
	t.Run("SessionCap", func(t *testing.T) { sharedSessionCap(t, open) })
}

// sharedRotateContention: 32 goroutines per handle rotate the same generation
// at once, for several rounds; in every round exactly one of all 64 wins,
// every other one gets ErrConflict, and both handles then read the next
// generation.
func sharedRotateContention(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	a, b := open(t)
	handles := []store.Store{a, b}
	ctx := t.Context()
	must(t, a.CreateSession(ctx, session("s", "u", base)))
	const perHandle, rounds = 32, 10
	for round := range uint64(rounds) {
		at := base.Add(time.Duration(round+1) * time.Second)
		won := race(t, 2*perHandle, store.ErrConflict,
			func(i int) string {
				return fmt.Sprintf("round %d: RotateSession(From %d) on handle %d", round, round, i%2)
			},
			func(i int) error {
				_, err := handles[i%2].RotateSession(ctx, "s", store.Rotation{From: round, At: at, IdleExpiresAt: at.Add(time.Hour)})
				return err
			})
		if len(won) != 1 {
			t.Fatalf("round %d: %d rotations won across the two handles, want exactly 1", round, len(won))
		}
		for i, h := range handles {
			got, err := h.Session(ctx, "s")
			must(t, err)
			if got.Generation != round+1 || !sameTime(got.RotatedAt, at) {
				t.Fatalf("round %d: handle %d reads generation %d rotated at %v, want %d at %v", round, i, got.Generation, got.RotatedAt, round+1, at)
			}
		}
	}
}

// sharedRevocationVisible: a revocation written through one handle is in the
// feed and in the session read through the other, and the other's revocation
// of the same session changes nothing.
func sharedRevocationVisible(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	a, b := open(t)
	ctx := t.Context()
	must(t, a.CreateSession(ctx, session("s", "u", base)))
	rev := store.Revocation{SessionID: "s", At: base.Add(time.Second), Until: base.Add(time.Hour)}
	must(t, a.RevokeSession(ctx, rev, "logout"))
	must(t, a.RevokeToken(ctx, store.Revocation{TokenID: "jti", At: base.Add(time.Second), Until: base.Add(time.Hour)}))
	feed, err := b.RevocationsAfter(ctx, 0, base, 10)
	must(t, err)
	if len(feed) != 2 || feed[0].SessionID != "s" || !sameTime(feed[0].At, rev.At) || feed[1].TokenID != "jti" {
		t.Fatalf("feed read through the other handle = %+v, want the revocation of s, then of jti", feed)
	}
	got, err := b.Session(ctx, "s")
	must(t, err)
	if !got.Revoked() || !sameTime(got.RevokedAt, rev.At) || got.RevokeReason != "logout" {
		t.Fatalf("Session(s) through the other handle = %+v, want it revoked at %v for logout", got, rev.At)
	}
	must(t, b.RevokeSession(ctx, store.Revocation{SessionID: "s", At: base.Add(time.Minute), Until: base.Add(2 * time.Hour)}, "reused"))
	again, err := a.RevocationsAfter(ctx, 0, base, 10)
	must(t, err)
	if len(again) != 2 {
		t.Fatalf("feed after revoking s again through the other handle = %+v, want the same two entries", again)
	}
	_, err = b.RotateSession(ctx, "s", store.Rotation{From: 0, At: base.Add(2 * time.Second)})
	wantErr(t, "RotateSession(revoked through the other handle)", err, store.ErrConflict)
}

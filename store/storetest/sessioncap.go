package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// capReason is the reason the suite's capped creations revoke with.
const capReason = "session_limit"

// liveIDs returns the IDs of the user's sessions live at at, in byte order.
func liveIDs(t *testing.T, s store.Sessions, userID string, at time.Time) []string {
	t.Helper()
	ss, err := s.UserSessions(t.Context(), userID)
	must(t, err)
	var ids []string
	for _, x := range ss {
		if x.Live(at) {
			ids = append(ids, x.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// wantLive fails unless the user's sessions live at at are exactly want.
func wantLive(t *testing.T, s store.Sessions, userID string, at time.Time, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	if got := liveIDs(t, s, userID, at); !slices.Equal(got, want) {
		t.Fatalf("live sessions of %s at %v = %q, want %q", userID, at.Sub(base), got, want)
	}
}

// createCapped creates x under a cap of limit and fails unless it revoked
// exactly want, in this order.
func createCapped(t *testing.T, c store.SessionCap, x store.Session, limit int, until time.Time, want ...string) {
	t.Helper()
	got, err := c.CreateSessionCapped(t.Context(), x, limit, capReason, until)
	if err != nil {
		t.Fatalf("CreateSessionCapped(%s, %d) = %v", x.ID, limit, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("CreateSessionCapped(%s, %d) revoked %q, want %q", x.ID, limit, got, want)
	}
}

// wantCapRevoked fails unless session id was revoked by a capped creation at at.
func wantCapRevoked(t *testing.T, s store.Sessions, id string, at time.Time) {
	t.Helper()
	x, err := s.Session(t.Context(), id)
	must(t, err)
	if !x.Revoked() || !sameTime(x.RevokedAt, at) || x.RevokeReason != capReason {
		t.Fatalf("Session(%s) = revoked at %v for %q, want revoked at %v for %q", id, x.RevokedAt, x.RevokeReason, at, capReason)
	}
}

// wantFeed fails unless the feed holds exactly these entries, as session
// revocations at these times, until until.
func wantFeed(t *testing.T, s store.Store, until time.Time, want map[string]time.Time) {
	t.Helper()
	feed, err := s.RevocationsAfter(t.Context(), 0, base, 1000)
	must(t, err)
	got := map[string]time.Time{}
	for _, e := range feed {
		if _, dup := got[e.SessionID]; dup || e.SessionID == "" || !sameTime(e.Until, until) {
			t.Fatalf("feed = %+v: entry %+v is a repeat, not of a session, or not until %v", feed, e, until)
		}
		got[e.SessionID] = e.At
	}
	if len(got) != len(want) {
		t.Fatalf("feed = %+v, want the revocations of %v", feed, want)
	}
	for id, at := range want {
		if g, ok := got[id]; !ok || !sameTime(g, at) {
			t.Fatalf("feed = %+v, want the revocation of %s at %v", feed, id, at)
		}
	}
}

// capRevokesLeastRecentlyUsed: under a cap of 3, the fourth and fifth
// sessions revoke the two least recently used (a rotation counts as a use),
// at the new session's CreatedAt, for the reason given, each with a feed
// entry; other users' sessions are untouched. A cap of 1 then revokes every
// other session, least recently used first.
func capRevokesLeastRecentlyUsed(t *testing.T, c store.SessionCap, s store.Store) {
	ctx := t.Context()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	until := base.Add(2 * time.Hour)
	must(t, s.CreateSession(ctx, session("other", "u2", at(0))))
	createCapped(t, c, session("s1", "u1", at(0)), 3, until)
	createCapped(t, c, session("s2", "u1", at(1)), 3, until)
	createCapped(t, c, session("s3", "u1", at(2)), 3, until)
	// s1 is used again: s2 is now the least recently used.
	if _, err := s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: at(3), IdleExpiresAt: at(3).Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	createCapped(t, c, session("s4", "u1", at(4)), 3, until, "s2")
	createCapped(t, c, session("s5", "u1", at(5)), 3, until, "s3")
	wantCapRevoked(t, s, "s2", at(4))
	wantCapRevoked(t, s, "s3", at(5))
	wantFeed(t, s, until, map[string]time.Time{"s2": at(4), "s3": at(5)})
	wantLive(t, s, "u1", at(5), "s1", "s4", "s5")
	all, err := s.UserSessions(ctx, "u1")
	must(t, err)
	if len(all) != 5 {
		t.Fatalf(`UserSessions("u1") holds %d sessions, want all 5`, len(all))
	}
	wantLive(t, s, "u2", at(5), "other")

	createCapped(t, c, session("s6", "u1", at(6)), 1, until, "s1", "s4", "s5")
	wantLive(t, s, "u1", at(6), "s6")
	wantFeed(t, s, until, map[string]time.Time{"s2": at(4), "s3": at(5), "s1": at(6), "s4": at(6), "s5": at(6)})
	wantLive(t, s, "u2", at(6), "other")
}

// capTiesByID: sessions last used in the same millisecond go in ascending
// byte order of ID, not by the sub-millisecond part a backend does not keep
// (which here runs against the ID order); the new session, though it sorts
// first, is never one of them.
func capTiesByID(t *testing.T, c store.SessionCap, s store.Store) {
	ctx := t.Context()
	tie := base.Add(time.Hour).Truncate(time.Millisecond)
	byID := []string{"B", "a", "b", "é"} // ascending bytes
	for i, id := range byID {
		must(t, s.CreateSession(ctx, session(id, "u1", tie.Add(time.Duration(len(byID)-i)*100*time.Microsecond))))
	}
	createCapped(t, c, session("A", "u1", tie), 2, tie.Add(time.Hour), "B", "a", "b")
	wantLive(t, s, "u1", tie, "A", "é")
}

// capCountsOnlyLive: revoked and ended sessions (one ending exactly at the
// new session's CreatedAt among them) do not count against the cap, and
// sessions created without a cap do.
func capCountsOnlyLive(t *testing.T, c store.SessionCap, s store.Store) {
	ctx := t.Context()
	now := base.Add(2 * time.Hour)
	until := now.Add(time.Hour)
	// Used more recently than "live": counted, it would make "live" go.
	must(t, s.CreateSession(ctx, session("revoked", "u1", now.Add(-30*time.Second))))
	must(t, s.RevokeSession(ctx, store.Revocation{SessionID: "revoked", At: now.Add(-20 * time.Second), Until: now.Add(time.Hour)}, "logout"))
	must(t, s.CreateSession(ctx, session("idle", "u1", base)))                  // idle-expired at base+1h
	must(t, s.CreateSession(ctx, session("edge", "u1", now.Add(-time.Hour))))   // idle-expires at now exactly
	must(t, s.CreateSession(ctx, session("live", "u1", now.Add(-time.Minute)))) // uncapped, live
	must(t, s.CreateSession(ctx, session("other", "u2", now.Add(-time.Minute))))
	createCapped(t, c, session("new", "u1", now), 2, until)
	wantLive(t, s, "u1", now, "live", "new")
	createCapped(t, c, session("newer", "u1", now.Add(time.Second)), 2, until, "live")
	wantLive(t, s, "u1", now.Add(time.Second), "new", "newer")
	wantLive(t, s, "u2", now.Add(time.Second), "other")
	for _, id := range []string{"idle", "edge"} {
		x, err := s.Session(ctx, id)
		must(t, err)
		if x.Revoked() {
			t.Fatalf("Session(%s), which had ended, was revoked: %+v", id, x)
		}
	}
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(feed) != 2 || feed[0].SessionID != "revoked" || feed[1].SessionID != "live" || !sameTime(feed[1].At, now.Add(time.Second)) {
		t.Fatalf("feed = %+v, want the revocations of revoked, then of live", feed)
	}
}

// capRefusals: a taken ID is ErrExists, and a cap under 1 or an OAuth
// session without a registration an error that is no sentinel; each changes
// nothing.
func capRefusals(t *testing.T, c store.SessionCap, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateSession(ctx, session("s0", "u1", base)))
	must(t, s.CreateSession(ctx, session("s1", "u1", base.Add(time.Second))))
	at := base.Add(time.Minute)
	_, err := c.CreateSessionCapped(ctx, session("s0", "u1", at), 1, capReason, at.Add(time.Hour))
	wantErr(t, "CreateSessionCapped(a taken ID)", err, store.ErrExists)
	oauth := session("s3", "u1", at)
	oauth.ClientID = "app"
	for what, call := range map[string]func() ([]string, error){
		"a cap of 0": func() ([]string, error) {
			return c.CreateSessionCapped(ctx, session("s2", "u1", at), 0, capReason, at.Add(time.Hour))
		},
		"a cap of -1": func() ([]string, error) {
			return c.CreateSessionCapped(ctx, session("s2", "u1", at), -1, capReason, at.Add(time.Hour))
		},
		"an OAuth session without a registration": func() ([]string, error) {
			return c.CreateSessionCapped(ctx, oauth, 1, capReason, at.Add(time.Hour))
		},
	} {
		revoked, err := call()
		if err == nil || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || len(revoked) > 0 {
			t.Fatalf("CreateSessionCapped(%s) = %q, %v; want an error that is no sentinel", what, revoked, err)
		}
	}
	wantLive(t, s, "u1", at, "s0", "s1")
	for _, id := range []string{"s2", "s3"} {
		_, err := s.Session(ctx, id)
		wantErr(t, "Session("+id+") after a refused creation", err, store.ErrNotFound)
	}
	wantFeed(t, s, time.Time{}, nil)
}

// capContention checks that n creations under a cap of limit, at once, for
// one user with old live sessions, through handles (alternating), leave
// exactly limit live sessions; every other one is revoked, by exactly one
// creation, with one feed entry.
func capContention(t *testing.T, handles []store.Store, n, limit int) {
	ctx := t.Context()
	s := handles[0]
	now := base.Add(time.Hour)
	until := now.Add(time.Hour)
	old := []string{"old-0", "old-1", "old-2"}
	for i, id := range old {
		must(t, s.CreateSession(ctx, session(id, "u1", now.Add(-time.Duration(i+1)*time.Minute))))
	}
	var mu sync.Mutex
	revokedBy := map[string]int{}
	race(t, n, errors.ErrUnsupported,
		func(i int) string { return fmt.Sprintf("CreateSessionCapped(c%02d) on handle %d", i, i%len(handles)) },
		func(i int) error {
			revoked, err := handles[i%len(handles)].(store.SessionCap).CreateSessionCapped(ctx, session(fmt.Sprintf("c%02d", i), "u1", now), limit, capReason, until)
			mu.Lock()
			defer mu.Unlock()
			for _, id := range revoked {
				revokedBy[id]++
			}
			return err
		})
	for i, h := range handles {
		live := liveIDs(t, h, "u1", now)
		if len(live) != limit {
			t.Fatalf("%d concurrent creations under a cap of %d left %d live sessions (read through handle %d), want %d: %q", n, limit, len(live), i, limit, live)
		}
	}
	all, err := s.UserSessions(ctx, "u1")
	must(t, err)
	if len(all) != n+len(old) {
		t.Fatalf("UserSessions holds %d sessions, want %d", len(all), n+len(old))
	}
	want := map[string]time.Time{}
	for _, x := range all {
		if x.Live(now) {
			continue
		}
		want[x.ID] = now
		if revokedBy[x.ID] != 1 || x.RevokeReason != capReason || !sameTime(x.RevokedAt, now) {
			t.Fatalf("session %s revoked at %v for %q, and reported revoked by %d creations; want at %v for %q by 1",
				x.ID, x.RevokedAt, x.RevokeReason, revokedBy[x.ID], now, capReason)
		}
	}
	if len(revokedBy) != len(want) {
		t.Fatalf("the creations report %d sessions revoked, %d are", len(revokedBy), len(want))
	}
	wantFeed(t, s, until, want)
}

// capConcurrent: 50 creations for one user at once under a cap of 10 leave
// exactly 10 live.
func capConcurrent(t *testing.T, _ store.SessionCap, s store.Store) {
	capContention(t, []store.Store{s}, 50, 10)
}

// capRacesRevokeSession: a capped creation and RevokeSession of the sessions
// it revokes, at once, all succeed (they never deadlock); every session is
// revoked once, with one feed entry, and the creation reports, in least
// recently used order, exactly the sessions revoked for its reason.
func capRacesRevokeSession(t *testing.T, c store.SessionCap, s store.Store) {
	ctx := t.Context()
	const rounds, sessions = 5, 8
	for round := range rounds {
		uid := fmt.Sprint("u", round)
		now := base.Add(time.Hour)
		ids := make([]string, sessions)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s-s%d", uid, i) // least recently used first
			must(t, s.CreateSession(ctx, session(ids[i], uid, now.Add(-time.Duration(sessions-i)*time.Second))))
		}
		var revoked []string
		race(t, sessions+1, errors.ErrUnsupported,
			func(i int) string { return fmt.Sprintf("round %d: call %d", round, i) },
			func(i int) error {
				if i == sessions {
					var err error
					revoked, err = c.CreateSessionCapped(ctx, session(uid+"-new", uid, now), 1, capReason, now.Add(time.Hour))
					return err
				}
				return s.RevokeSession(ctx, store.Revocation{SessionID: ids[sessions-1-i], At: now, Until: now.Add(time.Hour)}, "logout")
			})
		var byCap []string
		for _, id := range ids {
			x, err := s.Session(ctx, id)
			must(t, err)
			if !x.Revoked() {
				t.Fatalf("round %d: Session(%s) not revoked", round, id)
			}
			if x.RevokeReason == capReason {
				byCap = append(byCap, id)
			}
		}
		if !slices.Equal(revoked, byCap) {
			t.Fatalf("round %d: CreateSessionCapped reports %q revoked, the sessions revoked for %q are %q", round, revoked, capReason, byCap)
		}
		wantLive(t, s, uid, now, uid+"-new")
	}
	feed, err := s.RevocationsAfter(ctx, 0, base, 1000)
	must(t, err)
	seen := map[string]bool{}
	for _, e := range feed {
		if seen[e.SessionID] {
			t.Fatalf("feed holds two entries for %s: %+v", e.SessionID, feed)
		}
		seen[e.SessionID] = true
	}
	if len(seen) != rounds*sessions {
		t.Fatalf("feed holds entries for %d sessions, want %d", len(seen), rounds*sessions)
	}
}

// capCanceledContext: CreateSessionCapped passes its context on; nothing is
// created or revoked.
func capCanceledContext(t *testing.T, c store.SessionCap, s store.Store) {
	must(t, s.CreateSession(t.Context(), session("s1", "u1", base)))
	failCanceled(t, []call{
		{"CreateSessionCapped", func(ctx context.Context) error {
			_, err := c.CreateSessionCapped(ctx, session("s2", "u1", base), 1, capReason, base.Add(time.Hour))
			return err
		}},
	})
	wantLive(t, s, "u1", base, "s1")
	_, err := s.Session(t.Context(), "s2")
	wantErr(t, "Session(s2) after CreateSessionCapped(canceled context)", err, store.ErrNotFound)
	wantFeed(t, s, time.Time{}, nil)
}

// sharedSessionCap: creations under a cap through two handles at once count
// each other's sessions.
func sharedSessionCap(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	a, b := open(t)
	if _, ok := a.(store.SessionCap); !ok {
		t.Skipf("%T does not offer store.SessionCap", a)
	}
	capContention(t, []store.Store{a, b}, 50, 10)
}

// Package storetest is the conformance suite every latchkey store backend must
// pass. A backend's test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			db, err := mybackend.Open(…)
//			if err != nil { t.Fatal(err) }
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Times must round-trip to the millisecond; the zero time must stay zero.
// Every subtest gets a fresh store and is named for the behaviour it checks.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// base is the fixed time the suite starts from; backends never read a clock.
var base = time.UnixMilli(1_800_000_000_123)

// Run runs the suite; open returns a fresh, empty store for each subtest and
// registers its own cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateUserRoundTrip", createUserRoundTrip},
		{"CreateUserDuplicateName", createUserDuplicateName},
		{"CreateUserDuplicateID", createUserDuplicateID},
		{"UserMissing", userMissing},
		{"UpdateUser", updateUser},
		{"UpdateUserMissing", updateUserMissing},
		{"ListUsersOrdered", listUsersOrdered},
		{"SessionRoundTrip", sessionRoundTrip},
		{"CreateSessionDuplicate", createSessionDuplicate},
		{"SessionMissing", sessionMissing},
		{"RotateAdvancesOneGeneration", rotateAdvancesOneGeneration},
		{"RotateStaleConflicts", rotateStaleConflicts},
		{"RotateRevokedConflicts", rotateRevokedConflicts},
		{"RotateMissingNotFound", rotateMissingNotFound},
		{"RotateContention", rotateContention},
		{"UserSessionsNewestFirst", userSessionsNewestFirst},
		{"RevokeSessionIdempotent", revokeSessionIdempotent},
		{"RevokeMissingNotFound", revokeMissingNotFound},
		{"RevocationFeedOrdered", revocationFeedOrdered},
		{"RevocationFeedHidesPast", revocationFeedHidesPast},
		{"KeysPutListDelete", keysPutListDelete},
		{"PurgeExpiredAndRevoked", purgeExpiredAndRevoked},
		{"Ping", ping},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var ctx = context.Background()

func user(id, name string) store.User {
	return store.User{ID: id, Username: name, PasswordHash: "$argon2id$hash-of-" + name, CreatedAt: base}
}

func session(id, userID string, created time.Time) store.Session {
	return store.Session{
		ID: id, UserID: userID, RotatedAt: created, CreatedAt: created, LastUsedAt: created,
		IdleExpiresAt: created.Add(time.Hour), ExpiresAt: created.Add(24 * time.Hour),
		UserAgent: "agent/1.0", IP: "192.0.2.1",
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", op, err, want)
	}
}

func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

func createUserRoundTrip(t *testing.T, s store.Store) {
	u := user("u1", "alice")
	must(t, s.CreateUser(ctx, u))
	for _, get := range []func() (store.User, error){
		func() (store.User, error) { return s.UserByName(ctx, "alice") },
		func() (store.User, error) { return s.UserByID(ctx, "u1") },
	} {
		got, err := get()
		must(t, err)
		if got.ID != u.ID || got.Username != u.Username || got.PasswordHash != u.PasswordHash || got.Disabled || !sameTime(got.CreatedAt, u.CreatedAt) {
			t.Fatalf("user = %+v, want %+v", got, u)
		}
	}
}

func createUserDuplicateName(t *testing.T, s store.Store) {
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	wantErr(t, "CreateUser(same name)", s.CreateUser(ctx, user("u2", "alice")), store.ErrExists)
}

func createUserDuplicateID(t *testing.T, s store.Store) {
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	wantErr(t, "CreateUser(same id)", s.CreateUser(ctx, user("u1", "bob")), store.ErrExists)
}

func userMissing(t *testing.T, s store.Store) {
	_, err := s.UserByName(ctx, "nobody")
	wantErr(t, "UserByName(missing)", err, store.ErrNotFound)
	_, err = s.UserByID(ctx, "nobody")
	wantErr(t, "UserByID(missing)", err, store.ErrNotFound)
}

func updateUser(t *testing.T, s store.Store) {
	u := user("u1", "alice")
	must(t, s.CreateUser(ctx, u))
	u.PasswordHash, u.Disabled = "$argon2id$new", true
	must(t, s.UpdateUser(ctx, u))
	got, err := s.UserByID(ctx, "u1")
	must(t, err)
	if got.PasswordHash != "$argon2id$new" || !got.Disabled || got.Username != "alice" {
		t.Fatalf("after update: %+v", got)
	}
}

func updateUserMissing(t *testing.T, s store.Store) {
	wantErr(t, "UpdateUser(missing)", s.UpdateUser(ctx, user("nobody", "x")), store.ErrNotFound)
}

func listUsersOrdered(t *testing.T, s store.Store) {
	for i, n := range []string{"carol", "alice", "bob"} {
		must(t, s.CreateUser(ctx, user(fmt.Sprint("u", i), n)))
	}
	us, err := s.ListUsers(ctx)
	must(t, err)
	var names []string
	for _, u := range us {
		names = append(names, u.Username)
	}
	if !slices.Equal(names, []string{"alice", "bob", "carol"}) {
		t.Fatalf("ListUsers = %v", names)
	}
}

func sessionRoundTrip(t *testing.T, s store.Store) {
	x := session("s1", "u1", base)
	x.Generation = 7
	x.ClientID = "client-a"
	must(t, s.CreateSession(ctx, x))
	got, err := s.Session(ctx, "s1")
	must(t, err)
	if got.ID != x.ID || got.UserID != x.UserID || got.Generation != 7 || got.UserAgent != x.UserAgent ||
		got.IP != x.IP || got.ClientID != x.ClientID || got.RevokeReason != "" ||
		!sameTime(got.RotatedAt, x.RotatedAt) || !sameTime(got.CreatedAt, x.CreatedAt) || !sameTime(got.LastUsedAt, x.LastUsedAt) ||
		!sameTime(got.IdleExpiresAt, x.IdleExpiresAt) || !sameTime(got.ExpiresAt, x.ExpiresAt) || !got.RevokedAt.IsZero() {
		t.Fatalf("session = %+v, want %+v", got, x)
	}
}

func createSessionDuplicate(t *testing.T, s store.Store) {
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	wantErr(t, "CreateSession(same id)", s.CreateSession(ctx, session("s1", "u2", base)), store.ErrExists)
}

func sessionMissing(t *testing.T, s store.Store) {
	_, err := s.Session(ctx, "nope")
	wantErr(t, "Session(missing)", err, store.ErrNotFound)
}

func rotateAdvancesOneGeneration(t *testing.T, s store.Store) {
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	at := base.Add(time.Minute)
	got, err := s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: at, IdleExpiresAt: at.Add(time.Hour)})
	must(t, err)
	if got.Generation != 1 || !sameTime(got.RotatedAt, at) || !sameTime(got.LastUsedAt, at) || !sameTime(got.IdleExpiresAt, at.Add(time.Hour)) ||
		!sameTime(got.CreatedAt, base) || !sameTime(got.ExpiresAt, base.Add(24*time.Hour)) {
		t.Fatalf("rotated = %+v", got)
	}
	stored, err := s.Session(ctx, "s1")
	must(t, err)
	if stored.Generation != 1 || !sameTime(stored.RotatedAt, at) {
		t.Fatalf("stored after rotate = %+v", stored)
	}
}

func rotateStaleConflicts(t *testing.T, s store.Store) {
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	_, err := s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: base})
	must(t, err)
	_, err = s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: base})
	wantErr(t, "RotateSession(stale)", err, store.ErrConflict)
	_, err = s.RotateSession(ctx, "s1", store.Rotation{From: 5, At: base})
	wantErr(t, "RotateSession(ahead)", err, store.ErrConflict)
	got, err := s.Session(ctx, "s1")
	must(t, err)
	if got.Generation != 1 {
		t.Fatalf("generation = %d after failed swaps, want 1", got.Generation)
	}
}

func rotateRevokedConflicts(t *testing.T, s store.Store) {
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	must(t, s.RevokeSession(ctx, "s1", "logout", store.Revocation{At: base, Until: base.Add(time.Hour)}))
	_, err := s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: base})
	wantErr(t, "RotateSession(revoked)", err, store.ErrConflict)
}

func rotateMissingNotFound(t *testing.T, s store.Store) {
	_, err := s.RotateSession(ctx, "nope", store.Rotation{From: 0, At: base})
	wantErr(t, "RotateSession(missing)", err, store.ErrNotFound)
}

// rotateContention: 64 goroutines swap the same generation at once; exactly one wins.
func rotateContention(t *testing.T, s store.Store) {
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	const workers, rounds = 64, 5
	for round := range uint64(rounds) {
		var wins, conflicts atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				<-start
				_, err := s.RotateSession(ctx, "s1", store.Rotation{From: round, At: base})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: unexpected error %v", round, err)
		}
		if wins.Load() != 1 || conflicts.Load() != workers-1 {
			t.Fatalf("round %d: %d wins and %d conflicts, want 1 and %d", round, wins.Load(), conflicts.Load(), workers-1)
		}
		got, err := s.Session(ctx, "s1")
		must(t, err)
		if got.Generation != round+1 {
			t.Fatalf("round %d: generation %d, want %d", round, got.Generation, round+1)
		}
	}
}

func userSessionsNewestFirst(t *testing.T, s store.Store) {
	for i := range 3 {
		must(t, s.CreateSession(ctx, session(fmt.Sprint("s", i), "u1", base.Add(time.Duration(i)*time.Minute))))
	}
	must(t, s.CreateSession(ctx, session("other", "u2", base)))
	ss, err := s.UserSessions(ctx, "u1")
	must(t, err)
	var ids []string
	for _, x := range ss {
		ids = append(ids, x.ID)
	}
	if !slices.Equal(ids, []string{"s2", "s1", "s0"}) {
		t.Fatalf("UserSessions = %v", ids)
	}
	none, err := s.UserSessions(ctx, "nobody")
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("UserSessions(nobody) = %v", none)
	}
}

func revokeSessionIdempotent(t *testing.T, s store.Store) {
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	rev := store.Revocation{At: base.Add(time.Second), Until: base.Add(time.Hour)}
	must(t, s.RevokeSession(ctx, "s1", "reused", rev))
	must(t, s.RevokeSession(ctx, "s1", "logout", store.Revocation{At: base.Add(time.Minute), Until: base.Add(time.Hour)}))
	got, err := s.Session(ctx, "s1")
	must(t, err)
	if !got.Revoked() || got.RevokeReason != "reused" || !sameTime(got.RevokedAt, rev.At) {
		t.Fatalf("after two revokes: %+v", got)
	}
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(feed) != 1 || feed[0].SessionID != "s1" || feed[0].TokenID != "" || !sameTime(feed[0].Until, rev.Until) {
		t.Fatalf("feed = %+v, want one entry for s1", feed)
	}
}

func revokeMissingNotFound(t *testing.T, s store.Store) {
	wantErr(t, "RevokeSession(missing)", s.RevokeSession(ctx, "nope", "x", store.Revocation{At: base, Until: base.Add(time.Hour)}), store.ErrNotFound)
}

func revocationFeedOrdered(t *testing.T, s store.Store) {
	for i := range 5 {
		id := fmt.Sprint("s", i)
		must(t, s.CreateSession(ctx, session(id, "u1", base)))
		must(t, s.RevokeSession(ctx, id, "logout", store.Revocation{At: base, Until: base.Add(time.Hour)}))
		must(t, s.RevokeToken(ctx, store.Revocation{TokenID: fmt.Sprint("jti", i), At: base, Until: base.Add(time.Hour)}))
	}
	all, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(all) != 10 {
		t.Fatalf("feed has %d entries, want 10", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("feed not strictly increasing: %d then %d", all[i-1].Seq, all[i].Seq)
		}
	}
	if all[0].SessionID != "s0" || all[1].TokenID != "jti0" {
		t.Fatalf("feed order: %+v", all[:2])
	}
	page, err := s.RevocationsAfter(ctx, all[3].Seq, base, 4)
	must(t, err)
	if len(page) != 4 || page[0].Seq != all[4].Seq {
		t.Fatalf("page after seq %d: %+v", all[3].Seq, page)
	}
}

func revocationFeedHidesPast(t *testing.T, s store.Store) {
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "old", At: base, Until: base.Add(time.Minute)}))
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "new", At: base, Until: base.Add(time.Hour)}))
	feed, err := s.RevocationsAfter(ctx, 0, base.Add(time.Minute), 100)
	must(t, err)
	if len(feed) != 1 || feed[0].TokenID != "new" {
		t.Fatalf("feed = %+v, want only the entry still in force", feed)
	}
}

func keysPutListDelete(t *testing.T, s store.Store) {
	k1 := store.Key{ID: "k1", Algorithm: "EdDSA", Sealed: []byte{1, 2, 3}, CreatedAt: base}
	k2 := store.Key{ID: "k2", Algorithm: "ES256", Sealed: []byte{4, 5}, CreatedAt: base.Add(time.Second)}
	must(t, s.PutKey(ctx, k1))
	must(t, s.PutKey(ctx, k2))
	k1.ActivatedAt = base.Add(time.Minute)
	k1.RetiredAt = base.Add(time.Hour)
	must(t, s.PutKey(ctx, k1))
	ks, err := s.ListKeys(ctx)
	must(t, err)
	if len(ks) != 2 || ks[0].ID != "k1" || ks[1].ID != "k2" {
		t.Fatalf("ListKeys = %+v", ks)
	}
	if string(ks[0].Sealed) != "\x01\x02\x03" || !sameTime(ks[0].ActivatedAt, k1.ActivatedAt) || !sameTime(ks[0].RetiredAt, k1.RetiredAt) ||
		!ks[1].ActivatedAt.IsZero() || ks[1].Algorithm != "ES256" {
		t.Fatalf("keys did not round-trip: %+v", ks)
	}
	must(t, s.DeleteKey(ctx, "k1"))
	must(t, s.DeleteKey(ctx, "k1"))
	ks, err = s.ListKeys(ctx)
	must(t, err)
	if len(ks) != 1 || ks[0].ID != "k2" {
		t.Fatalf("after delete: %+v", ks)
	}
}

func purgeExpiredAndRevoked(t *testing.T, s store.Store) {
	now := base.Add(100 * time.Hour)
	retain := 24 * time.Hour
	live := session("live", "u1", now.Add(-time.Minute))
	recentExpired := session("recent", "u1", now.Add(-2*time.Hour)) // idle expired 1h ago: kept for retain
	oldExpired := session("old", "u1", now.Add(-30*time.Hour))      // idle expired 29h ago
	oldRevoked := session("revoked", "u1", now.Add(-26*time.Hour))
	oldRevoked.IdleExpiresAt = now.Add(time.Hour)
	oldRevoked.ExpiresAt = now.Add(time.Hour)
	for _, x := range []store.Session{live, recentExpired, oldExpired, oldRevoked} {
		must(t, s.CreateSession(ctx, x))
	}
	must(t, s.RevokeSession(ctx, "revoked", "logout", store.Revocation{At: now.Add(-25 * time.Hour), Until: now.Add(-24 * time.Hour)}))
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "still", At: now, Until: now.Add(time.Hour)}))
	n, err := s.Purge(ctx, now, retain)
	must(t, err)
	if n != 2 {
		t.Fatalf("Purge deleted %d sessions, want 2", n)
	}
	for id, want := range map[string]error{"live": nil, "recent": nil, "old": store.ErrNotFound, "revoked": store.ErrNotFound} {
		if _, err := s.Session(ctx, id); !errors.Is(err, want) {
			t.Fatalf("after purge, Session(%s) = %v, want %v", id, err, want)
		}
	}
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(feed) != 1 || feed[0].TokenID != "still" {
		t.Fatalf("feed after purge = %+v, want only the entry in force", feed)
	}
}

func ping(t *testing.T, s store.Store) {
	must(t, s.Ping(ctx))
}

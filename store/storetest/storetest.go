// Package storetest is the conformance suite every latchkey store backend must
// pass. A backend's test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			db, err := mybackend.Open(t.Context(), …)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Every subtest gets a fresh, empty store from open and is named for the
// behaviour it checks (RotateStaleConflicts, RevokeSessionIdempotent, …), so a
// failure reads as the broken promise. Sentinel errors are checked with
// errors.Is, so backends may wrap them.
//
// # Time
//
// Backends never read the clock: every time is an argument, and the suite
// passes fixed times, never sleeps. The times it writes carry nanoseconds; a
// backend must keep at least millisecond precision. The suite compares a time
// read back with the time written after truncating both to the millisecond
// (so a backend may truncate, but must not round up), ignores the location,
// and requires the zero time to come back as the zero time.
//
// The suite's clock starts in the year 2100, so that a backend which hands
// expiry to its server (Redis EXPIREAT, say) still holds every record for the
// whole run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// base is the instant the suite's fixed clock starts from. Its sub-millisecond
// part checks that backends truncate rather than round.
var base = time.Date(2100, 1, 1, 0, 0, 0, 123_456_789, time.UTC)

// Precision is the time precision the store contract requires: a time read
// back from a store equals the time written, truncated to Precision.
const Precision = time.Millisecond

// Run runs the conformance suite against the backend that open creates. open
// must return a fresh, empty store for every call and register its own
// t.Cleanup to close it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateUserRoundTrip", createUserRoundTrip},
		{"CreateUserDuplicateName", createUserDuplicateName},
		{"CreateUserDuplicateID", createUserDuplicateID},
		{"UserByNameMissing", userByNameMissing},
		{"UserByIDMissing", userByIDMissing},
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
		{"RotateChecksClientAndExpiry", rotateChecksClientAndExpiry},
		{"RotateContention", rotateContention},
		{"UserSessionsNewestFirst", userSessionsNewestFirst},
		{"RevokeSessionIdempotent", revokeSessionIdempotent},
		{"RevokeMissingNotFound", revokeMissingNotFound},
		{"RevocationFeedOrdered", revocationFeedOrdered},
		{"RevokeTokenFeed", revokeTokenFeed},
		{"KeysPutListDelete", keysPutListDelete},
		{"PurgeExpiredAndRevoked", purgeExpiredAndRevoked},
		{"PurgeMany", purgeMany},
		{"CanceledContext", canceledContext},
		{"ClientsCreateListDelete", clientsCreateListDelete},
		{"Ping", ping},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// user returns a user created at base.
func user(id, name string) store.User {
	return store.User{ID: id, Username: name, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$hash-of-" + name, CreatedAt: base}
}

// session returns a live session created at created, idle for an hour, over in a day.
func session(id, userID string, created time.Time) store.Session {
	return store.Session{
		ID: id, UserID: userID, RotatedAt: created, CreatedAt: created, LastUsedAt: created,
		IdleExpiresAt: created.Add(time.Hour), ExpiresAt: created.Add(24 * time.Hour),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "192.0.2.1",
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails unless errors.Is(err, want).
func wantErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", call, err, want)
	}
}

// sameTime reports whether a and b are the same instant at Precision, the zero
// time matching only itself.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	return a.Truncate(Precision).Equal(b.Truncate(Precision))
}

// diffUser describes how got differs from want, or returns "".
func diffUser(got, want store.User) string {
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID %q, want %q", got.ID, want.ID))
	}
	if got.Username != want.Username {
		d = append(d, fmt.Sprintf("Username %q, want %q", got.Username, want.Username))
	}
	if got.PasswordHash != want.PasswordHash {
		d = append(d, fmt.Sprintf("PasswordHash %q, want %q", got.PasswordHash, want.PasswordHash))
	}
	if got.Disabled != want.Disabled {
		d = append(d, fmt.Sprintf("Disabled %v, want %v", got.Disabled, want.Disabled))
	}
	if !sameTime(got.CreatedAt, want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// diffSession describes how got differs from want, field by field, or returns "".
func diffSession(got, want store.Session) string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	tm := func(name string, g, w time.Time) {
		if !sameTime(g, w) {
			d = append(d, fmt.Sprintf("%s %v, want %v", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	str("UserID", got.UserID, want.UserID)
	if got.Generation != want.Generation {
		d = append(d, fmt.Sprintf("Generation %d, want %d", got.Generation, want.Generation))
	}
	tm("RotatedAt", got.RotatedAt, want.RotatedAt)
	tm("CreatedAt", got.CreatedAt, want.CreatedAt)
	tm("LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	tm("IdleExpiresAt", got.IdleExpiresAt, want.IdleExpiresAt)
	tm("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	tm("RevokedAt", got.RevokedAt, want.RevokedAt)
	str("RevokeReason", got.RevokeReason, want.RevokeReason)
	str("UserAgent", got.UserAgent, want.UserAgent)
	str("IP", got.IP, want.IP)
	str("ClientID", got.ClientID, want.ClientID)
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// wantSession fails unless got matches want in every field.
func wantSession(t *testing.T, call string, got, want store.Session) {
	t.Helper()
	if d := diffSession(got, want); d != "" {
		t.Fatalf("%s: %s", call, d)
	}
}

func createUserRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := user("u1", "alice")
	must(t, s.CreateUser(ctx, u))
	got, err := s.UserByName(ctx, "alice")
	must(t, err)
	if d := diffUser(got, u); d != "" {
		t.Fatalf(`UserByName("alice"): %s`, d)
	}
	got, err = s.UserByID(ctx, "u1")
	must(t, err)
	if d := diffUser(got, u); d != "" {
		t.Fatalf(`UserByID("u1"): %s`, d)
	}
}

func createUserDuplicateName(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	wantErr(t, `CreateUser(u2, "alice")`, s.CreateUser(ctx, user("u2", "alice")), store.ErrExists)
	if _, err := s.UserByID(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf(`UserByID("u2") after a refused create = %v, want %v`, err, store.ErrNotFound)
	}
}

func createUserDuplicateID(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	wantErr(t, `CreateUser(u1, "bob")`, s.CreateUser(ctx, user("u1", "bob")), store.ErrExists)
	if _, err := s.UserByName(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf(`UserByName("bob") after a refused create = %v, want %v`, err, store.ErrNotFound)
	}
}

// userByNameMissing also checks that the match is exact: callers normalise
// usernames, the store does not.
func userByNameMissing(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.UserByName(ctx, "nobody")
	wantErr(t, `UserByName("nobody")`, err, store.ErrNotFound)
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	for _, name := range []string{"Alice", "alice ", "alic", ""} {
		_, err := s.UserByName(ctx, name)
		wantErr(t, fmt.Sprintf("UserByName(%q)", name), err, store.ErrNotFound)
	}
}

func userByIDMissing(t *testing.T, s store.Store) {
	_, err := s.UserByID(t.Context(), "nobody")
	wantErr(t, `UserByID("nobody")`, err, store.ErrNotFound)
}

func updateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	u := user("u1", "alice")
	must(t, s.CreateUser(ctx, u))
	must(t, s.CreateUser(ctx, user("u2", "bob")))
	u.PasswordHash, u.Disabled = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$new", true
	must(t, s.UpdateUser(ctx, u))
	got, err := s.UserByID(ctx, "u1")
	must(t, err)
	if d := diffUser(got, u); d != "" {
		t.Fatalf(`UserByID("u1") after UpdateUser: %s`, d)
	}
	other, err := s.UserByID(ctx, "u2")
	must(t, err)
	if d := diffUser(other, user("u2", "bob")); d != "" {
		t.Fatalf(`UserByID("u2") after updating u1: %s`, d)
	}
	u.Disabled = false
	must(t, s.UpdateUser(ctx, u))
	if got, err := s.UserByName(ctx, "alice"); err != nil || got.Disabled {
		t.Fatalf(`UserByName("alice") after re-enabling = %+v, %v; want enabled`, got, err)
	}
}

func updateUserMissing(t *testing.T, s store.Store) {
	wantErr(t, `UpdateUser("nobody")`, s.UpdateUser(t.Context(), user("nobody", "x")), store.ErrNotFound)
}

func listUsersOrdered(t *testing.T, s store.Store) {
	ctx := t.Context()
	us, err := s.ListUsers(ctx)
	must(t, err)
	if len(us) != 0 {
		t.Fatalf("ListUsers on an empty store = %v, want none", us)
	}
	for i, name := range []string{"carol", "alice", "dave", "bob"} {
		must(t, s.CreateUser(ctx, user(fmt.Sprint("u", i), name)))
	}
	us, err = s.ListUsers(ctx)
	must(t, err)
	var names []string
	for _, u := range us {
		names = append(names, u.Username)
	}
	if want := []string{"alice", "bob", "carol", "dave"}; !slices.Equal(names, want) {
		t.Fatalf("ListUsers = %v, want %v", names, want)
	}
	if d := diffUser(us[0], user("u1", "alice")); d != "" {
		t.Fatalf("ListUsers()[0]: %s", d)
	}
}

// sessionRoundTrip writes every field, with sub-millisecond times, and reads it
// back; a second session leaves the optional fields zero and they stay zero.
func sessionRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	full := store.Session{
		ID:            "s-full",
		UserID:        "u1",
		Generation:    7,
		RotatedAt:     base.Add(3*time.Minute + 999_999*time.Nanosecond),
		CreatedAt:     base.Add(1),
		LastUsedAt:    base.Add(4 * time.Minute),
		IdleExpiresAt: base.Add(time.Hour + 500*time.Microsecond),
		ExpiresAt:     base.Add(90 * 24 * time.Hour),
		RevokedAt:     base.Add(5 * time.Minute),
		RevokeReason:  "logout",
		UserAgent:     "curl/8.5.0 ünïcode ✓",
		IP:            "2001:db8::1",
		ClientID:      "client-a",
	}
	sparse := store.Session{ID: "s-sparse", UserID: "u1", CreatedAt: base, IdleExpiresAt: base.Add(time.Hour), ExpiresAt: base.Add(time.Hour)}
	for _, x := range []store.Session{full, sparse} {
		must(t, s.CreateSession(ctx, x))
	}
	for _, x := range []store.Session{full, sparse} {
		got, err := s.Session(ctx, x.ID)
		must(t, err)
		wantSession(t, fmt.Sprintf("Session(%q)", x.ID), got, x)
		if got.Revoked() != x.Revoked() {
			t.Fatalf("Session(%q).Revoked() = %v, want %v", x.ID, got.Revoked(), x.Revoked())
		}
	}
}

func createSessionDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := session("s1", "u1", base)
	must(t, s.CreateSession(ctx, first))
	wantErr(t, `CreateSession("s1") again`, s.CreateSession(ctx, session("s1", "u2", base.Add(time.Minute))), store.ErrExists)
	got, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, `Session("s1") after a refused create`, got, first)
}

func sessionMissing(t *testing.T, s store.Store) {
	_, err := s.Session(t.Context(), "nope")
	wantErr(t, `Session("nope")`, err, store.ErrNotFound)
}

func rotateAdvancesOneGeneration(t *testing.T, s store.Store) {
	ctx := t.Context()
	x := session("s1", "u1", base)
	x.ClientID = "client-a"
	must(t, s.CreateSession(ctx, x))
	must(t, s.CreateSession(ctx, session("s2", "u1", base)))
	for gen := range uint64(3) {
		at := base.Add(time.Duration(gen+1) * time.Minute)
		r := store.Rotation{From: gen, At: at, IdleExpiresAt: at.Add(time.Hour), ClientID: "client-a"}
		got, err := s.RotateSession(ctx, "s1", r)
		must(t, err)
		x.Generation, x.RotatedAt, x.LastUsedAt, x.IdleExpiresAt = gen+1, at, at, r.IdleExpiresAt
		wantSession(t, fmt.Sprintf("RotateSession(From %d)", gen), got, x)
		stored, err := s.Session(ctx, "s1")
		must(t, err)
		wantSession(t, fmt.Sprintf("Session after RotateSession(From %d)", gen), stored, x)
	}
	other, err := s.Session(ctx, "s2")
	must(t, err)
	wantSession(t, `Session("s2") after rotating s1`, other, session("s2", "u1", base))
}

// rotateStaleConflicts: a swap from any generation but the current one changes
// nothing, whether the caller is behind or ahead.
func rotateStaleConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	at := base.Add(time.Minute)
	want, err := s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: at, IdleExpiresAt: at.Add(time.Hour)})
	must(t, err)
	later := base.Add(time.Hour)
	for _, from := range []uint64{0, 2, 5} {
		_, err := s.RotateSession(ctx, "s1", store.Rotation{From: from, At: later, IdleExpiresAt: later.Add(time.Hour)})
		wantErr(t, fmt.Sprintf("RotateSession(From %d) at generation 1", from), err, store.ErrConflict)
	}
	got, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, "Session after refused swaps", got, want)
}

func rotateRevokedConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	must(t, s.RevokeSession(ctx, "s1", "logout", store.Revocation{At: base.Add(time.Second), Until: base.Add(time.Hour)}))
	want, err := s.Session(ctx, "s1")
	must(t, err)
	at := base.Add(time.Minute)
	_, err = s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: at, IdleExpiresAt: at.Add(time.Hour)})
	wantErr(t, "RotateSession(revoked session)", err, store.ErrConflict)
	got, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, "Session after refused swap of a revoked session", got, want)

	// Revoked at a later generation, too.
	must(t, s.CreateSession(ctx, session("s2", "u1", base)))
	_, err = s.RotateSession(ctx, "s2", store.Rotation{From: 0, At: at, IdleExpiresAt: at.Add(time.Hour)})
	must(t, err)
	must(t, s.RevokeSession(ctx, "s2", "reused", store.Revocation{At: at, Until: at.Add(time.Hour)}))
	_, err = s.RotateSession(ctx, "s2", store.Rotation{From: 1, At: at, IdleExpiresAt: at.Add(time.Hour)})
	wantErr(t, "RotateSession(From 1) of a session revoked at generation 1", err, store.ErrConflict)
}

func rotateMissingNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.RotateSession(ctx, "nope", store.Rotation{From: 0, At: base, IdleExpiresAt: base.Add(time.Hour)})
	wantErr(t, `RotateSession("nope")`, err, store.ErrNotFound)
	if _, err := s.Session(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf(`Session("nope") after a refused rotation = %v, want %v`, err, store.ErrNotFound)
	}
}

// rotateChecksClientAndExpiry: the swap refuses another client and a session
// that is idle-expired or expired at r.At; it caps the new idle expiry at the
// session's end, and keeps it when r.IdleExpiresAt is zero.
func rotateChecksClientAndExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	x := session("s1", "u1", base) // idle until base+1h, ends at base+24h
	x.ClientID = "app"
	must(t, s.CreateSession(ctx, x))
	at := base.Add(time.Minute)
	for name, r := range map[string]store.Rotation{
		"another client":                           {From: 0, At: at, ClientID: "other", IdleExpiresAt: at.Add(time.Hour)},
		"no client":                                {From: 0, At: at, IdleExpiresAt: at.Add(time.Hour)},
		"at the idle expiry":                       {From: 0, At: x.IdleExpiresAt, ClientID: "app", IdleExpiresAt: x.IdleExpiresAt.Add(time.Hour)},
		"after the idle expiry":                    {From: 0, At: x.IdleExpiresAt.Add(time.Second), ClientID: "app", IdleExpiresAt: x.IdleExpiresAt.Add(time.Hour)},
		"after the session ends":                   {From: 0, At: x.ExpiresAt.Add(time.Second), ClientID: "app"},
		"of an earlier registration of the client": {From: 0, At: at, ClientID: "app", CreatedFrom: x.CreatedAt.Add(time.Millisecond)},
	} {
		_, err := s.RotateSession(ctx, "s1", r)
		wantErr(t, "RotateSession("+name+")", err, store.ErrConflict)
	}
	got, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, "Session after refused swaps", got, x)

	// The absolute end counts on its own, even under a later idle expiry.
	y := session("s2", "u1", base)
	y.IdleExpiresAt = y.ExpiresAt.Add(time.Hour)
	must(t, s.CreateSession(ctx, y))
	_, err = s.RotateSession(ctx, "s2", store.Rotation{From: 0, At: y.ExpiresAt.Add(time.Minute)})
	wantErr(t, "RotateSession(past the end, before the idle expiry)", err, store.ErrConflict)

	// A sliding expiry beyond the session's end is capped at the end; a
	// registration made when the session was created is the same one.
	got, err = s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: at, ClientID: "app", IdleExpiresAt: x.ExpiresAt.Add(time.Hour), CreatedFrom: x.CreatedAt})
	must(t, err)
	x.Generation, x.RotatedAt, x.LastUsedAt, x.IdleExpiresAt = 1, at, at, x.ExpiresAt
	wantSession(t, "RotateSession(past the end)", got, x)
	// A zero IdleExpiresAt keeps the current one (locked expiry).
	later := at.Add(time.Minute)
	got, err = s.RotateSession(ctx, "s1", store.Rotation{From: 1, At: later, ClientID: "app"})
	must(t, err)
	x.Generation, x.RotatedAt, x.LastUsedAt = 2, later, later
	wantSession(t, "RotateSession(locked)", got, x)
	stored, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, "Session after a locked rotation", stored, x)
}

// rotateContention: many goroutines swap the same generation at once; exactly
// one wins, every other one gets ErrConflict, and the session advances exactly
// one generation. Several rounds, so a lucky interleaving cannot pass alone.
func rotateContention(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers, rounds = 64, 5
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	for round := range uint64(rounds) {
		at := base.Add(time.Duration(round+1) * time.Minute)
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]error, workers)
		)
		for w := range workers {
			wg.Go(func() {
				<-start
				_, results[w] = s.RotateSession(ctx, "s1", store.Rotation{From: round, At: at, IdleExpiresAt: at.Add(time.Hour)})
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for w, err := range results {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: worker %d: RotateSession(From %d) = %v, want nil or %v", round, w, round, err, store.ErrConflict)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d of %d concurrent RotateSession(From %d) succeeded, want exactly 1", round, wins, workers, round)
		}
		got, err := s.Session(ctx, "s1")
		must(t, err)
		if got.Generation != round+1 || !sameTime(got.RotatedAt, at) {
			t.Fatalf("round %d: session at generation %d rotated at %v, want generation %d at %v", round, got.Generation, got.RotatedAt, round+1, at)
		}
	}
}

// userSessionsNewestFirst: every stored session of the user, live, expired and
// revoked alike, newest first, and nobody else's.
func userSessionsNewestFirst(t *testing.T, s store.Store) {
	ctx := t.Context()
	none, err := s.UserSessions(ctx, "u1")
	must(t, err)
	if len(none) != 0 {
		t.Fatalf(`UserSessions("u1") on an empty store = %v, want none`, none)
	}
	// Created out of order: s2 is the newest, s0 expired long ago.
	for _, i := range []int{1, 0, 3, 2} {
		must(t, s.CreateSession(ctx, session(fmt.Sprint("s", i), "u1", base.Add(time.Duration(i)*time.Hour))))
	}
	must(t, s.CreateSession(ctx, session("other", "u2", base.Add(time.Hour))))
	must(t, s.RevokeSession(ctx, "s1", "logout", store.Revocation{At: base.Add(2 * time.Hour), Until: base.Add(3 * time.Hour)}))
	ss, err := s.UserSessions(ctx, "u1")
	must(t, err)
	var ids []string
	for _, x := range ss {
		ids = append(ids, x.ID)
	}
	if want := []string{"s3", "s2", "s1", "s0"}; !slices.Equal(ids, want) {
		t.Fatalf(`UserSessions("u1") = %v, want %v`, ids, want)
	}
	wantSession(t, `UserSessions("u1")[0]`, ss[0], session("s3", "u1", base.Add(3*time.Hour)))
	if !ss[2].Revoked() || ss[2].RevokeReason != "logout" {
		t.Fatalf(`UserSessions("u1")[2] = %+v, want s1 revoked for "logout"`, ss[2])
	}
}

// revokeSessionIdempotent: the first revocation wins; a second one returns nil
// and changes nothing, in the session or in the feed.
func revokeSessionIdempotent(t *testing.T, s store.Store) {
	ctx := t.Context()
	x := session("s1", "u1", base)
	must(t, s.CreateSession(ctx, x))
	must(t, s.CreateSession(ctx, session("s2", "u1", base)))
	first := store.Revocation{At: base.Add(time.Second), Until: base.Add(time.Hour)}
	must(t, s.RevokeSession(ctx, "s1", "reused", first))
	must(t, s.RevokeSession(ctx, "s1", "logout", store.Revocation{At: base.Add(time.Minute), Until: base.Add(2 * time.Hour)}))
	x.RevokedAt, x.RevokeReason = first.At, "reused"
	got, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, `Session("s1") after two revocations`, got, x)
	if !got.Revoked() {
		t.Fatalf(`Session("s1").Revoked() = false after RevokeSession`)
	}
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(feed) != 1 {
		t.Fatalf("feed after revoking s1 twice has %d entries, want 1: %+v", len(feed), feed)
	}
	if e := feed[0]; e.SessionID != "s1" || e.TokenID != "" || !sameTime(e.At, first.At) || !sameTime(e.Until, first.Until) || e.Seq <= 0 {
		t.Fatalf("feed entry = %+v, want the first revocation of s1 (%+v) with a positive Seq", e, first)
	}
	other, err := s.Session(ctx, "s2")
	must(t, err)
	if other.Revoked() {
		t.Fatalf(`Session("s2") revoked by revoking s1: %+v`, other)
	}
}

func revokeMissingNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	err := s.RevokeSession(ctx, "nope", "logout", store.Revocation{At: base, Until: base.Add(time.Hour)})
	wantErr(t, `RevokeSession("nope")`, err, store.ErrNotFound)
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(feed) != 0 {
		t.Fatalf("feed after revoking a missing session = %+v, want empty", feed)
	}
}

// revocationFeedOrdered: entries come in ascending, strictly increasing Seq;
// after and limit page through them; an entry whose Until is not after now is
// not returned.
func revocationFeedOrdered(t *testing.T, s store.Store) {
	ctx := t.Context()
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(feed) != 0 {
		t.Fatalf("feed of an empty store = %+v, want empty", feed)
	}
	now := base.Add(time.Hour)
	var want []string // "s:<id>" or "t:<jti>", in append order
	for i := range 5 {
		id, jti := fmt.Sprint("s", i), fmt.Sprint("jti", i)
		must(t, s.CreateSession(ctx, session(id, "u1", base)))
		must(t, s.RevokeSession(ctx, id, "logout", store.Revocation{At: base, Until: now.Add(time.Duration(i+1) * time.Minute)}))
		must(t, s.RevokeToken(ctx, store.Revocation{TokenID: jti, At: base, Until: now.Add(time.Millisecond)}))
		want = append(want, "s:"+id, "t:"+jti)
	}
	// Entries no longer in force at now: Until before now, and Until exactly now.
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "past", At: base, Until: now.Add(-time.Minute)}))
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "boundary", At: base, Until: now}))
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "last", At: base, Until: now.Add(time.Hour)}))
	want = append(want, "t:last")

	all, err := s.RevocationsAfter(ctx, 0, now, 100)
	must(t, err)
	var got []string
	for i, e := range all {
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Fatalf("feed Seq not strictly increasing: %d then %d", all[i-1].Seq, e.Seq)
		}
		if (e.SessionID == "") == (e.TokenID == "") {
			t.Fatalf("feed entry %+v: want exactly one of SessionID and TokenID", e)
		}
		if e.SessionID != "" {
			got = append(got, "s:"+e.SessionID)
		} else {
			got = append(got, "t:"+e.TokenID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("RevocationsAfter(0, now) = %v, want %v", got, want)
	}

	page, err := s.RevocationsAfter(ctx, all[3].Seq, now, 4)
	must(t, err)
	if len(page) != 4 || page[0].Seq != all[4].Seq || page[3].Seq != all[7].Seq {
		t.Fatalf("RevocationsAfter(%d, now, 4) = %+v, want entries 4 to 7 of %+v", all[3].Seq, page, all)
	}
	tail, err := s.RevocationsAfter(ctx, all[7].Seq, now, 100)
	must(t, err)
	if len(tail) != 3 || tail[2].TokenID != "last" {
		t.Fatalf("RevocationsAfter(%d, now, 100) = %+v, want the last 3 entries", all[7].Seq, tail)
	}
	end, err := s.RevocationsAfter(ctx, all[len(all)-1].Seq, now, 100)
	must(t, err)
	if len(end) != 0 {
		t.Fatalf("RevocationsAfter(last Seq) = %+v, want empty", end)
	}
	// A minute later the token entries (Until now+1ms) and s0 (now+1m) are over.
	later, err := s.RevocationsAfter(ctx, 0, now.Add(time.Minute), 100)
	must(t, err)
	got = got[:0]
	for _, e := range later {
		got = append(got, e.SessionID+e.TokenID)
	}
	if want := []string{"s1", "s2", "s3", "s4", "last"}; !slices.Equal(got, want) {
		t.Fatalf("RevocationsAfter(0, now+1m) = %v, want %v", got, want)
	}
}

func revokeTokenFeed(t *testing.T, s store.Store) {
	ctx := t.Context()
	rev := store.Revocation{TokenID: "jti-1", At: base.Add(time.Second), Until: base.Add(15 * time.Minute)}
	must(t, s.RevokeToken(ctx, rev))
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "jti-2", At: base.Add(2 * time.Second), Until: base.Add(15 * time.Minute)}))
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(feed) != 2 {
		t.Fatalf("feed = %+v, want two token entries", feed)
	}
	if e := feed[0]; e.TokenID != "jti-1" || e.SessionID != "" || !sameTime(e.At, rev.At) || !sameTime(e.Until, rev.Until) || e.Seq <= 0 {
		t.Fatalf("feed[0] = %+v, want %+v with a positive Seq", e, rev)
	}
	if feed[1].TokenID != "jti-2" || feed[1].Seq <= feed[0].Seq {
		t.Fatalf("feed[1] = %+v, want jti-2 after Seq %d", feed[1], feed[0].Seq)
	}
}

func keysPutListDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	ks, err := s.ListKeys(ctx)
	must(t, err)
	if len(ks) != 0 {
		t.Fatalf("ListKeys on an empty store = %+v, want none", ks)
	}
	k1 := store.Key{ID: "k1", Algorithm: "EdDSA", Sealed: []byte{0, 1, 2, 0xff}, CreatedAt: base}
	k2 := store.Key{ID: "k2", Algorithm: "ES256", Sealed: []byte("sealed-k2"), CreatedAt: base.Add(time.Second)}
	k0 := store.Key{ID: "k0", Algorithm: "RS256", Sealed: []byte("sealed-k0"), CreatedAt: base.Add(2 * time.Second)}
	for _, k := range []store.Key{k2, k1, k0} {
		must(t, s.PutKey(ctx, k))
	}
	// Replacing k1: it keeps its place, every field is replaced.
	k1.Sealed = []byte("resealed")
	k1.ActivatedAt = base.Add(time.Minute)
	k1.RetiredAt = base.Add(time.Hour)
	must(t, s.PutKey(ctx, k1))
	ks, err = s.ListKeys(ctx)
	must(t, err)
	wantKeys := func(call string, got []store.Key, want ...store.Key) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s = %+v, want %+v", call, got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.ID != w.ID || g.Algorithm != w.Algorithm || string(g.Sealed) != string(w.Sealed) ||
				!sameTime(g.CreatedAt, w.CreatedAt) || !sameTime(g.ActivatedAt, w.ActivatedAt) || !sameTime(g.RetiredAt, w.RetiredAt) {
				t.Fatalf("%s[%d] = %+v, want %+v", call, i, g, w)
			}
		}
	}
	wantKeys("ListKeys", ks, k1, k2, k0)
	must(t, s.DeleteKey(ctx, "k1"))
	must(t, s.DeleteKey(ctx, "k1"))
	must(t, s.DeleteKey(ctx, "never-stored"))
	ks, err = s.ListKeys(ctx)
	must(t, err)
	wantKeys("ListKeys after DeleteKey(k1)", ks, k2, k0)
}

// purgeExpiredAndRevoked: Purge deletes the sessions that expired or were
// revoked before now-retain and the feed entries whose Until is before now,
// keeps everything else, and counts the sessions it deleted.
func purgeExpiredAndRevoked(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base.Add(100 * time.Hour)
	const retain = 24 * time.Hour
	cut := now.Add(-retain)
	expiring := func(id string, idle, abs time.Time) store.Session {
		x := session(id, "u1", base)
		x.IdleExpiresAt, x.ExpiresAt = idle, abs
		return x
	}
	keep := []store.Session{
		expiring("live", now.Add(time.Hour), now.Add(48*time.Hour)),
		expiring("idle-recently", now.Add(-time.Hour), now.Add(48*time.Hour)),
		expiring("over-recently", now.Add(-2*time.Hour), now.Add(-time.Hour)),
		expiring("idle-at-cut", cut, now.Add(48*time.Hour)),
		expiring("revoked-recently", now.Add(time.Hour), now.Add(48*time.Hour)),
	}
	drop := []store.Session{
		expiring("idle-long-ago", cut.Add(-time.Millisecond), now.Add(48*time.Hour)),
		expiring("over-long-ago", cut.Add(-2*time.Hour), cut.Add(-time.Hour)),
		expiring("revoked-long-ago", now.Add(time.Hour), now.Add(48*time.Hour)),
	}
	for _, x := range slices.Concat(keep, drop) {
		must(t, s.CreateSession(ctx, x))
	}
	must(t, s.RevokeSession(ctx, "revoked-recently", "logout", store.Revocation{At: cut.Add(time.Minute), Until: now.Add(time.Minute)}))
	must(t, s.RevokeSession(ctx, "revoked-long-ago", "logout", store.Revocation{At: cut.Add(-time.Minute), Until: cut}))
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "over", At: cut, Until: now.Add(-time.Millisecond)}))
	must(t, s.RevokeToken(ctx, store.Revocation{TokenID: "in-force", At: now, Until: now.Add(time.Hour)}))

	n, err := s.Purge(ctx, now, retain)
	must(t, err)
	if n != len(drop) {
		t.Errorf("Purge(now, %v) = %d, want %d", retain, n, len(drop))
	}
	for _, x := range keep {
		if _, err := s.Session(ctx, x.ID); err != nil {
			t.Errorf("Session(%q) after Purge = %v, want it kept", x.ID, err)
		}
	}
	for _, x := range drop {
		if _, err := s.Session(ctx, x.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Session(%q) after Purge = %v, want %v", x.ID, err, store.ErrNotFound)
		}
	}
	// Read the feed as of before the purge, so only a deletion hides an entry.
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	var got []string
	for _, e := range feed {
		got = append(got, e.SessionID+e.TokenID)
	}
	if want := []string{"revoked-recently", "in-force"}; !slices.Equal(got, want) {
		t.Errorf("feed after Purge = %v, want %v", got, want)
	}
	n, err = s.Purge(ctx, now, retain)
	if err != nil || n != 0 {
		t.Errorf("second Purge(now, %v) = %d, %v; want 0, nil", retain, n, err)
	}
}

// purgeMany: Purge deletes more sessions and feed entries than a typical
// batch (1000), interleaved with sessions it must keep.
func purgeMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	const total, tokens = 1300, 1100
	now := base.Add(100 * time.Hour)
	expired := 0
	for i := range total {
		x := session(fmt.Sprintf("s%04d", i), fmt.Sprint("u", i%7), base)
		if i%5 == 0 { // one in five lives on
			x.IdleExpiresAt, x.ExpiresAt = now.Add(time.Hour), now.Add(time.Hour)
		} else {
			expired++
		}
		must(t, s.CreateSession(ctx, x))
	}
	for i := range tokens {
		must(t, s.RevokeToken(ctx, store.Revocation{TokenID: fmt.Sprint("jti", i), At: base, Until: base.Add(time.Hour)}))
	}
	n, err := s.Purge(ctx, now, 0)
	must(t, err)
	if n != expired {
		t.Fatalf("Purge = %d, want %d", n, expired)
	}
	kept := 0
	for u := range 7 {
		ss, err := s.UserSessions(ctx, fmt.Sprint("u", u))
		must(t, err)
		kept += len(ss)
	}
	if kept != total-expired {
		t.Fatalf("%d sessions left after Purge, want %d", kept, total-expired)
	}
	feed, err := s.RevocationsAfter(ctx, 0, base, tokens)
	must(t, err)
	if len(feed) != 0 {
		t.Fatalf("%d feed entries left after Purge, want 0", len(feed))
	}
}

// canceledContext: every method passes its context on to the backend, so a
// canceled context fails the call with an error that wraps context.Canceled
// (and never with a sentinel that would be read as an answer).
func canceledContext(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	rev := store.Revocation{At: base, Until: base.Add(time.Hour)}
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"CreateUser", func(c context.Context) error { return s.CreateUser(c, user("u2", "bob")) }},
		{"UserByName", func(c context.Context) error { _, err := s.UserByName(c, "alice"); return err }},
		{"UserByID", func(c context.Context) error { _, err := s.UserByID(c, "u1"); return err }},
		{"UpdateUser", func(c context.Context) error { return s.UpdateUser(c, user("u1", "alice")) }},
		{"ListUsers", func(c context.Context) error { _, err := s.ListUsers(c); return err }},
		{"CreateSession", func(c context.Context) error { return s.CreateSession(c, session("s2", "u1", base)) }},
		{"Session", func(c context.Context) error { _, err := s.Session(c, "s1"); return err }},
		{"RotateSession", func(c context.Context) error {
			_, err := s.RotateSession(c, "s1", store.Rotation{From: 0, At: base, IdleExpiresAt: base.Add(time.Hour)})
			return err
		}},
		{"UserSessions", func(c context.Context) error { _, err := s.UserSessions(c, "u1"); return err }},
		{"RevokeSession", func(c context.Context) error { return s.RevokeSession(c, "s1", "logout", rev) }},
		{"RevokeToken", func(c context.Context) error {
			return s.RevokeToken(c, store.Revocation{TokenID: "jti", At: base, Until: base.Add(time.Hour)})
		}},
		{"RevocationsAfter", func(c context.Context) error { _, err := s.RevocationsAfter(c, 0, base, 10); return err }},
		{"PutKey", func(c context.Context) error {
			return s.PutKey(c, store.Key{ID: "k", Algorithm: "EdDSA", Sealed: []byte{1}, CreatedAt: base})
		}},
		{"ListKeys", func(c context.Context) error { _, err := s.ListKeys(c); return err }},
		{"DeleteKey", func(c context.Context) error { return s.DeleteKey(c, "k") }},
		{"Purge", func(c context.Context) error { _, err := s.Purge(c, base.Add(100*time.Hour), 0); return err }},
		{"Ping", func(c context.Context) error { return s.Ping(c) }},
	}
	for _, c := range calls {
		if err := c.call(canceled); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(canceled context) = %v, want an error wrapping %v", c.name, err, context.Canceled)
		}
	}
	// Nothing happened.
	got, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, `Session("s1") after calls with a canceled context`, got, session("s1", "u1", base))
	if _, err := s.UserByID(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf(`UserByID("u2") after CreateUser(canceled context) = %v, want %v`, err, store.ErrNotFound)
	}
}

func ping(t *testing.T, s store.Store) {
	must(t, s.Ping(t.Context()))
}

// clientsCreateListDelete covers the whole client record: a round trip of every
// field, a taken ID, exact (case-sensitive) lookup, ID order, and deletion.
func clientsCreateListDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	cs, err := s.ListClients(ctx)
	must(t, err)
	if len(cs) != 0 {
		t.Fatalf("ListClients on an empty store = %v, want none", cs)
	}
	_, err = s.Client(ctx, "web")
	wantErr(t, "Client(missing)", err, store.ErrNotFound)

	conf := store.Client{ID: "web", SecretHash: "sha256:abc", Name: "the web app", CreatedAt: base.Add(1500 * time.Microsecond)}
	must(t, s.CreateClient(ctx, conf))
	for _, id := range []string{"mobile", "Web", "a{b}:c"} {
		must(t, s.CreateClient(ctx, store.Client{ID: id, CreatedAt: base}))
	}
	wantErr(t, "CreateClient(taken id)", s.CreateClient(ctx, store.Client{ID: "web", CreatedAt: base}), store.ErrExists)

	got, err := s.Client(ctx, "web")
	must(t, err)
	if got.ID != conf.ID || got.SecretHash != conf.SecretHash || got.Name != conf.Name || !sameTime(got.CreatedAt, conf.CreatedAt) || got.Public() {
		t.Fatalf("Client(web) = %+v, want %+v", got, conf)
	}
	pub, err := s.Client(ctx, "Web")
	must(t, err)
	if !pub.Public() || pub.Name != "" {
		t.Fatalf("Client(Web) = %+v, want the public client with no name", pub)
	}

	cs, err = s.ListClients(ctx)
	must(t, err)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if want := []string{"Web", "a{b}:c", "mobile", "web"}; !slices.Equal(ids, want) {
		t.Fatalf("ListClients = %v, want %v (byte order)", ids, want)
	}

	must(t, s.DeleteClient(ctx, "web"))
	_, err = s.Client(ctx, "web")
	wantErr(t, "Client(deleted)", err, store.ErrNotFound)
	wantErr(t, "DeleteClient(deleted)", s.DeleteClient(ctx, "web"), store.ErrNotFound)
	cs, err = s.ListClients(ctx)
	must(t, err)
	if len(cs) != 3 {
		t.Fatalf("ListClients after a delete = %v, want 3 clients", cs)
	}
	// A deleted ID can be registered again.
	must(t, s.CreateClient(ctx, store.Client{ID: "web", CreatedAt: base}))
}

// Parallel32 runs body on 32 goroutines, as 32 HTTP clients would, whatever
// GOMAXPROCS is.
func Parallel32(b *testing.B, body func(*testing.PB)) {
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(body)
}

// BenchRotateSession measures the compare-and-swap of a refresh on s: 32
// goroutines, each rotating its own session, so every swap succeeds and the
// figure is the cost of a successful rotation under contention. A backend's
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

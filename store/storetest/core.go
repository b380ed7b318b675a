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
		// Opaque: any bytes the caller chose, not read as anything.
		ClientRegistration: "client-a@4102444800123 ✓",
		JKT:                "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
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

// createSessionOAuthNeedsRegistration: an OAuth session (ClientID set) with
// no ClientRegistration is refused, not stored: a rotation for "" would
// refresh it as a first-party session.
func createSessionOAuthNeedsRegistration(t *testing.T, s store.Store) {
	ctx := t.Context()
	x := session("s1", "u1", base)
	x.ClientID = "app"
	err := s.CreateSession(ctx, x)
	if err == nil || errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateSession(an OAuth session without a registration) = %v, want an error", err)
	}
	_, err = s.Session(ctx, "s1")
	wantErr(t, `Session("s1") after a refused create`, err, store.ErrNotFound)
}

func sessionMissing(t *testing.T, s store.Store) {
	_, err := s.Session(t.Context(), "nope")
	wantErr(t, `Session("nope")`, err, store.ErrNotFound)
}

func rotateAdvancesOneGeneration(t *testing.T, s store.Store) {
	ctx := t.Context()
	x := session("s1", "u1", base)
	x.ClientID, x.ClientRegistration = "client-a", "reg-1"
	x.JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" // a binding outlives every rotation
	must(t, s.CreateSession(ctx, x))
	must(t, s.CreateSession(ctx, session("s2", "u1", base)))
	for gen := range uint64(3) {
		at := base.Add(time.Duration(gen+1) * time.Minute)
		r := store.Rotation{From: gen, At: at, IdleExpiresAt: at.Add(time.Hour), ClientRegistration: "reg-1", JKT: x.JKT}
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
	must(t, s.RevokeSession(ctx, store.Revocation{SessionID: "s1", At: base.Add(time.Second), Until: base.Add(time.Hour)}, "logout"))
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
	must(t, s.RevokeSession(ctx, store.Revocation{SessionID: "s2", At: at, Until: at.Add(time.Hour)}, "reused"))
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

// rotateChecksRegistrationAndExpiry: the swap refuses another registration
// (even one naming the session's client ID) and a session that is
// idle-expired or expired at r.At; it caps the new idle expiry at the
// session's end, and keeps it when r.IdleExpiresAt is zero.
func rotateChecksRegistrationAndExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	x := session("s1", "u1", base) // idle until base+1h, ends at base+24h
	x.ClientID, x.ClientRegistration = "app", "app@1"
	must(t, s.CreateSession(ctx, x))
	at := base.Add(time.Minute)
	for name, r := range map[string]store.Rotation{
		"another registration":         {From: 0, At: at, ClientRegistration: "app@2", IdleExpiresAt: at.Add(time.Hour)},
		"no registration":              {From: 0, At: at, IdleExpiresAt: at.Add(time.Hour)},
		"the client ID":                {From: 0, At: at, ClientRegistration: "app", IdleExpiresAt: at.Add(time.Hour)},
		"a prefix of the registration": {From: 0, At: at, ClientRegistration: "app@", IdleExpiresAt: at.Add(time.Hour)},
		"at the idle expiry":           {From: 0, At: x.IdleExpiresAt, ClientRegistration: "app@1", IdleExpiresAt: x.IdleExpiresAt.Add(time.Hour)},
		"after the idle expiry":        {From: 0, At: x.IdleExpiresAt.Add(time.Second), ClientRegistration: "app@1", IdleExpiresAt: x.IdleExpiresAt.Add(time.Hour)},
		"after the session ends":       {From: 0, At: x.ExpiresAt.Add(time.Second), ClientRegistration: "app@1"},
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

	// A session bound to a DPoP key rotates only with that key's thumbprint;
	// an unbound one only without one.
	bound := session("s3", "u1", base)
	bound.JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	must(t, s.CreateSession(ctx, bound))
	for name, jkt := range map[string]string{"no key": "", "another key": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "a prefix": bound.JKT[:20]} {
		_, err = s.RotateSession(ctx, "s3", store.Rotation{From: 0, At: at, JKT: jkt})
		wantErr(t, "RotateSession(a bound session, "+name+")", err, store.ErrConflict)
	}
	_, err = s.RotateSession(ctx, "s2", store.Rotation{From: 0, At: at, JKT: bound.JKT})
	wantErr(t, "RotateSession(an unbound session, with a key)", err, store.ErrConflict)
	got, err = s.RotateSession(ctx, "s3", store.Rotation{From: 0, At: at, JKT: bound.JKT})
	must(t, err)
	if got.Generation != 1 || got.JKT != bound.JKT {
		t.Fatalf("RotateSession(a bound session, its key) = generation %d, key %q", got.Generation, got.JKT)
	}

	// A sliding expiry beyond the session's end is capped at the end.
	got, err = s.RotateSession(ctx, "s1", store.Rotation{From: 0, At: at, ClientRegistration: "app@1", IdleExpiresAt: x.ExpiresAt.Add(time.Hour)})
	must(t, err)
	x.Generation, x.RotatedAt, x.LastUsedAt, x.IdleExpiresAt = 1, at, at, x.ExpiresAt
	wantSession(t, "RotateSession(past the end)", got, x)
	// A zero IdleExpiresAt keeps the current one (locked expiry).
	later := at.Add(time.Minute)
	got, err = s.RotateSession(ctx, "s1", store.Rotation{From: 1, At: later, ClientRegistration: "app@1"})
	must(t, err)
	x.Generation, x.RotatedAt, x.LastUsedAt = 2, later, later
	wantSession(t, "RotateSession(locked)", got, x)
	stored, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, "Session after a locked rotation", stored, x)
}

// rotateOtherRegistrationConflicts: registrations are compared for equality
// and nothing else. A session of registration "r1" does not rotate for "r2"
// nor as a first-party session (""), and a first-party session does not
// rotate for "r1"; each still rotates for its own.
func rotateOtherRegistrationConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	oauth := session("oauth", "u1", base)
	oauth.ClientID, oauth.ClientRegistration = "app", "r1"
	first := session("first", "u1", base)
	must(t, s.CreateSession(ctx, oauth))
	must(t, s.CreateSession(ctx, first))
	at := base.Add(time.Minute)
	for _, tc := range []struct{ id, reg string }{{"oauth", "r2"}, {"oauth", ""}, {"first", "r1"}} {
		_, err := s.RotateSession(ctx, tc.id, store.Rotation{From: 0, At: at, ClientRegistration: tc.reg, IdleExpiresAt: at.Add(time.Hour)})
		wantErr(t, fmt.Sprintf("RotateSession(%q, registration %q)", tc.id, tc.reg), err, store.ErrConflict)
	}
	for _, x := range []store.Session{oauth, first} {
		got, err := s.Session(ctx, x.ID)
		must(t, err)
		wantSession(t, fmt.Sprintf("Session(%q) after refused swaps", x.ID), got, x)
		r := store.Rotation{From: 0, At: at, ClientRegistration: x.ClientRegistration, IdleExpiresAt: at.Add(time.Hour)}
		got, err = s.RotateSession(ctx, x.ID, r)
		must(t, err)
		x.Generation, x.RotatedAt, x.LastUsedAt, x.IdleExpiresAt = 1, at, at, r.IdleExpiresAt
		wantSession(t, fmt.Sprintf("RotateSession(%q, its own registration %q)", x.ID, x.ClientRegistration), got, x)
	}
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
		won := race(t, workers, store.ErrConflict,
			func(w int) string { return fmt.Sprintf("round %d: worker %d: RotateSession(From %d)", round, w, round) },
			func(int) error {
				_, err := s.RotateSession(ctx, "s1", store.Rotation{From: round, At: at, IdleExpiresAt: at.Add(time.Hour)})
				return err
			})
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d concurrent RotateSession(From %d) succeeded, want exactly 1", round, len(won), workers, round)
		}
		got, err := s.Session(ctx, "s1")
		must(t, err)
		if got.Generation != round+1 || !sameTime(got.RotatedAt, at) {
			t.Fatalf("round %d: session at generation %d rotated at %v, want generation %d at %v", round, got.Generation, got.RotatedAt, round+1, at)
		}
	}
}

// rotateManyAtOnce: rotations of many sessions arrive together, as a
// batching backend writes them (group commit): for each session, two callers
// race on its current generation, one presents another DPoP key, one another
// client registration, and calls for a missing session come with them. Each
// call gets its own answer — exactly one winner per session, whose session
// comes back at the next generation; ErrConflict for the loser and the wrong
// key or registration; ErrNotFound for the missing one — and each session
// advances exactly one generation per round. Bound and unbound, first-party
// and OAuth sessions are mixed in every round.
func rotateManyAtOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	const sessions, rounds = 24, 3
	const otherKey = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	all := make([]store.Session, sessions)
	for i := range all {
		x := session(fmt.Sprintf("many-%02d", i), "u1", base)
		x.ExpiresAt = base.Add(24 * time.Hour)
		if i%2 == 1 {
			x.JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
		}
		if i%3 == 1 {
			x.ClientID, x.ClientRegistration = "client-a", "reg-1"
		}
		must(t, s.CreateSession(ctx, x))
		all[i] = x
	}
	type attempt struct {
		id   string
		r    store.Rotation
		want error // nil: one of the two "race" attempts of the session wins
		race bool
	}
	for round := range uint64(rounds) {
		at := base.Add(time.Duration(round+1) * time.Minute)
		var attempts []attempt
		for _, x := range all {
			ok := store.Rotation{From: round, At: at, IdleExpiresAt: at.Add(time.Hour), ClientRegistration: x.ClientRegistration, JKT: x.JKT}
			wrongKey, wrongReg := ok, ok
			wrongKey.JKT = otherKey
			if x.JKT == otherKey {
				wrongKey.JKT = ""
			}
			wrongReg.ClientRegistration = "reg-2"
			attempts = append(attempts,
				attempt{x.ID, ok, nil, true}, attempt{x.ID, ok, nil, true},
				attempt{x.ID, wrongKey, store.ErrConflict, false},
				attempt{x.ID, wrongReg, store.ErrConflict, false})
		}
		for i := range 4 {
			attempts = append(attempts, attempt{fmt.Sprintf("missing-%d", i), store.Rotation{From: round, At: at}, store.ErrNotFound, false})
		}
		got := make([]store.Session, len(attempts))
		errs := make([]error, len(attempts))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, a := range attempts {
			wg.Go(func() {
				<-start
				got[i], errs[i] = s.RotateSession(ctx, a.id, a.r)
			})
		}
		close(start)
		wg.Wait()
		winners := map[string]int{}
		for i, a := range attempts {
			what := fmt.Sprintf("round %d: RotateSession(%q, From %d, registration %q, key %q)", round, a.id, a.r.From, a.r.ClientRegistration, a.r.JKT)
			switch {
			case a.race && errs[i] == nil:
				winners[a.id]++
				if got[i].ID != a.id || got[i].Generation != round+1 || !sameTime(got[i].RotatedAt, at) {
					t.Fatalf("%s = session %q at generation %d rotated at %v, want %q at %d, %v", what, got[i].ID, got[i].Generation, got[i].RotatedAt, a.id, round+1, at)
				}
			case a.race:
				wantErr(t, what+" (the loser)", errs[i], store.ErrConflict)
			default:
				wantErr(t, what, errs[i], a.want)
			}
		}
		for _, x := range all {
			if winners[x.ID] != 1 {
				t.Fatalf("round %d: %d of 2 racing rotations of %q succeeded, want exactly 1", round, winners[x.ID], x.ID)
			}
			stored, err := s.Session(ctx, x.ID)
			must(t, err)
			if stored.Generation != round+1 || stored.JKT != x.JKT || stored.ClientRegistration != x.ClientRegistration {
				t.Fatalf("round %d: %q stored at generation %d, key %q, registration %q; want %d, %q, %q",
					round, x.ID, stored.Generation, stored.JKT, stored.ClientRegistration, round+1, x.JKT, x.ClientRegistration)
			}
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
	must(t, s.RevokeSession(ctx, store.Revocation{SessionID: "s1", At: base.Add(2 * time.Hour), Until: base.Add(3 * time.Hour)}, "logout"))
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

// userSessionsSameMillisecondByID: sessions created in the same millisecond
// come in ascending byte order of ID, on every backend: not descending, not
// in a locale's order (upper case before lower, '_' between them, UTF-8
// after ASCII), and not by the sub-millisecond part a backend does not keep
// (which here runs against the ID order).
func userSessionsSameMillisecondByID(t *testing.T, s store.Store) {
	ctx := t.Context()
	tie := base.Add(time.Hour).Truncate(time.Millisecond)
	byID := []string{"A1", "B", "_z", "a", "a-1", "b", "é"} // ascending bytes
	for _, i := range []int{3, 0, 6, 2, 5, 1, 4} {
		must(t, s.CreateSession(ctx, session(byID[i], "u1", tie.Add(time.Duration(i)*100*time.Microsecond))))
	}
	must(t, s.CreateSession(ctx, session("old", "u1", tie.Add(-time.Millisecond))))
	must(t, s.CreateSession(ctx, session("new", "u1", tie.Add(time.Millisecond))))
	ss, err := s.UserSessions(ctx, "u1")
	must(t, err)
	var ids []string
	for _, x := range ss {
		ids = append(ids, x.ID)
	}
	if want := slices.Concat([]string{"new"}, byID, []string{"old"}); !slices.Equal(ids, want) {
		t.Fatalf(`UserSessions("u1") = %q, want %q`, ids, want)
	}
}

// revokeSessionIdempotent: the first revocation wins; a second one returns nil
// and changes nothing, in the session or in the feed.
func revokeSessionIdempotent(t *testing.T, s store.Store) {
	ctx := t.Context()
	x := session("s1", "u1", base)
	must(t, s.CreateSession(ctx, x))
	must(t, s.CreateSession(ctx, session("s2", "u1", base)))
	first := store.Revocation{SessionID: "s1", At: base.Add(time.Second), Until: base.Add(time.Hour)}
	must(t, s.RevokeSession(ctx, first, "reused"))
	must(t, s.RevokeSession(ctx, store.Revocation{SessionID: "s1", At: base.Add(time.Minute), Until: base.Add(2 * time.Hour)}, "logout"))
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
	err := s.RevokeSession(ctx, store.Revocation{SessionID: "nope", At: base, Until: base.Add(time.Hour)}, "logout")
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
		must(t, s.RevokeSession(ctx, store.Revocation{SessionID: id, At: base, Until: now.Add(time.Duration(i+1) * time.Minute)}, "logout"))
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
	must(t, s.RevokeSession(ctx, store.Revocation{SessionID: "revoked-recently", At: cut.Add(time.Minute), Until: now.Add(time.Minute)}, "logout"))
	must(t, s.RevokeSession(ctx, store.Revocation{SessionID: "revoked-long-ago", At: cut.Add(-time.Minute), Until: cut}, "logout"))
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

// purgeAgreesWithLive: Purge and Session.Live (which rotation follows) share
// one definition of a dead session, EndedAt, at every boundary. For a session
// ending by idle expiry, by absolute expiry or by revocation one millisecond
// before the cut, at it, or one millisecond after it, Purge deletes it
// exactly when its EndedAt is before the cut; and a rotation one millisecond
// before, at and after its end succeeds exactly when it is Live then.
func purgeAgreesWithLive(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base.Add(100 * time.Hour).Truncate(time.Millisecond)
	const retain = 24 * time.Hour
	cut := now.Add(-retain)
	far := now.Add(48 * time.Hour)
	type tcase struct {
		x      store.Session
		revoke time.Time // zero: not revoked
	}
	var cases []tcase
	for _, d := range []time.Duration{-time.Millisecond, 0, time.Millisecond} {
		end := cut.Add(d)
		name := fmt.Sprintf("%+dms", d.Milliseconds())
		idle := session("idle"+name, "u1", base)
		idle.IdleExpiresAt, idle.ExpiresAt = end, far
		abs := session("absolute"+name, "u1", base)
		abs.IdleExpiresAt, abs.ExpiresAt = far, end
		both := session("both"+name, "u1", base) // idle expiry capped at the end, as rotations leave it
		both.IdleExpiresAt, both.ExpiresAt = end, end
		rev := session("revoked"+name, "u1", base)
		rev.IdleExpiresAt, rev.ExpiresAt = far, far
		cases = append(cases, tcase{x: idle}, tcase{x: abs}, tcase{x: both}, tcase{x: rev, revoke: end})
	}
	for _, c := range cases {
		must(t, s.CreateSession(ctx, c.x))
		if !c.revoke.IsZero() {
			must(t, s.RevokeSession(ctx, store.Revocation{SessionID: c.x.ID, At: c.revoke, Until: c.revoke.Add(time.Minute)}, "logout"))
		}
	}
	// As stored, so that EndedAt and Live are those of the record a backend
	// decides on.
	stored := make(map[string]store.Session)
	for _, c := range cases {
		x, err := s.Session(ctx, c.x.ID)
		must(t, err)
		stored[x.ID] = x
	}
	// Rotation follows Live around each session's end, on copies.
	for _, c := range cases {
		x := stored[c.x.ID]
		for i, d := range []time.Duration{-time.Millisecond, 0, time.Millisecond} {
			at := x.EndedAt().Add(d)
			cp := c.x
			cp.ID = fmt.Sprintf("%s/rotate%d", x.ID, i)
			must(t, s.CreateSession(ctx, cp))
			if !c.revoke.IsZero() {
				must(t, s.RevokeSession(ctx, store.Revocation{SessionID: cp.ID, At: c.revoke, Until: c.revoke.Add(time.Minute)}, "logout"))
			}
			_, err := s.RotateSession(ctx, cp.ID, store.Rotation{From: 0, At: at})
			if live := x.Live(at); live != (err == nil) {
				t.Errorf("RotateSession(%s at its end %+v) = %v, but Live = %v", x.ID, d, err, live)
			} else if !live {
				wantErr(t, fmt.Sprintf("RotateSession(%s at its end %+v)", x.ID, d), err, store.ErrConflict)
			}
		}
	}
	n, err := s.Purge(ctx, now, retain)
	must(t, err)
	deleted := 0
	for _, c := range cases {
		x := stored[c.x.ID]
		wantGone := x.EndedAt().Before(cut)
		_, err := s.Session(ctx, x.ID)
		switch {
		case wantGone && !errors.Is(err, store.ErrNotFound):
			t.Errorf("Session(%q) after Purge = %v; its end %v is before the cut %v, want %v", x.ID, err, x.EndedAt(), cut, store.ErrNotFound)
		case !wantGone && err != nil:
			t.Errorf("Session(%q) after Purge = %v; its end %v is not before the cut %v, want it kept", x.ID, err, x.EndedAt(), cut)
		}
		if wantGone {
			deleted++
			if x.Live(cut) {
				t.Errorf("%s: purged but Live at the cut", x.ID)
			}
		}
	}
	if deleted != 4 {
		t.Errorf("%d of the boundary sessions end before the cut, want 4 (the suite is wrong)", deleted)
	}
	// Each rotation copy ends when its session does (a rotation with a zero
	// IdleExpiresAt keeps the expiry), so Purge deletes it with its session.
	want := 0
	for _, c := range cases {
		x := stored[c.x.ID]
		if x.EndedAt().Before(cut) {
			want += 4 // the session and its three copies
		}
	}
	if n != want {
		t.Errorf("Purge = %d, want %d", n, want)
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

// call is a method call under a context, for canceledContext and its role
// counterparts.
type call struct {
	name string
	call func(context.Context) error
}

// failCanceled checks that every call, with a canceled context, fails with an
// error that wraps context.Canceled.
func failCanceled(t *testing.T, calls []call) {
	t.Helper()
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range calls {
		if err := c.call(canceled); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(canceled context) = %v, want an error wrapping %v", c.name, err, context.Canceled)
		}
	}
}

// canceledContext: every method passes its context on to the backend, so a
// canceled context fails the call with an error that wraps context.Canceled
// (and never with a sentinel that would be read as an answer).
func canceledContext(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateSession(ctx, session("s1", "u1", base)))
	rev := store.Revocation{SessionID: "s1", At: base, Until: base.Add(time.Hour)}
	failCanceled(t, []call{
		{"CreateSession", func(c context.Context) error { return s.CreateSession(c, session("s2", "u1", base)) }},
		{"Session", func(c context.Context) error { _, err := s.Session(c, "s1"); return err }},
		{"RotateSession", func(c context.Context) error {
			_, err := s.RotateSession(c, "s1", store.Rotation{From: 0, At: base, IdleExpiresAt: base.Add(time.Hour)})
			return err
		}},
		{"UserSessions", func(c context.Context) error { _, err := s.UserSessions(c, "u1"); return err }},
		{"RevokeSession", func(c context.Context) error { return s.RevokeSession(c, rev, "logout") }},
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
	})
	// Nothing happened.
	got, err := s.Session(ctx, "s1")
	must(t, err)
	wantSession(t, `Session("s1") after calls with a canceled context`, got, session("s1", "u1", base))
	if _, err := s.Session(ctx, "s2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf(`Session("s2") after CreateSession(canceled context) = %v, want %v`, err, store.ErrNotFound)
	}
	feed, err := s.RevocationsAfter(ctx, 0, base, 100)
	must(t, err)
	if len(feed) != 0 {
		t.Errorf("feed after revocations with a canceled context = %+v, want empty", feed)
	}
	ks, err := s.ListKeys(ctx)
	must(t, err)
	if len(ks) != 0 {
		t.Errorf("ListKeys after PutKey(canceled context) = %+v, want none", ks)
	}
}

func ping(t *testing.T, s store.Store) {
	must(t, s.Ping(t.Context()))
}

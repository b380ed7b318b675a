package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

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
	str("ClientRegistration", got.ClientRegistration, want.ClientRegistration)
	str("JKT", got.JKT, want.JKT)
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

// race runs fn(0) … fn(n-1) at once (all started before any runs) and
// returns the indexes of the calls that succeeded. A call that fails with
// anything but lose fails the test; what(i) names it.
func race(t *testing.T, n int, lose error, what func(i int) string, fn func(i int) error) (won []int) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range results {
		switch {
		case err == nil:
			won = append(won, i)
		case !errors.Is(err, lose):
			t.Fatalf("%s = %v, want nil or %v", what(i), err, lose)
		}
	}
	return won
}

package latchkey_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/sqlite"
)

// liveSessions counts the user's live sessions.
func liveSessions(t *testing.T, a *latchkey.Auth, userID string) []store.Session {
	t.Helper()
	ss, err := a.Sessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// A store without store.SessionCap (the fixture's wrapper hides it): the cap
// is enforced just after each login, ending the least recently used.
func TestSessionCapAfterLogin(t *testing.T) {
	f := newFixture(t, func(c *latchkey.Config) { c.MaxSessions = 3 })
	ctx := context.Background()
	var pairs []*latchkey.Tokens
	for range 5 {
		p, err := f.auth.Login(ctx, "user-1", latchkey.LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, p)
		f.clock.Add(time.Second)
	}
	if live := liveSessions(t, f.auth, "user-1"); len(live) != 3 {
		t.Fatalf("%d live sessions, want 3", len(live))
	}
	for i, p := range pairs {
		_, err := f.auth.Refresh(ctx, p.RefreshToken, latchkey.RefreshOptions{})
		if ended := i < 2; ended != (err != nil) {
			t.Fatalf("session %d: refresh err = %v, want ended=%v", i, err, ended)
		}
	}
	s, err := f.store.Session(ctx, pairs[0].SessionID)
	if err != nil || s.RevokeReason != string(latchkey.ReasonSessionLimit) {
		t.Fatalf("the oldest session: %+v, %v (want reason session_limit)", s, err)
	}
}

// On a store with store.SessionCap, the cap holds under concurrent logins:
// 50 at once against a cap of 10 leave exactly 10 live sessions.
func TestSessionCapConcurrent(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cap.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, ok := any(db).(store.SessionCap); !ok {
		t.Fatal("the SQLite store does not offer store.SessionCap")
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	clock := fakeclock.New(time.Unix(1_800_000_000, 0))
	rec := &recorder{}
	a, err := latchkey.New(context.Background(), latchkey.Config{Store: db, Secret: secret, Now: clock.Now, MaxSessions: 10, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range 50 {
		wg.Go(func() { _, errs[i] = a.Login(context.Background(), "user-1", latchkey.LoginOptions{}) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if live := liveSessions(t, a, "user-1"); len(live) != 10 {
		t.Fatalf("%d live sessions after 50 concurrent logins against a cap of 10", len(live))
	}
	ended := 0
	for _, e := range rec.drain() {
		if e.Kind == latchkey.EventRevoke && e.Reason == latchkey.ReasonSessionLimit {
			ended++
		}
	}
	if ended != 40 {
		t.Fatalf("%d session_limit revocations reported, want 40", ended)
	}
}

// Without store.SessionCap, two logins at one instant never end each other's
// new sessions; the cap catches up at the next login.
func TestSessionCapAfterLoginConcurrent(t *testing.T) {
	f := newFixture(t, func(c *latchkey.Config) { c.MaxSessions = 1 })
	ctx := context.Background()
	var wg sync.WaitGroup
	pairs := make([]*latchkey.Tokens, 2)
	for i := range pairs {
		wg.Go(func() { pairs[i], _ = f.auth.Login(ctx, "user-1", latchkey.LoginOptions{}) })
	}
	wg.Wait()
	for i, p := range pairs {
		if p == nil {
			t.Fatalf("login %d failed", i)
		}
		if _, err := f.auth.Verify(ctx, p.AccessToken); err != nil {
			t.Fatalf("login %d's own session was ended: %v", i, err)
		}
	}
	f.clock.Add(time.Second)
	if _, err := f.auth.Login(ctx, "user-1", latchkey.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	if live := liveSessions(t, f.auth, "user-1"); len(live) != 1 {
		t.Fatalf("%d live sessions after the next login, want 1", len(live))
	}
}

package latchkey_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// recorder keeps the events an Auth reports.
type recorder struct {
	mu sync.Mutex
	es []latchkey.Event
}

func (r *recorder) Observe(_ context.Context, e latchkey.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.es = append(r.es, e)
}

// take returns the events of kind k so far and forgets every event.
func (r *recorder) take(k latchkey.EventKind) []latchkey.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []latchkey.Event
	for _, e := range r.es {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	r.es = nil
	return out
}

// drain returns every event so far and forgets them.
func (r *recorder) drain() []latchkey.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.es
	r.es = nil
	return out
}

func outcomes(es []latchkey.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Outcome)
	}
	return out
}

// The observer hears each login, refresh (by outcome), verification (by
// outcome), revocation (by reason), detected reuse and store call.
func TestObserverEvents(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, func(c *latchkey.Config) { c.Observer = rec })
	ctx := context.Background()
	login, err := f.auth.Login(ctx, "user-1", latchkey.LoginOptions{Fresh: true, IP: "192.0.2.1", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if es := rec.take(latchkey.EventLogin); len(es) != 1 || es[0].UserID != "user-1" || es[0].SessionID != login.SessionID || es[0].IP != "192.0.2.1" {
		t.Fatalf("login events = %+v", es)
	}
	next := mustRefresh(t, f.auth, login.RefreshToken, latchkey.RefreshOptions{})
	mustRefresh(t, f.auth, login.RefreshToken, latchkey.RefreshOptions{}) // inside the grace window
	if got := outcomes(rec.take(latchkey.EventRefresh)); !slices.Equal(got, []string{"rotated", "grace"}) {
		t.Fatalf("refresh outcomes = %v", got)
	}
	third := mustRefresh(t, f.auth, next.RefreshToken, latchkey.RefreshOptions{})
	f.clock.Add(time.Minute) // past the grace window
	rec.drain()
	if _, err := f.auth.Refresh(ctx, login.RefreshToken, latchkey.RefreshOptions{}); err == nil {
		t.Fatal("a replayed refresh token was accepted")
	}
	all := rec.drain()
	var kinds []latchkey.EventKind
	for _, e := range all {
		if e.Kind != latchkey.EventStore {
			kinds = append(kinds, e.Kind)
		}
	}
	if !slices.Equal(kinds, []latchkey.EventKind{latchkey.EventRevoke, latchkey.EventReuse, latchkey.EventRefresh}) {
		t.Fatalf("a replay reported %v", kinds)
	}
	for _, e := range all {
		switch e.Kind {
		case latchkey.EventRevoke:
			if e.Reason != latchkey.ReasonReused || e.Actor != "system" || e.UserID != "user-1" || e.SessionID != login.SessionID {
				t.Fatalf("revoke event = %+v", e)
			}
		case latchkey.EventReuse:
			if e.Generation != 0 || e.Current != 2 || e.SessionID != login.SessionID {
				t.Fatalf("reuse event = %+v", e)
			}
		case latchkey.EventRefresh:
			if e.Outcome != "reused" {
				t.Fatalf("replay refresh outcome = %q", e.Outcome)
			}
		}
	}
	rec.drain()
	f.auth.Verify(ctx, third.AccessToken)
	f.auth.Verify(ctx, "garbage")
	f.auth.Verify(ctx, login.AccessToken)
	if got := outcomes(rec.take(latchkey.EventVerify)); !slices.Equal(got, []string{"revoked", "invalid", "revoked"}) {
		t.Fatalf("verify outcomes = %v", got)
	}
	other, _ := f.auth.Login(ctx, "user-1", latchkey.LoginOptions{})
	rec.drain()
	if _, err := f.auth.Verify(ctx, other.AccessToken); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(rec.take(latchkey.EventVerify)); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("verify outcomes = %v", got)
	}
	if err := f.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: other.SessionID, Reason: latchkey.ReasonAdmin}); err != nil {
		t.Fatal(err)
	}
	var stores []string
	for _, e := range rec.drain() {
		switch e.Kind {
		case latchkey.EventRevoke:
			if e.Actor != "admin" || e.UserID != "user-1" {
				t.Fatalf("admin revoke event = %+v", e)
			}
		case latchkey.EventStore:
			stores = append(stores, e.Op)
			if e.Duration < 0 || e.Err != nil {
				t.Fatalf("store event = %+v", e)
			}
		}
	}
	if !slices.Contains(stores, "revoke_session") {
		t.Fatalf("store calls reported: %v", stores)
	}
}

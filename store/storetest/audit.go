package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// event returns a sign-in of user userID at at.
func event(id, userID string, at time.Time) store.Event {
	return store.Event{ID: id, At: at, Kind: "login", Actor: "user", UserID: userID, SessionID: "s-" + id,
		IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", Detail: `{"method":"password"}`}
}

// diffEvent describes how got differs from want, or returns "".
func diffEvent(got, want store.Event) string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	if !sameTime(got.At, want.At) {
		d = append(d, fmt.Sprintf("At %v, want %v", got.At, want.At))
	}
	str("Kind", got.Kind, want.Kind)
	str("Actor", got.Actor, want.Actor)
	str("UserID", got.UserID, want.UserID)
	str("SessionID", got.SessionID, want.SessionID)
	str("IP", got.IP, want.IP)
	str("UserAgent", got.UserAgent, want.UserAgent)
	str("Detail", got.Detail, want.Detail)
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// wantEvents fails unless Events(f) returns events with exactly these IDs,
// in this order.
func wantEvents(t *testing.T, a store.Audit, f store.EventFilter, want ...string) []store.Event {
	t.Helper()
	es, err := a.Events(t.Context(), f)
	must(t, err)
	got := make([]string, len(es))
	for i, e := range es {
		got[i] = e.ID
		if f.UserID != "" && e.UserID != f.UserID {
			t.Fatalf("Events(%+v) holds %s of user %q", f, e.ID, e.UserID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Events(%+v) = %q, want %q", f, got, want)
	}
	return es
}

// appendMany appends n events of user userID, one a millisecond from at,
// named prefix0 … in batches, and returns their IDs newest first.
func appendMany(t *testing.T, a store.Audit, prefix, userID string, at time.Time, n int) []string {
	t.Helper()
	var es []store.Event
	ids := make([]string, n)
	for i := range n {
		id := fmt.Sprintf("%s%05d", prefix, i)
		ids[n-1-i] = id
		es = append(es, event(id, userID, at.Add(time.Duration(i)*time.Millisecond)))
		if len(es) == 250 || i == n-1 {
			must(t, a.AppendEvents(t.Context(), es))
			es = nil
		}
	}
	return ids
}

// appendEventsRoundTrip: every field comes back, through Events for every
// user and for the event's user; empty fields stay empty.
func appendEventsRoundTrip(t *testing.T, a store.Audit) {
	ctx := t.Context()
	wantEvents(t, a, store.EventFilter{})
	full := store.Event{
		ID: "e-full", At: base.Add(1500 * time.Microsecond), Kind: "refresh_reused", Actor: "client-a",
		UserID: "u1", SessionID: "s1", IP: "2001:db8::1", UserAgent: "curl/8.5.0 ünïcode ✓",
		Detail: `{"reason":"reused","generation":4,"nested":{"list":[1,"ü",null]}}`,
	}
	sparse := store.Event{ID: "e-sparse", At: base, Kind: "key_rotated"}
	must(t, a.AppendEvents(ctx, []store.Event{full, sparse}))
	for _, f := range []store.EventFilter{{}, {UserID: "u1"}} {
		got, err := a.Events(ctx, f)
		must(t, err)
		if len(got) == 0 || got[0].ID != full.ID {
			t.Fatalf("Events(%+v) = %+v, want %s first", f, got, full.ID)
		}
		if d := diffEvent(got[0], full); d != "" {
			t.Fatalf("Events(%+v)[0]: %s", f, d)
		}
	}
	got := wantEvents(t, a, store.EventFilter{}, "e-full", "e-sparse")
	if d := diffEvent(got[1], sparse); d != "" {
		t.Fatalf("Events()[1]: %s", d)
	}
	wantEvents(t, a, store.EventFilter{UserID: "u2"})
	must(t, a.AppendEvents(ctx, nil))
	wantEvents(t, a, store.EventFilter{}, "e-full", "e-sparse")
}

// appendEventsAllOrNothing: a batch with a taken ID, or an ID twice, is
// refused with ErrExists and stores nothing; a batch with an event beyond
// the limits is refused with another error and stores nothing; events at the
// limits are accepted.
func appendEventsAllOrNothing(t *testing.T, a store.Audit) {
	ctx := t.Context()
	must(t, a.AppendEvents(ctx, []store.Event{event("e1", "u1", base)}))
	wantErr(t, "AppendEvents(e2, a taken ID)",
		a.AppendEvents(ctx, []store.Event{event("e2", "u1", base), event("e1", "u2", base.Add(time.Second))}), store.ErrExists)
	wantErr(t, "AppendEvents(e3, e3)",
		a.AppendEvents(ctx, []store.Event{event("e3", "u1", base), event("e3", "u1", base.Add(time.Second))}), store.ErrExists)
	wantEvents(t, a, store.EventFilter{}, "e1")
	wantEvents(t, a, store.EventFilter{UserID: "u2"})

	edge := event("edge", "u1", base.Add(time.Minute))
	edge.Kind = strings.Repeat("k", store.MaxEventKind)
	edge.Detail = `{"pad":"` + strings.Repeat("x", store.MaxEventDetail-len(`{"pad":""}`)) + `"}`
	if len(edge.Detail) != store.MaxEventDetail {
		t.Fatalf("the test's detail has %d bytes", len(edge.Detail))
	}
	must(t, a.AppendEvents(ctx, []store.Event{edge}))
	got := wantEvents(t, a, store.EventFilter{}, "edge", "e1")
	if d := diffEvent(got[0], edge); d != "" {
		t.Fatalf("Events()[0], an event at the limits: %s", d)
	}

	bad := map[string]func(e *store.Event){
		"no ID":                func(e *store.Event) { e.ID = "" },
		"no kind":              func(e *store.Event) { e.Kind = "" },
		"a kind too long":      func(e *store.Event) { e.Kind = strings.Repeat("k", store.MaxEventKind+1) },
		"a detail too long":    func(e *store.Event) { e.Detail = edge.Detail[:len(edge.Detail)-2] + `x"}` },
		"a detail not JSON":    func(e *store.Event) { e.Detail = `reason=reused` },
		"a detail not object":  func(e *store.Event) { e.Detail = `["reused"]` },
		"a detail with junk":   func(e *store.Event) { e.Detail = `{"reason":"reused"} x` },
		"a detail as a string": func(e *store.Event) { e.Detail = `"reused"` },
	}
	for what, change := range bad {
		e := event("bad", "u1", base.Add(2*time.Minute))
		change(&e)
		err := a.AppendEvents(ctx, []store.Event{event("good", "u1", base.Add(2*time.Minute)), e})
		if err == nil || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			t.Fatalf("AppendEvents(an event with %s) = %v, want an error that is no sentinel", what, err)
		}
	}
	wantEvents(t, a, store.EventFilter{}, "edge", "e1")
}

// eventsNewestFirst: At descending; events of one millisecond in descending
// byte order of ID, whatever their sub-millisecond part (which here runs
// against the ID order) and their user.
func eventsNewestFirst(t *testing.T, a store.Audit) {
	ctx := t.Context()
	tie := base.Add(time.Hour).Truncate(time.Millisecond)
	byID := []string{"A1", "B", "_z", "a", "a-1", "b", "é"} // ascending bytes
	var es []store.Event
	for _, i := range []int{3, 0, 6, 2, 5, 1, 4} {
		es = append(es, event(byID[i], fmt.Sprint("u", i%2), tie.Add(time.Duration(len(byID)-i)*100*time.Microsecond)))
	}
	es = append(es, event("old", "u1", tie.Add(-time.Millisecond)), event("new", "u0", tie.Add(time.Millisecond)))
	must(t, a.AppendEvents(ctx, es[:4]))
	must(t, a.AppendEvents(ctx, es[4:]))
	want := []string{"new"}
	for _, id := range slices.Backward(byID) {
		want = append(want, id)
	}
	want = append(want, "old")
	wantEvents(t, a, store.EventFilter{}, want...)
	wantEvents(t, a, store.EventFilter{UserID: "u0"}, "new", "é", "a-1", "_z", "A1")
	wantEvents(t, a, store.EventFilter{UserID: "u1"}, "b", "a", "B", "old")
}

// eventsFilter: Since is inclusive at millisecond precision, for every user
// and for one; Limit takes the newest; 0 or less means DefaultEventLimit and
// no more than MaxEventLimit come back.
func eventsFilter(t *testing.T, a store.Audit) {
	ctx := t.Context()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	must(t, a.AppendEvents(ctx, []store.Event{
		event("e0", "u1", at(0)), event("e1", "u2", at(1)), event("e2", "u1", at(2)), event("e3", "", at(3)), event("e4", "u1", at(4)),
	}))
	wantEvents(t, a, store.EventFilter{Since: at(2)}, "e4", "e3", "e2")
	wantEvents(t, a, store.EventFilter{Since: at(2).Truncate(time.Millisecond).Add(999 * time.Microsecond)}, "e4", "e3", "e2")
	wantEvents(t, a, store.EventFilter{Since: at(2).Add(time.Millisecond)}, "e4", "e3")
	wantEvents(t, a, store.EventFilter{UserID: "u1", Since: at(2)}, "e4", "e2")
	wantEvents(t, a, store.EventFilter{UserID: "u1"}, "e4", "e2", "e0")
	wantEvents(t, a, store.EventFilter{UserID: "u2", Since: at(2)})
	wantEvents(t, a, store.EventFilter{Since: at(5)})
	wantEvents(t, a, store.EventFilter{Limit: 2}, "e4", "e3")
	wantEvents(t, a, store.EventFilter{UserID: "u1", Limit: 1}, "e4")
	wantEvents(t, a, store.EventFilter{UserID: "u1", Since: at(1), Limit: 1}, "e4")

	ids := appendMany(t, a, "m", "u3", at(10), store.MaxEventLimit+5)
	wantEvents(t, a, store.EventFilter{UserID: "u3"}, ids[:store.DefaultEventLimit]...)
	wantEvents(t, a, store.EventFilter{Limit: -1}, ids[:store.DefaultEventLimit]...)
	wantEvents(t, a, store.EventFilter{UserID: "u3", Limit: store.MaxEventLimit * 10}, ids[:store.MaxEventLimit]...)
	wantEvents(t, a, store.EventFilter{Limit: store.MaxEventLimit + 1}, ids[:store.MaxEventLimit]...)
	wantEvents(t, a, store.EventFilter{Since: at(10).Add(time.Duration(len(ids)-3) * time.Millisecond), Limit: 10}, ids[:3]...)
}

// purgeEvents: PurgeEvents deletes exactly the events before its time (an
// event at it stays), for every user's view, says how many, and deletes more
// than a batch.
func purgeEvents(t *testing.T, a store.Audit) {
	ctx := t.Context()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	must(t, a.AppendEvents(ctx, []store.Event{event("e0", "u1", at(0)), event("e1", "", at(1)), event("e2", "u1", at(2)), event("e3", "u2", at(3))}))
	n, err := a.PurgeEvents(ctx, at(2))
	if err != nil || n != 2 {
		t.Fatalf("PurgeEvents(at e2) = %d, %v; want 2", n, err)
	}
	wantEvents(t, a, store.EventFilter{}, "e3", "e2")
	wantEvents(t, a, store.EventFilter{UserID: "u1"}, "e2")
	if n, err := a.PurgeEvents(ctx, at(2)); err != nil || n != 0 {
		t.Fatalf("PurgeEvents(at e2) again = %d, %v; want 0", n, err)
	}
	// A purged ID is free again.
	must(t, a.AppendEvents(ctx, []store.Event{event("e0", "u1", at(5))}))
	wantEvents(t, a, store.EventFilter{UserID: "u1"}, "e0", "e2")

	ids := appendMany(t, a, "m", "u3", at(10), 2500)
	if n, err := a.PurgeEvents(ctx, at(10).Add(2400*time.Millisecond)); err != nil || n != 2400+3 {
		t.Fatalf("PurgeEvents(many) = %d, %v; want %d", n, err, 2400+3)
	}
	wantEvents(t, a, store.EventFilter{UserID: "u3", Limit: store.MaxEventLimit}, ids[:100]...)
	wantEvents(t, a, store.EventFilter{Limit: store.MaxEventLimit}, ids[:100]...)
	wantEvents(t, a, store.EventFilter{UserID: "u1"})
}

// appendEventsContention: of concurrent batches that share one ID exactly one
// is stored, whole; the others store nothing.
func appendEventsContention(t *testing.T, a store.Audit) {
	ctx := t.Context()
	const workers = 16
	for round := range 5 {
		shared := fmt.Sprintf("shared-%d", round)
		at := base.Add(time.Duration(round) * time.Hour)
		won := race(t, workers, store.ErrExists,
			func(w int) string { return fmt.Sprintf("round %d: worker %d: AppendEvents(own, %s)", round, w, shared) },
			func(w int) error {
				return a.AppendEvents(ctx, []store.Event{event(fmt.Sprintf("own-%d-%02d", round, w), "u1", at), event(shared, "u1", at)})
			})
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d concurrent AppendEvents with one shared ID succeeded, want exactly 1", round, len(won), workers)
		}
		wantEvents(t, a, store.EventFilter{Since: at}, shared, fmt.Sprintf("own-%d-%02d", round, won[0])) // "s" > "o"
	}
}

// auditCanceledContext: every method of the role passes its context on, as
// canceledContext checks for the core; nothing happens.
func auditCanceledContext(t *testing.T, a store.Audit) {
	must(t, a.AppendEvents(t.Context(), []store.Event{event("e1", "u1", base)}))
	failCanceled(t, []call{
		{"AppendEvents", func(c context.Context) error { return a.AppendEvents(c, []store.Event{event("e2", "u1", base)}) }},
		{"Events", func(c context.Context) error { _, err := a.Events(c, store.EventFilter{}); return err }},
		{"PurgeEvents", func(c context.Context) error { _, err := a.PurgeEvents(c, base.Add(time.Hour)); return err }},
	})
	wantEvents(t, a, store.EventFilter{}, "e1")
}

// sharedAudit: an event appended through one handle is read through the
// other, its ID is taken through the other, and concurrent appends of one ID
// through both store it once.
func sharedAudit(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	a, b := open(t)
	aa, ok := a.(store.Audit)
	if !ok {
		t.Skipf("%T does not offer the Audit role", a)
	}
	ab := b.(store.Audit)
	ctx := t.Context()
	must(t, aa.AppendEvents(ctx, []store.Event{event("e1", "u1", base)}))
	wantEvents(t, ab, store.EventFilter{UserID: "u1"}, "e1")
	wantErr(t, "AppendEvents(e1) through the other handle", ab.AppendEvents(ctx, []store.Event{event("e1", "u2", base)}), store.ErrExists)
	const perHandle = 8
	for round := range 5 {
		id := fmt.Sprintf("race-%d", round)
		won := race(t, 2*perHandle, store.ErrExists,
			func(i int) string { return fmt.Sprintf("round %d: AppendEvents(%s) on handle %d", round, id, i%2) },
			func(i int) error {
				return []store.Audit{aa, ab}[i%2].AppendEvents(ctx, []store.Event{event(id, "u1", base)})
			})
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d concurrent AppendEvents(%s) on two handles succeeded, want exactly 1", round, len(won), 2*perHandle, id)
		}
	}
	n, err := ab.PurgeEvents(ctx, base.Add(time.Second))
	if err != nil || n != 6 {
		t.Fatalf("PurgeEvents through the other handle = %d, %v; want 6", n, err)
	}
	wantEvents(t, aa, store.EventFilter{})
}

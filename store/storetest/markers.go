package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// markOnce: a key is marked once; while its marker lasts, marking it again is
// refused and changes nothing (the until of a refused mark is not kept).
func markOnce(t *testing.T, m store.Markers, _ store.Store) {
	ctx := t.Context()
	until := base.Add(time.Minute)
	must(t, m.Mark(ctx, "k", base, until))
	wantErr(t, "Mark(k) again", m.Mark(ctx, "k", base, until), store.ErrExists)
	wantErr(t, "Mark(k) later, before until", m.Mark(ctx, "k", base.Add(30*time.Second), base.Add(time.Hour)), store.ErrExists)
	// The first until stands, not the refused one's.
	must(t, m.Mark(ctx, "k", until, until.Add(time.Minute)))
}

// markAfterUntil: a marker lasts while now is before its until (at
// millisecond precision): from until on, the key can be marked again; a
// marker whose until is not after now counts as absent from the start.
func markAfterUntil(t *testing.T, m store.Markers, _ store.Store) {
	ctx := t.Context()
	until := base.Add(time.Minute) // sub-millisecond, like every suite time
	must(t, m.Mark(ctx, "k", base, until))
	wantErr(t, "Mark(k) a millisecond before until", m.Mark(ctx, "k", until.Add(-time.Millisecond), until.Add(time.Hour)), store.ErrExists)
	must(t, m.Mark(ctx, "k", until, until.Add(time.Minute))) // now == until: ended
	wantErr(t, "Mark(k) under the new marker", m.Mark(ctx, "k", until.Add(time.Second), until.Add(time.Hour)), store.ErrExists)
	must(t, m.Mark(ctx, "k", until.Add(2*time.Minute), until.Add(3*time.Minute)))

	// A marker that ends as it is made holds nothing.
	must(t, m.Mark(ctx, "ended", base, base))
	must(t, m.Mark(ctx, "ended", base, base.Add(-time.Second)))
	must(t, m.Mark(ctx, "ended", base, base.Add(time.Minute)))
	wantErr(t, "Mark(ended) after a live mark", m.Mark(ctx, "ended", base, base.Add(time.Minute)), store.ErrExists)
}

// markKeysIndependent: keys are compared exactly, and marking one leaves the
// others free; a key of 128 bytes is accepted.
func markKeysIndependent(t *testing.T, m store.Markers, _ store.Store) {
	ctx := t.Context()
	until := base.Add(time.Hour)
	keys := []string{"a", "A", "a ", "a:b", "a:b:", "{a}", "}{", "ünï", strings.Repeat("f", 64), strings.Repeat("0123456789abcdef", 8)}
	for _, k := range keys {
		must(t, m.Mark(ctx, k, base, until))
	}
	for _, k := range keys {
		wantErr(t, fmt.Sprintf("Mark(%q) again", k), m.Mark(ctx, k, base, until), store.ErrExists)
	}
}

// markContention: of many concurrent marks of one key exactly one succeeds,
// when the key is new and when an ended marker holds it; the rest get
// ErrExists.
func markContention(t *testing.T, m store.Markers, _ store.Store) {
	ctx := t.Context()
	const workers = 16
	for round := range 6 {
		// Rounds 0-2 mark new keys; rounds 3-5 mark the same keys after
		// their markers ended.
		key := fmt.Sprintf("k%d", round%3)
		now := base.Add(time.Duration(round/3) * time.Hour)
		won := race(t, workers, store.ErrExists,
			func(w int) string { return fmt.Sprintf("round %d: worker %d: Mark(%s)", round, w, key) },
			func(int) error { return m.Mark(ctx, key, now, now.Add(time.Minute)) })
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d concurrent Mark(%s) succeeded, want exactly 1", round, len(won), workers, key)
		}
	}
}

// purgeMarkers: Purge forgets the markers that have ended and keeps the live
// ones. A forgotten marker shows when the key is marked again as of a time
// before its until: that is refused while the marker is stored.
func purgeMarkers(t *testing.T, m store.Markers, s store.Store) {
	ctx := t.Context()
	must(t, m.Mark(ctx, "ended", base, base.Add(time.Minute)))
	must(t, m.Mark(ctx, "live", base, base.Add(time.Hour)))
	// Not purged yet: as of base, "ended" is still held.
	wantErr(t, "Mark(ended) as of base, before Purge", m.Mark(ctx, "ended", base, base.Add(time.Minute)), store.ErrExists)
	if _, err := s.Purge(ctx, base.Add(2*time.Minute), 0); err != nil {
		t.Fatalf("Purge = %v", err)
	}
	if err := m.Mark(ctx, "ended", base, base.Add(time.Minute)); err != nil {
		t.Fatalf("Mark(ended) as of base, after Purge at base+2m = %v, want nil: the ended marker was not purged", err)
	}
	wantErr(t, "Mark(live) after Purge", m.Mark(ctx, "live", base.Add(2*time.Minute), base.Add(time.Hour)), store.ErrExists)
	// A marker ending exactly at Purge's now has ended.
	must(t, m.Mark(ctx, "edge", base, base.Add(3*time.Minute)))
	if _, err := s.Purge(ctx, base.Add(3*time.Minute), 0); err != nil {
		t.Fatalf("Purge = %v", err)
	}
	must(t, m.Mark(ctx, "edge", base, base.Add(3*time.Minute)))
	wantErr(t, "Mark(live) after the second Purge", m.Mark(ctx, "live", base, base.Add(time.Hour)), store.ErrExists)
}

// markersCanceledContext: Mark passes its context on, as canceledContext
// checks for the core; the refused call marks nothing.
func markersCanceledContext(t *testing.T, m store.Markers, _ store.Store) {
	failCanceled(t, []call{
		{"Mark", func(c context.Context) error { return m.Mark(c, "k", base, base.Add(time.Minute)) }},
	})
	must(t, m.Mark(t.Context(), "k", base, base.Add(time.Minute)))
}

// sharedMarkers: a marker made through one handle is refused through the
// other, and concurrent marks through both make exactly one marker.
func sharedMarkers(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	a, b := open(t)
	ma, ok := a.(store.Markers)
	if !ok {
		t.Skipf("%T does not offer the Markers role", a)
	}
	mb := b.(store.Markers)
	ctx := t.Context()
	must(t, ma.Mark(ctx, "k", base, base.Add(time.Minute)))
	wantErr(t, "Mark(k) through the other handle", mb.Mark(ctx, "k", base, base.Add(time.Minute)), store.ErrExists)

	const perHandle = 8
	for round := range 5 {
		key := fmt.Sprintf("race-%d", round)
		won := race(t, 2*perHandle, store.ErrExists,
			func(i int) string { return fmt.Sprintf("round %d: Mark(%s) on handle %d", round, key, i%2) },
			func(i int) error { return []store.Markers{ma, mb}[i%2].Mark(ctx, key, base, base.Add(time.Minute)) })
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d concurrent Mark(%s) on two handles succeeded, want exactly 1", round, len(won), 2*perHandle, key)
		}
	}
}

package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
)

// wantWait fails unless Wait(bs, now) is want.
func wantWait(t *testing.T, b store.Buckets, now time.Time, want time.Duration, bs ...store.Bucket) {
	t.Helper()
	got, err := b.Wait(t.Context(), bs, now)
	must(t, err)
	if got != want {
		t.Fatalf("Wait(%v) at %v = %v, want %v", keysOf(bs), now.Sub(base), got, want)
	}
}

func keysOf(bs []store.Bucket) []string {
	keys := make([]string, len(bs))
	for i, b := range bs {
		keys[i] = b.Key
	}
	return keys
}

// spend spends from bs n times at now.
func spend(t *testing.T, b store.Buckets, now time.Time, n int, bs ...store.Bucket) {
	t.Helper()
	for range n {
		must(t, b.Spend(t.Context(), bs, now))
	}
}

// spendExhaustsBurst: a bucket never seen holds Burst tokens; after Burst
// spends at one instant it holds none, and spends beyond leave it at none,
// not below: the wait stays one Every. Other keys are untouched.
func spendExhaustsBurst(t *testing.T, b store.Buckets, _ store.Store) {
	ip := store.Bucket{Key: "ip:192.0.2.1", Burst: 3, Every: time.Second}
	wantWait(t, b, base, 0, ip)
	spend(t, b, base, 2, ip)
	wantWait(t, b, base, 0, ip)
	spend(t, b, base, 1, ip)
	wantWait(t, b, base, time.Second, ip)
	spend(t, b, base, 5, ip)
	wantWait(t, b, base, time.Second, ip)
	wantWait(t, b, base, 0, store.Bucket{Key: "ip:192.0.2.2", Burst: 3, Every: time.Second})
	wantWait(t, b, base, 0, store.Bucket{Key: "IP:192.0.2.1", Burst: 3, Every: time.Second})

	// Keys are compared exactly: key i, spent from i+1 times, is the only
	// one it empties of len(keys) tokens.
	keys := []string{"a", "A", "a ", "a:b", "{rl}", "}{", "ünï", "a\tb"}
	bucket := func(k string) store.Bucket { return store.Bucket{Key: k, Burst: len(keys), Every: time.Second} }
	for i, k := range keys {
		spend(t, b, base, i+1, bucket(k))
	}
	for i, k := range keys {
		want := time.Duration(0)
		if i == len(keys)-1 {
			want = time.Second
		}
		wantWait(t, b, base, want, bucket(k))
	}
}

// spendRefills: tokens come back one per Every, fractions included, up to
// Burst and no more; a spend of less than a token leaves none; a spend as of
// an earlier time (another node's clock) adds no refill twice.
func spendRefills(t *testing.T, b store.Buckets, _ store.Store) {
	k := store.Bucket{Key: "user:alice", Burst: 3, Every: time.Second}
	spend(t, b, base, 3, k)
	wantWait(t, b, base.Add(250*time.Millisecond), 750*time.Millisecond, k)
	wantWait(t, b, base.Add(300*time.Millisecond), 700*time.Millisecond, k)
	wantWait(t, b, base.Add(999*time.Millisecond), time.Millisecond, k)
	wantWait(t, b, base.Add(time.Second), 0, k)
	spend(t, b, base.Add(time.Second), 1, k)
	wantWait(t, b, base.Add(time.Second), time.Second, k)
	// Half a token, spent: nothing left, and the next is a whole Every away.
	spend(t, b, base.Add(1500*time.Millisecond), 1, k)
	wantWait(t, b, base.Add(1500*time.Millisecond), time.Second, k)
	// After a long rest the bucket holds Burst, not more.
	later := base.Add(time.Hour)
	wantWait(t, b, later, 0, k)
	spend(t, b, later, 3, k)
	wantWait(t, b, later, time.Second, k)
	// A spend as of ten seconds earlier refills nothing and moves nothing
	// back: the bucket refills from later on.
	spend(t, b, later.Add(-10*time.Second), 1, k)
	wantWait(t, b, later.Add(400*time.Millisecond), 600*time.Millisecond, k)
	// Nor does such a spend take more than its one token.
	skew := store.Bucket{Key: "user:bob", Burst: 3, Every: time.Second}
	spend(t, b, base, 1, skew)
	spend(t, b, base.Add(-time.Second), 1, skew)
	wantWait(t, b, base, 0, skew)
	spend(t, b, base, 1, skew)
	wantWait(t, b, base, time.Second, skew)
}

// waitExact: waits are exact to the millisecond, rounded up when Every is
// not a whole number of milliseconds; several buckets wait for the slowest,
// and a spend takes from each.
func waitExact(t *testing.T, b store.Buckets, _ store.Store) {
	slow := store.Bucket{Key: "slow", Burst: 1, Every: 1500 * time.Millisecond}
	spend(t, b, base, 1, slow)
	wantWait(t, b, base, 1500*time.Millisecond, slow)
	wantWait(t, b, base.Add(time.Millisecond), 1499*time.Millisecond, slow)
	wantWait(t, b, base.Add(300*time.Millisecond), 1200*time.Millisecond, slow)
	wantWait(t, b, base.Add(1499*time.Millisecond), time.Millisecond, slow)
	wantWait(t, b, base.Add(1500*time.Millisecond), 0, slow)

	third := store.Bucket{Key: "third", Burst: 2, Every: 10 * time.Second / 3} // 3333.333… ms
	spend(t, b, base, 2, third)
	wantWait(t, b, base, 3334*time.Millisecond, third)
	wantWait(t, b, base.Add(3333*time.Millisecond), time.Millisecond, third)
	wantWait(t, b, base.Add(3334*time.Millisecond), 0, third)
	// At 5 s it holds 1.5 tokens: spent once, 0.5, half an Every from one.
	spend(t, b, base.Add(5*time.Second), 1, third)
	wantWait(t, b, base.Add(5*time.Second), 1667*time.Millisecond, third)

	fast := store.Bucket{Key: "fast", Burst: 10, Every: time.Second}
	fresh := store.Bucket{Key: "fresh", Burst: 1, Every: time.Hour}
	wantWait(t, b, base, 1500*time.Millisecond, slow, fast, fresh)
	wantWait(t, b, base, 0, fast, fresh)
	spend(t, b, base, 1, fast, fresh)
	wantWait(t, b, base, time.Hour, fast, fresh)
	wantWait(t, b, base, 1500*time.Millisecond, slow, fast)
	wantWait(t, b, base, time.Hour, fresh, slow, fast)
	wantWait(t, b, base, 0, fast)
	spend(t, b, base, 9, fast)
	wantWait(t, b, base, time.Second, fast)

	// A key given twice is spent from once.
	twice := store.Bucket{Key: "twice", Burst: 2, Every: time.Minute}
	spend(t, b, base, 1, twice, twice)
	wantWait(t, b, base, 0, twice)
	spend(t, b, base, 1, twice)
	wantWait(t, b, base, time.Minute, twice)
	// Nothing at all.
	wantWait(t, b, base, 0)
	must(t, b.Spend(t.Context(), nil, base))
}

// waitReadOnly: Wait, called again and again, spends nothing.
func waitReadOnly(t *testing.T, b store.Buckets, _ store.Store) {
	k := store.Bucket{Key: "k", Burst: 2, Every: time.Second}
	spend(t, b, base, 1, k)
	for range 20 {
		wantWait(t, b, base, 0, k)
	}
	spend(t, b, base, 1, k)
	wantWait(t, b, base, time.Second, k)
}

// forgetResets: a forgotten bucket is full again; forgetting one key leaves
// the others, and forgetting a key never spent from is not an error.
func forgetResets(t *testing.T, b store.Buckets, _ store.Store) {
	ctx := t.Context()
	pair := store.Bucket{Key: "pair:192.0.2.1:alice", Burst: 2, Every: time.Minute}
	ip := store.Bucket{Key: "ip:192.0.2.1", Burst: 2, Every: time.Minute}
	spend(t, b, base, 2, pair, ip)
	wantWait(t, b, base, time.Minute, pair)
	must(t, b.Forget(ctx, pair.Key))
	wantWait(t, b, base, 0, pair)
	wantWait(t, b, base, time.Minute, ip)
	spend(t, b, base, 1, pair)
	wantWait(t, b, base, 0, pair)
	spend(t, b, base, 1, pair)
	wantWait(t, b, base, time.Minute, pair)
	must(t, b.Forget(ctx, "never-spent"))
	must(t, b.Forget(ctx, pair.Key))
	must(t, b.Forget(ctx, pair.Key))
	wantWait(t, b, base, 0, pair)
}

// spendContention: concurrent spends at one instant lose none of each
// other's tokens and never take a bucket below zero: 50 spends of a Burst of
// 10 leave it empty, one Every from a token (not 41 Everys, as it would be
// below zero, and not 0, as it would be with lost updates); 50 of a Burst of
// 100 leave exactly 50. Several rounds, as a lost update needs an unlucky
// interleaving.
func spendContention(t *testing.T, b store.Buckets, _ store.Store) {
	ctx := t.Context()
	const workers, rounds = 50, 5
	for round := range rounds {
		ten := store.Bucket{Key: fmt.Sprint("ten-", round), Burst: 10, Every: time.Minute}
		hundred := store.Bucket{Key: fmt.Sprint("hundred-", round), Burst: 100, Every: time.Minute}
		for _, k := range []store.Bucket{ten, hundred} {
			race(t, workers, errors.ErrUnsupported,
				func(w int) string { return fmt.Sprintf("round %d: worker %d: Spend(%s)", round, w, k.Key) },
				func(int) error { return b.Spend(ctx, []store.Bucket{k}, base) })
		}
		wantWait(t, b, base, time.Minute, ten)
		spend(t, b, base, 100-workers-1, hundred)
		wantWait(t, b, base, 0, hundred)
		spend(t, b, base, 1, hundred)
		wantWait(t, b, base, time.Minute, hundred)
	}
}

// purgeBuckets: Purge never drops a bucket before it has refilled (one
// dropped would read as full), and a bucket dropped when refilled reads as
// full, as it would anyway.
func purgeBuckets(t *testing.T, b store.Buckets, s store.Store) {
	ctx := t.Context()
	k := store.Bucket{Key: "k", Burst: 3, Every: time.Second}
	spend(t, b, base, 3, k)
	for _, at := range []time.Duration{0, 2 * time.Second, 3*time.Second - time.Millisecond} {
		if _, err := s.Purge(ctx, base.Add(at), 0); err != nil {
			t.Fatalf("Purge = %v", err)
		}
	}
	// At 2 s it holds 2 tokens: two spends leave none.
	spend(t, b, base.Add(2*time.Second), 2, k)
	wantWait(t, b, base.Add(2*time.Second), time.Second, k)
	later := base.Add(time.Hour)
	if _, err := s.Purge(ctx, later, 0); err != nil {
		t.Fatalf("Purge = %v", err)
	}
	wantWait(t, b, later, 0, k)
	spend(t, b, later, 2, k)
	wantWait(t, b, later, 0, k)
	spend(t, b, later, 1, k)
	wantWait(t, b, later, time.Second, k)
}

// bucketsInvalid: a bucket without a key, with a key over MaxBucketKey
// bytes, without a burst or without a refill interval is refused by Spend and
// Wait with an error that is no sentinel, and nothing is spent; a key of
// MaxBucketKey bytes is accepted.
func bucketsInvalid(t *testing.T, b store.Buckets, _ store.Store) {
	ctx := t.Context()
	good := store.Bucket{Key: "good", Burst: 1, Every: time.Second}
	long := store.Bucket{Key: strings.Repeat("k", store.MaxBucketKey), Burst: 1, Every: time.Second}
	spend(t, b, base, 1, long)
	wantWait(t, b, base, time.Second, long)
	for what, bad := range map[string]store.Bucket{
		"no key":              {Burst: 1, Every: time.Second},
		"a long key":          {Key: strings.Repeat("k", store.MaxBucketKey+1), Burst: 1, Every: time.Second},
		"no burst":            {Key: "k", Every: time.Second},
		"a burst of -1":       {Key: "k", Burst: -1, Every: time.Second},
		"no interval":         {Key: "k", Burst: 1},
		"a negative interval": {Key: "k", Burst: 1, Every: -time.Second},
	} {
		for name, err := range map[string]error{
			"Spend": b.Spend(ctx, []store.Bucket{good, bad}, base),
			"Wait":  func() error { _, err := b.Wait(ctx, []store.Bucket{good, bad}, base); return err }(),
		} {
			if err == nil || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
				t.Fatalf("%s(a bucket with %s) = %v, want an error that is no sentinel", name, what, err)
			}
		}
	}
	wantWait(t, b, base, 0, good)
}

// bucketsCanceledContext: every method of the role passes its context on;
// nothing is spent or forgotten.
func bucketsCanceledContext(t *testing.T, b store.Buckets, _ store.Store) {
	k := store.Bucket{Key: "k", Burst: 2, Every: time.Second}
	spend(t, b, base, 1, k)
	failCanceled(t, []call{
		{"Spend", func(c context.Context) error { return b.Spend(c, []store.Bucket{k}, base) }},
		{"Wait", func(c context.Context) error { _, err := b.Wait(c, []store.Bucket{k}, base); return err }},
		{"Forget", func(c context.Context) error { return b.Forget(c, k.Key) }},
	})
	wantWait(t, b, base, 0, k)
	spend(t, b, base, 1, k)
	wantWait(t, b, base, time.Second, k)
}

// sharedBuckets: spends through two handles come out of one bucket, also
// when they race; a bucket forgotten through one is full through the other.
func sharedBuckets(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	a, b := open(t)
	ba, ok := a.(store.Buckets)
	if !ok {
		t.Skipf("%T does not offer the Buckets role", a)
	}
	bb := b.(store.Buckets)
	ctx := t.Context()
	k := store.Bucket{Key: "k", Burst: 4, Every: time.Second}
	spend(t, ba, base, 2, k)
	spend(t, bb, base, 1, k)
	wantWait(t, ba, base, 0, k)
	spend(t, bb, base, 1, k)
	wantWait(t, ba, base, time.Second, k)
	must(t, bb.Forget(ctx, k.Key))
	wantWait(t, ba, base, 0, k)

	const perHandle = 25
	ten := store.Bucket{Key: "ten", Burst: 10, Every: time.Minute}
	hundred := store.Bucket{Key: "hundred", Burst: 100, Every: time.Minute}
	race(t, 2*perHandle, errors.ErrUnsupported,
		func(i int) string { return fmt.Sprintf("Spend on handle %d", i%2) },
		func(i int) error { return []store.Buckets{ba, bb}[i%2].Spend(ctx, []store.Bucket{ten, hundred}, base) })
	wantWait(t, bb, base, time.Minute, ten)
	wantWait(t, ba, base, 0, hundred)
	spend(t, bb, base, 100-2*perHandle-1, hundred)
	wantWait(t, ba, base, 0, hundred)
	spend(t, ba, base, 1, hundred)
	wantWait(t, bb, base, time.Minute, hundred)
}

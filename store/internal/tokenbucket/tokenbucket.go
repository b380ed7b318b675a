// Package tokenbucket is the arithmetic of store.Buckets, which every backend
// must do identically: SQLite and the Wait of every backend call it, and the
// PostgreSQL statement and the Redis script spell the same operations, in the
// same order, on the same IEEE 754 doubles, so that a bucket holds the same
// tokens whichever backend spent from it.
//
// A bucket is stored as the tokens it held at its last spend and the time of
// that spend in Unix milliseconds; everything else comes from the caller's
// store.Bucket at each call.
package tokenbucket

import (
	"fmt"
	"math"
	"time"

	"github.com/latchkey/latchkey/store"
)

// Bucket is a store.Bucket in the units the backends compute with.
type Bucket struct {
	Key     string
	Burst   float64 // tokens of a full bucket
	EveryMS float64 // milliseconds one token takes to come back
	// TTLMS is how long after a spend the bucket has surely refilled and
	// may be dropped: Burst*EveryMS rounded up, at least 1.
	TTLMS int64
}

// Check validates bs and converts them, dropping every repeat of a key (the
// first Bucket of a key is the one spent from).
func Check(bs []store.Bucket) ([]Bucket, error) {
	out := make([]Bucket, 0, len(bs))
	seen := make(map[string]bool, len(bs))
	for _, b := range bs {
		switch {
		case b.Key == "" || len(b.Key) > store.MaxBucketKey:
			return nil, fmt.Errorf("bucket key of %d bytes: want 1 to %d", len(b.Key), store.MaxBucketKey)
		case b.Burst < 1:
			return nil, fmt.Errorf("bucket burst %d: want at least 1", b.Burst)
		case b.Every <= 0:
			return nil, fmt.Errorf("bucket refill interval %v: want more than 0", b.Every)
		}
		if seen[b.Key] {
			continue
		}
		seen[b.Key] = true
		every := float64(b.Every) / float64(time.Millisecond)
		burst := float64(b.Burst)
		out = append(out, Bucket{Key: b.Key, Burst: burst, EveryMS: every, TTLMS: max(1, int64(math.Ceil(burst*every)))})
	}
	return out, nil
}

// Refill returns the tokens of bucket b, stored with tokens at updated, at
// now (both Unix milliseconds): one more per EveryMS since updated, at most
// Burst. A now before updated (another node's clock) adds nothing.
func Refill(b Bucket, tokens float64, updated, now int64) float64 {
	return min(b.Burst, tokens+float64(max(now-updated, 0))/b.EveryMS)
}

// Spend returns what bucket b, stored with tokens at updated, stores after a
// spend at now: the refilled tokens less one, never below zero, and the later
// of updated and now (so that time already counted is never counted twice).
// A bucket not stored is spent with tokens = Burst and updated = now.
func Spend(b Bucket, tokens float64, updated, now int64) (float64, int64) {
	return max(Refill(b, tokens, updated, now)-1, 0), max(updated, now)
}

// epsilon, in milliseconds (a nanosecond), absorbs the rounding of the
// float arithmetic, so that a wait of exactly N milliseconds is N, not N+1:
// 0.3 of a token refilled in 300 ms of 1000 leaves 0.7000000000000001 s.
const epsilon = 1e-6

// Wait returns how long bucket b, holding tokens (already refilled), takes
// to hold one token, rounded up to the millisecond: 0 if it holds one.
func Wait(b Bucket, tokens float64) time.Duration {
	ms := math.Ceil((1-tokens)*b.EveryMS - epsilon)
	if ms <= 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

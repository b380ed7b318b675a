// Package ratelimit slows down password guessing: failed logins drain token
// buckets per (account, address), per address and per account, and a login is
// refused with a Retry-After while any of its buckets is empty.
//
// The buckets refill by themselves, so a lock always ends on its own, and the
// strictest bucket is the (account, address) pair: a stranger hammering an
// account from one address locks out only that address, while the owner, from
// another address, is slowed only once the much larger per-account bucket is
// drained by a distributed attack.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/latchkey/latchkey/store"
)

// Config sets the buckets; zero fields take the defaults in brackets.
type Config struct {
	// PairBurst failures [5] per (account, address), refilled one per PairEvery [1m].
	PairBurst int
	PairEvery time.Duration
	// AddressBurst failures [20] per address over all accounts, refilled one per AddressEvery [10s].
	AddressBurst int
	AddressEvery time.Duration
	// AccountBurst failures [50] per account over all addresses, refilled one per AccountEvery [20s].
	AccountBurst int
	AccountEvery time.Duration
	// MaxEntries bounds memory [100000 buckets].
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Shared keeps the buckets in a store every node uses, so that N nodes
	// allow what one allows; nil keeps them in this process only. The
	// in-process buckets are kept either way: when the store is slow or down
	// the limiter falls back to them, never to no limit and never to refusing
	// everyone.
	Shared store.Buckets
	// SharedTimeout bounds each call to Shared [250ms].
	SharedTimeout time.Duration
	// Logger hears when Shared fails; nil discards it.
	Logger *slog.Logger
}

// Limiter is safe for concurrent use.
type Limiter struct {
	cfg     Config
	mu      sync.Mutex
	buckets map[string]*bucketState

	failingMu sync.Mutex
	failing   time.Time // when the shared store last failed (zero: it answers)
}

// bucketState is a token bucket and the attempts holding a place in it.
type bucketState struct {
	lim      *rate.Limiter
	inflight int
}

// free is how many attempts the bucket admits now.
func (b *bucketState) free(now time.Time) float64 { return b.lim.TokensAt(now) - float64(b.inflight) }

// New returns a Limiter for cfg.
func New(cfg Config) *Limiter {
	def := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defd := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.PairBurst, 5)
	defd(&cfg.PairEvery, time.Minute)
	def(&cfg.AddressBurst, 20)
	defd(&cfg.AddressEvery, 10*time.Second)
	def(&cfg.AccountBurst, 50)
	defd(&cfg.AccountEvery, 20*time.Second)
	def(&cfg.MaxEntries, 100_000)
	defd(&cfg.SharedTimeout, 250*time.Millisecond)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Limiter{cfg: cfg, buckets: map[string]*bucketState{}}
}

type bucket struct {
	key   string
	burst int
	every time.Duration
}

// bucketsFor lists the buckets of an attempt for account from addr, the
// (account, address) pair first.
//
// An attempt that names no account (a sign-in whose credentials name no
// account before they are checked, such as an ID token) has only the address
// bucket: an account bucket shared by every such sign-in would let a stranger
// lock everybody out, and a pair bucket would be the address bucket again,
// stricter.
func (l *Limiter) bucketsFor(account, addr string) []bucket {
	if account == "" {
		return []bucket{{"i\x00" + addr, l.cfg.AddressBurst, l.cfg.AddressEvery}}
	}
	return []bucket{
		{"p\x00" + account + "\x00" + addr, l.cfg.PairBurst, l.cfg.PairEvery},
		{"i\x00" + addr, l.cfg.AddressBurst, l.cfg.AddressEvery},
		{"a\x00" + account, l.cfg.AccountBurst, l.cfg.AccountEvery},
	}
}

// Allow reports, without reserving anything, whether an attempt for account
// from addr would be let through now, and if not how long to wait.
func (l *Limiter) Allow(account, addr string) (retryAfter time.Duration, ok bool) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bucketsFor(account, addr) {
		if st, found := l.buckets[b.key]; found {
			if tokens := st.free(now); tokens < 1 {
				retryAfter = max(retryAfter, time.Duration(math.Ceil((1-tokens)*float64(b.every))))
			}
		}
	}
	return retryAfter, retryAfter == 0
}

// Attempt is one login attempt that holds a token of each of its buckets
// while the password is checked. Call exactly one of Succeed and Fail.
type Attempt struct {
	l      *Limiter
	held   []*bucketState
	pair   string
	shared []store.Bucket // the attempt's buckets in the shared store; nil without one
}

// Begin reserves a token from each bucket of (account, addr) before the
// password is hashed, so concurrent attempts cannot all slip past the limit.
// If a bucket is empty it reserves nothing and returns how long to wait.
func (l *Limiter) Begin(account, addr string) (a *Attempt, retryAfter time.Duration, ok bool) {
	now := l.cfg.Now()
	a, retryAfter, ok = l.beginLocal(account, addr, now)
	if !ok || a.shared == nil {
		return a, retryAfter, ok
	}
	// The shared buckets hold every node's failures. A store that does not
	// answer leaves the decision to this process's buckets.
	if wait, answered := l.sharedWait(a.shared, now); answered && wait > 0 {
		a.Release()
		return nil, wait, false
	}
	return a, 0, true
}

// beginLocal reserves a place in each in-process bucket.
func (l *Limiter) beginLocal(account, addr string, now time.Time) (a *Attempt, retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bs := l.bucketsFor(account, addr)
	states := make([]*bucketState, len(bs))
	for i, b := range bs {
		st, found := l.buckets[b.key]
		if !found {
			if len(l.buckets) >= l.cfg.MaxEntries {
				l.sweep(now)
			}
			st = &bucketState{lim: rate.NewLimiter(rate.Every(b.every), b.burst)}
			l.buckets[b.key] = st
		}
		states[i] = st
		if tokens := st.free(now); tokens < 1 {
			retryAfter = max(retryAfter, time.Duration(math.Ceil((1-tokens)*float64(b.every))))
		}
	}
	if retryAfter > 0 {
		return nil, retryAfter, false
	}
	for _, st := range states {
		st.inflight++
	}
	a = &Attempt{l: l, held: states, shared: l.sharedBuckets(bs)}
	if account != "" {
		a.pair = bs[0].key
	}
	return a, 0, true
}

// Succeed releases the attempt's places without spending tokens and forgets
// the (account, address) failures: a successful login costs nothing.
func (a *Attempt) Succeed() {
	a.l.mu.Lock()
	for _, st := range a.held {
		st.inflight--
	}
	if a.pair != "" {
		delete(a.l.buckets, a.pair)
	}
	a.l.mu.Unlock()
	if a.shared != nil && a.pair != "" {
		a.l.shareGo(func(ctx context.Context) error { return a.l.cfg.Shared.Forget(ctx, a.shared[0].Key) })
	}
}

// Release gives the attempt's places back and changes nothing else: for an
// attempt that neither succeeded nor guessed wrong (a malformed request, a
// store that is down). It must not forget failures, or a malformed request
// after each few guesses would reset the count.
func (a *Attempt) Release() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	for _, st := range a.held {
		st.inflight--
	}
}

// Fail spends a token of each of the attempt's buckets, here and in the
// shared store.
func (a *Attempt) Fail() {
	now := a.l.cfg.Now()
	a.l.mu.Lock()
	for _, st := range a.held {
		st.inflight--
		st.lim.AllowN(now, 1)
	}
	a.l.mu.Unlock()
	if a.shared != nil {
		a.l.shareGo(func(ctx context.Context) error { return a.l.cfg.Shared.Spend(ctx, a.shared, now) })
	}
}

// Len is the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// sweep drops refilled buckets (they limit nothing); if that frees too little,
// it drops arbitrary ones, trading a little leniency for bounded memory.
func (l *Limiter) sweep(now time.Time) {
	for k, st := range l.buckets {
		if st.inflight == 0 && st.lim.TokensAt(now) >= float64(st.lim.Burst()) {
			delete(l.buckets, k)
		}
	}
	for k, st := range l.buckets {
		if len(l.buckets) < l.cfg.MaxEntries*3/4 {
			break
		}
		if st.inflight == 0 {
			delete(l.buckets, k)
		}
	}
}

// sharedBuckets names bs in the shared store: hashed, so no username or
// address is stored in a key.
func (l *Limiter) sharedBuckets(bs []bucket) []store.Bucket {
	if l.cfg.Shared == nil {
		return nil
	}
	out := make([]store.Bucket, len(bs))
	for i, b := range bs {
		sum := sha256.Sum256([]byte(b.key))
		out[i] = store.Bucket{Key: hex.EncodeToString(sum[:16]), Burst: b.burst, Every: b.every}
	}
	return out
}

// sharedWait asks the shared store how long the attempt must wait; ok is
// false when the store did not answer in time (the caller then relies on
// the in-process buckets).
func (l *Limiter) sharedWait(bs []store.Bucket, now time.Time) (time.Duration, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.SharedTimeout)
	defer cancel()
	wait, err := l.cfg.Shared.Wait(ctx, bs, now)
	l.sharedDone(err)
	return wait, err == nil
}

// shareGo runs a write to the shared store under the timeout, synchronously:
// an attempt's failure must count before the next attempt asks.
func (l *Limiter) shareGo(f func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.SharedTimeout)
	defer cancel()
	l.sharedDone(f(ctx))
}

// sharedDone logs the shared store's failing and recovering, once each.
func (l *Limiter) sharedDone(err error) {
	l.failingMu.Lock()
	defer l.failingMu.Unlock()
	switch {
	case err != nil && l.failing.IsZero():
		l.failing = l.cfg.Now()
		l.cfg.Logger.Warn("the shared rate-limit store failed; limiting in this process only until it answers", "err", err)
	case err == nil && !l.failing.IsZero():
		l.failing = time.Time{}
		l.cfg.Logger.Info("the shared rate-limit store answers again")
	}
}

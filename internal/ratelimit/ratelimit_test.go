package ratelimit_test

import (
	"fmt"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/ratelimit"
)

func TestLockoutAndRecovery(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	l := ratelimit.New(ratelimit.Config{Now: clk.Now})
	for i := range 5 {
		if _, ok := l.Allow("alice", "198.51.100.7"); !ok {
			t.Fatalf("attempt %d refused", i)
		}
		fail(l, "alice", "198.51.100.7")
	}
	wait, ok := l.Allow("alice", "198.51.100.7")
	if ok || wait <= 0 || wait > time.Minute {
		t.Fatalf("after 5 failures: Allow = %v, %v; want refused with 0 < wait <= 1m", wait, ok)
	}
	clk.Add(wait)
	if _, ok := l.Allow("alice", "198.51.100.7"); !ok {
		t.Fatal("still locked after waiting Retry-After")
	}
}

func TestStrangerCannotLockOwnerOut(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	l := ratelimit.New(ratelimit.Config{Now: clk.Now})
	for range 40 {
		fail(l, "alice", "203.0.113.66")
	}
	if _, ok := l.Allow("alice", "203.0.113.66"); ok {
		t.Fatal("the attacker's address is not limited")
	}
	if _, ok := l.Allow("alice", "198.51.100.7"); !ok {
		t.Fatal("the owner, from another address, is locked out by a stranger")
	}
	// A distributed attack drains the per-account bucket, but only for a while.
	for i := range 60 {
		fail(l, "alice", fmt.Sprintf("192.0.2.%d", i))
	}
	wait, ok := l.Allow("alice", "198.51.100.7")
	if ok || wait > time.Minute {
		t.Fatalf("after a distributed attack: %v, %v; want a short lock", wait, ok)
	}
	clk.Add(wait)
	if _, ok := l.Allow("alice", "198.51.100.7"); !ok {
		t.Fatal("the per-account lock did not end by itself")
	}
}

func TestSuccessClearsPair(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	l := ratelimit.New(ratelimit.Config{Now: clk.Now})
	for range 4 {
		fail(l, "alice", "198.51.100.7")
	}
	if a, _, ok := l.Begin("alice", "198.51.100.7"); ok {
		a.Succeed()
	}
	for range 4 {
		fail(l, "alice", "198.51.100.7")
	}
	if _, ok := l.Allow("alice", "198.51.100.7"); !ok {
		t.Fatal("failures before a success still count")
	}
}

func TestBoundedMemory(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	l := ratelimit.New(ratelimit.Config{Now: clk.Now, MaxEntries: 300})
	for i := range 2000 {
		fail(l, fmt.Sprint("user", i), fmt.Sprint("addr", i))
	}
	if n := l.Len(); n > 300+3 {
		t.Fatalf("%d buckets held, cap 300", n)
	}
}

// fail records one failed attempt, if one may be made.
func fail(l *ratelimit.Limiter, account, addr string) {
	if a, _, ok := l.Begin(account, addr); ok {
		a.Fail()
	}
}

// Attempts made at the same moment cannot all slip past the limit: each
// reserves its token before the (slow) password check.
func TestConcurrentAttemptsReserve(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	l := ratelimit.New(ratelimit.Config{Now: clk.Now})
	var started atomic.Int64
	var wg sync.WaitGroup
	attempts := make(chan *ratelimit.Attempt, 100)
	for range 100 {
		wg.Go(func() {
			if a, _, ok := l.Begin("alice", "198.51.100.7"); ok {
				started.Add(1)
				attempts <- a
			}
		})
	}
	wg.Wait()
	close(attempts)
	if n := started.Load(); n != 5 {
		t.Fatalf("%d of 100 simultaneous attempts were let through, want the burst of 5", n)
	}
	// Successful logins give their tokens back.
	for a := range attempts {
		a.Succeed()
	}
	if _, ok := l.Allow("alice", "198.51.100.7"); !ok {
		t.Fatal("successful attempts still count against the limit")
	}
}

// An attempt that names no account is limited by its address alone:
// failures from many addresses never lock out a sign-in from another one, and
// a success does not forget the address's failures.
func TestNoAccountHasNoSharedBucket(t *testing.T) {
	l := ratelimit.New(ratelimit.Config{})
	for i := range 200 {
		a, _, ok := l.Begin("", fmt.Sprintf("192.0.2.%d", i%250))
		if !ok {
			continue
		}
		a.Fail()
	}
	if _, ok := l.Allow("", "198.51.100.7"); !ok {
		t.Fatal("failures without an account from other addresses locked out a fresh address")
	}
	for i := range 21 {
		a, _, ok := l.Begin("", "198.51.100.8")
		if !ok {
			t.Fatalf("refused at attempt %d, before the address burst (20) was spent", i)
		}
		if i == 10 {
			a.Succeed() // must not reset the address bucket
			continue
		}
		a.Fail()
	}
	if _, ok := l.Allow("", "198.51.100.8"); ok {
		t.Fatal("an address with no account is not limited, or a success forgot its failures")
	}
}

// Release neither spends nor forgets: failures before it still count.
func TestReleaseKeepsFailures(t *testing.T) {
	l := ratelimit.New(ratelimit.Config{})
	for range 4 {
		a, _, _ := l.Begin("alice", "192.0.2.1")
		a.Fail()
	}
	a, _, ok := l.Begin("alice", "192.0.2.1")
	if !ok {
		t.Fatal("refused before the burst was spent")
	}
	a.Release()
	a, _, ok = l.Begin("alice", "192.0.2.1")
	if !ok {
		t.Fatal("Release spent a token")
	}
	a.Fail()
	if _, ok := l.Allow("alice", "192.0.2.1"); ok {
		t.Fatal("Release forgot the failures before it")
	}
}

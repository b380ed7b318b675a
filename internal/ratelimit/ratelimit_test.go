package ratelimit_test

import (
	"fmt"
	"github.com/latchkey/latchkey/internal/fakeclock"
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
		l.Fail("alice", "198.51.100.7")
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
		l.Fail("alice", "203.0.113.66")
	}
	if _, ok := l.Allow("alice", "203.0.113.66"); ok {
		t.Fatal("the attacker's address is not limited")
	}
	if _, ok := l.Allow("alice", "198.51.100.7"); !ok {
		t.Fatal("the owner, from another address, is locked out by a stranger")
	}
	// A distributed attack drains the per-account bucket, but only for a while.
	for i := range 60 {
		l.Fail("alice", fmt.Sprintf("192.0.2.%d", i))
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
		l.Fail("alice", "198.51.100.7")
	}
	l.Succeed("alice", "198.51.100.7")
	for range 4 {
		l.Fail("alice", "198.51.100.7")
	}
	if _, ok := l.Allow("alice", "198.51.100.7"); !ok {
		t.Fatal("failures before a success still count")
	}
}

func TestBoundedMemory(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	l := ratelimit.New(ratelimit.Config{Now: clk.Now, MaxEntries: 300})
	for i := range 2000 {
		l.Fail(fmt.Sprint("user", i), fmt.Sprint("addr", i))
	}
	if n := l.Len(); n > 300+3 {
		t.Fatalf("%d buckets held, cap 300", n)
	}
}

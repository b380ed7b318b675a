package memlimit_test

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/memlimit"
)

// gcPercent reads GOGC (SetGCPercent is the only way to read it).
func gcPercent() int {
	v := debug.SetGCPercent(100)
	debug.SetGCPercent(v)
	return v
}

// waitLimit waits until ok holds for the memory limit.
func waitLimit(t *testing.T, what string, ok func(int64) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(debug.SetMemoryLimit(-1)) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the limit stayed at %d MiB", what, debug.SetMemoryLimit(-1)>>20)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLimitFollowsTheProcess(t *testing.T) {
	prevLimit, prevGC := debug.SetMemoryLimit(-1), gcPercent()
	stop := memlimit.Follow(memlimit.Policy{GCPercent: 200, Floor: 32 << 20, Factor: 1.5, Every: 5 * time.Millisecond})
	if got := gcPercent(); got != 200 {
		t.Fatalf("GOGC = %d, want 200", got)
	}
	// A small live heap: the floor binds.
	runtime.GC()
	waitLimit(t, "small heap", func(l int64) bool { return l == 32<<20 })

	// A live heap well above the floor raises the limit to 1.5 × it and more.
	hold := make([][]byte, 0, 64)
	for range 64 {
		hold = append(hold, make([]byte, 1<<20))
	}
	runtime.GC()
	waitLimit(t, "64 MiB live", func(l int64) bool { return l >= 96<<20 && l < 160<<20 })
	runtime.KeepAlive(hold)

	// Released again, it comes back down to the floor.
	hold = nil
	runtime.GC()
	waitLimit(t, "released", func(l int64) bool { return l == 32<<20 })

	stop()
	if got, gc := debug.SetMemoryLimit(-1), gcPercent(); got != prevLimit || gc != prevGC {
		t.Fatalf("after stop: limit %d GOGC %d, want %d and %d", got, gc, prevLimit, prevGC)
	}
	stop() // a second call changes nothing
	if got := debug.SetMemoryLimit(-1); got != prevLimit {
		t.Fatalf("a second stop changed the limit to %d", got)
	}
}

// Two servers in one process: the policy holds until the last one stops,
// whichever order they stop in, and then the process's own settings return.
func TestOverlappingFollows(t *testing.T) {
	prevLimit, prevGC := debug.SetMemoryLimit(-1), gcPercent()
	p := memlimit.Policy{GCPercent: 200, Floor: 40 << 20, Factor: 2, Every: time.Millisecond}
	for _, firstStops := range []int{0, 1} {
		stops := []func(){memlimit.Follow(p), memlimit.Follow(p)}
		stops[firstStops]()
		if gc := gcPercent(); gc != 200 {
			t.Fatalf("one server still runs, but GOGC = %d", gc)
		}
		stops[1-firstStops]()
		if got, gc := debug.SetMemoryLimit(-1), gcPercent(); got != prevLimit || gc != prevGC {
			t.Fatalf("after both stopped: limit %d GOGC %d, want %d and %d", got, gc, prevLimit, prevGC)
		}
	}
}

func TestLimit(t *testing.T) {
	p := memlimit.Policy{Floor: 44 << 20, Factor: 2}
	for _, tc := range []struct {
		live, nonHeap uint64
		want          int64
	}{
		{0, 8 << 20, 44 << 20},
		{10 << 20, 8 << 20, 44 << 20},
		{100 << 20, 8 << 20, 208 << 20},
		{10 << 20, 100 << 20, 120 << 20}, // many goroutine stacks
	} {
		if got := p.Limit(tc.live, tc.nonHeap); got != tc.want {
			t.Errorf("Limit(%d MiB live, %d MiB other) = %d MiB, want %d MiB", tc.live>>20, tc.nonHeap>>20, got>>20, tc.want>>20)
		}
	}
}

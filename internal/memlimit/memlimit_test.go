package memlimit_test

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
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

// stacks reads the memory the runtime holds for goroutine stacks, and the
// part of it the collector scans.
func stacks() (held, scanned int64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}, {Name: "/gc/scan/stack:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()), int64(s[1].Value.Uint64())
}

// deep parks a goroutine on release with about 16 KiB of stack in use.
func deep(n int, release chan struct{}) {
	var pad [1024]byte
	if n > 0 {
		deep(n-1, release)
	} else {
		<-release
	}
	runtime.KeepAlive(pad)
}

func TestLimitFollowsTheProcess(t *testing.T) {
	prevLimit, prevGC := debug.SetMemoryLimit(-1), gcPercent()
	stop := memlimit.Follow(memlimit.Policy{GCPercent: 200, Floor: 32 << 20, Factor: 1.5, Every: time.Millisecond})
	if got := gcPercent(); got != 200 {
		t.Fatalf("GOGC = %d, want 200", got)
	}
	// A small live heap: the floor binds.
	debug.FreeOSMemory()
	waitLimit(t, "small heap", func(l int64) bool { return l == 32<<20 })

	// A 64 MiB live heap and 2,000 deep goroutines: the limit allows 1.5 ×
	// the heap, plus the stacks themselves, plus half of them as room to grow.
	hold := make([][]byte, 0, 64)
	for range 64 {
		hold = append(hold, make([]byte, 1<<20))
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 2000 {
		wg.Go(func() { deep(16, release) })
	}
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // on failure too
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	held, scanned := stacks()
	if held < 16<<20 || scanned < 8<<20 {
		t.Fatalf("the goroutines hold only %d MiB of stack, %d MiB scanned", held>>20, scanned>>20)
	}
	// 1.5 × 64 MiB, the stacks held, half the scanned stacks; a little slack
	// for the heap's own bookkeeping.
	want := 96<<20 + held + scanned/2 - 4<<20
	waitLimit(t, "64 MiB live with deep stacks", func(l int64) bool { return l >= want })
	free()
	wg.Wait()
	runtime.KeepAlive(hold)

	// Released again, it comes back down to the floor.
	hold = nil
	debug.FreeOSMemory()
	waitLimit(t, "released", func(l int64) bool { return l == 32<<20 })

	stop()
	check := func(when string) {
		if got, gc := debug.SetMemoryLimit(-1), gcPercent(); got != prevLimit || gc != prevGC {
			t.Fatalf("%s: limit %d GOGC %d, want %d and %d", when, got, gc, prevLimit, prevGC)
		}
	}
	check("after stop")
	// The policy's goroutine has ended: no later tick sets a limit again.
	time.Sleep(20 * time.Millisecond)
	check("20 ms after stop")
	stop() // a second call changes nothing
	check("after a second stop")
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

// A zero interval means the default, not a panic.
func TestZeroInterval(t *testing.T) {
	stop := memlimit.Follow(memlimit.Policy{GCPercent: 100, Floor: 64 << 20, Factor: 2})
	time.Sleep(10 * time.Millisecond)
	stop()
}

func TestLimit(t *testing.T) {
	p := memlimit.Policy{Floor: 44 << 20, Factor: 2}
	for _, tc := range []struct {
		live, roots, nonHeap uint64
		want                 int64
	}{
		{0, 0, 8 << 20, 44 << 20},
		{10 << 20, 1 << 20, 8 << 20, 44 << 20},
		{100 << 20, 1 << 20, 8 << 20, 209 << 20},
		{10 << 20, 100 << 20, 100 << 20, 220 << 20}, // many deep goroutine stacks
	} {
		if got := p.Limit(tc.live, tc.roots, tc.nonHeap); got != tc.want {
			t.Errorf("Limit(%d MiB live, %d MiB roots, %d MiB other) = %d MiB, want %d MiB", tc.live>>20, tc.roots>>20, tc.nonHeap>>20, got>>20, tc.want>>20)
		}
	}
}

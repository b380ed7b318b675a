package memlimit_test

import (
	"context"
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

func TestLimitFollowsLiveHeap(t *testing.T) {
	prevLimit, prevGC := debug.SetMemoryLimit(-1), gcPercent()
	ctx, cancel := context.WithCancel(context.Background())
	memlimit.Follow(ctx, memlimit.Policy{GCPercent: 200, Floor: 8 << 20, Factor: 1.5, Every: 10 * time.Millisecond})
	if got := gcPercent(); got != 200 {
		t.Fatalf("GOGC = %d, want 200", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 8<<20 {
		t.Fatalf("limit = %d, want the floor", got)
	}

	// A live heap well above the floor raises the limit to 1.5 × it.
	hold := make([][]byte, 0, 64)
	for range 64 {
		hold = append(hold, make([]byte, 1<<20))
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) < 96<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d MiB did not follow a 64 MiB live heap", debug.SetMemoryLimit(-1)>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(hold)

	// When ctx ends, the process's own settings come back.
	cancel()
	for debug.SetMemoryLimit(-1) != prevLimit {
		if time.Now().After(deadline) {
			t.Fatal("the memory limit was not restored")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := gcPercent(); got != prevGC {
		t.Fatalf("GOGC = %d after the end, want %d", got, prevGC)
	}
}

func TestLimitFloor(t *testing.T) {
	p := memlimit.Policy{Floor: 44 << 20, Factor: 1.5}
	for live, want := range map[uint64]int64{0: 44 << 20, 20 << 20: 44 << 20, 100 << 20: 150 << 20} {
		if got := p.Limit(live); got != want {
			t.Errorf("Limit(%d MiB) = %d MiB, want %d MiB", live>>20, got>>20, want>>20)
		}
	}
}

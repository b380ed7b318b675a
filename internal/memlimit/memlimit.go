// Package memlimit keeps a server's heap small without starving it of CPU.
//
// The garbage collector's only knob by default is GOGC: the heap may grow by
// that percentage of what is live before the next collection. A token server
// has a small live heap and allocates fast, so at GOGC=100 it collects often
// (at GOGC=50 refresh throughput dropped by a sixth), while every password hash
// leaves megabytes of garbage that GOGC lets pile up to twice what is live.
//
// Follow sets a generous GOGC and a soft memory limit that follows the
// process: max(floor, live heap + (factor-1) × (live heap + stacks + globals) +
// the runtime's other memory). With a
// small live heap the floor binds and the collector runs rarely; during a
// burst of hashes the limit caps the garbage; and when the live heap or the
// goroutine stacks grow (many connections) the limit grows with them, so the
// collector is never pinned against a ceiling the process has outgrown.
package memlimit

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Policy is a Follow configuration.
type Policy struct {
	GCPercent int           // GOGC while the limit does not bind
	Floor     int64         // bytes: the limit never goes below this
	Factor    float64       // like 1 + GOGC/100 above the floor: the heap may grow by (Factor-1) × (live heap + stacks + globals)
	Every     time.Duration // how often the heap is read; zero means a second
}

// Limit is the memory limit p sets for a live heap of live bytes, roots bytes
// of goroutine stacks and globals that the collector scans, and nonHeap bytes
// the runtime holds outside the heap (stacks included). Like Go's own pacer,
// it lets the heap grow by (Factor-1) × (live + roots) beyond what is live, so
// deep stacks buy garbage room as they do at the default.
func (p Policy) Limit(live, roots, nonHeap uint64) int64 {
	grow := (p.Factor - 1) * float64(live+roots)
	return max(p.Floor, int64(float64(live)+grow)+int64(nonHeap))
}

// The process's settings are global, so one policy is in force at a time:
// the first Follow applies its own, later ones share it, and the last stop
// restores what the process had before.
var (
	mu         sync.Mutex
	users      int
	prevGC     int
	prevLimit  int64
	cancelLoop context.CancelFunc
	loopDone   chan struct{}
)

// Follow applies p and keeps the limit following the process until stop is
// called. stop restores the previous GOGC and memory limit once every Follow
// has been stopped, and returns after the policy's goroutine has ended.
func Follow(p Policy) (stop func()) {
	mu.Lock()
	defer mu.Unlock()
	users++
	if users == 1 {
		prevGC = debug.SetGCPercent(p.GCPercent)
		prevLimit = debug.SetMemoryLimit(p.Floor)
		ctx, cancel := context.WithCancel(context.Background())
		cancelLoop, loopDone = cancel, make(chan struct{})
		go follow(ctx, p, loopDone)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			if users--; users > 0 {
				return
			}
			cancelLoop()
			<-loopDone
			debug.SetGCPercent(prevGC)
			debug.SetMemoryLimit(prevLimit)
		})
	}
}

// memory classes of runtime/metrics: the total the runtime has mapped, and
// the parts of it that are the heap (in use, or free for reuse).
var classes = []string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/heap/live:bytes",
	"/gc/scan/stack:bytes",
	"/gc/scan/globals:bytes",
}

func follow(ctx context.Context, p Policy, done chan struct{}) {
	defer close(done)
	every := p.Every
	if every <= 0 {
		every = time.Second
	}
	samples := make([]metrics.Sample, len(classes))
	for i, name := range classes {
		samples[i].Name = name
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			metrics.Read(samples)
			var v [8]uint64
			for i, s := range samples {
				if s.Value.Kind() != metrics.KindUint64 {
					return // not this runtime's metrics: keep the floor
				}
				v[i] = s.Value.Uint64()
			}
			heap := v[1] + v[2] + v[3] + v[4]
			var nonHeap uint64
			if v[0] > heap {
				nonHeap = v[0] - heap
			}
			debug.SetMemoryLimit(p.Limit(v[5], v[6]+v[7], nonHeap))
		}
	}
}

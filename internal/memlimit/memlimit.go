// Package memlimit keeps a server's heap small without starving it of CPU.
//
// The garbage collector's only knob by default is GOGC: the heap may grow by
// that percentage of what is live before the next collection. A token server
// has a small live heap and allocates fast, so at GOGC=100 it collects very
// often (refresh throughput drops by a sixth at GOGC=50), while every password
// hash leaves megabytes of garbage that GOGC lets pile up to twice what is live.
//
// Follow sets a generous GOGC and a soft memory limit that follows the live
// heap: max(floor, factor × live). With a small live heap the floor binds and
// the collector runs rarely; during a burst of hashes the limit caps the
// garbage; and when the live heap grows (many connections) the limit grows with
// it, so the collector never runs back to back against a fixed ceiling.
package memlimit

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Policy is a Follow configuration.
type Policy struct {
	GCPercent int           // GOGC while the limit does not bind
	Floor     int64         // bytes: the limit never goes below this
	Factor    float64       // the limit is at least Factor × the live heap
	Every     time.Duration // how often the live heap is read
}

const liveHeap = "/gc/heap/live:bytes"

// Limit is the memory limit p sets for a live heap of live bytes.
func (p Policy) Limit(live uint64) int64 {
	return max(p.Floor, int64(p.Factor*float64(live)))
}

// Follow applies p until ctx ends, then restores the previous GOGC and limit.
func Follow(ctx context.Context, p Policy) {
	prevGC := debug.SetGCPercent(p.GCPercent)
	prevLimit := debug.SetMemoryLimit(p.Floor)
	sample := []metrics.Sample{{Name: liveHeap}}
	go func() {
		t := time.NewTicker(p.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				debug.SetGCPercent(prevGC)
				debug.SetMemoryLimit(prevLimit)
				return
			case <-t.C:
				metrics.Read(sample)
				if sample[0].Value.Kind() == metrics.KindUint64 {
					debug.SetMemoryLimit(p.Limit(sample[0].Value.Uint64()))
				}
			}
		}
	}()
}

package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
)

// family caches the children of a metric vector by their label values, with a
// bound on how many there may be.
//
// The hot path is one atomic load and one map lookup, without locks or
// allocations: client_golang's WithLabelValues hashes the values and
// allocates their slice on every call. The map is replaced, never changed, on
// the rare miss. Beyond max distinct keys, a key is counted under other, so
// whatever reaches a label (a grant or store operation added by an
// application, an odd route) cannot grow the number of series without bound.
type family[K comparable, V any] struct {
	m     atomic.Pointer[map[K]V]
	mu    sync.Mutex // serializes misses
	max   int
	other K
	make  func(K) V
}

func newFamily[K comparable, V any](max int, other K, make func(K) V, known ...K) *family[K, V] {
	f := &family[K, V]{max: max, other: other, make: make}
	m := map[K]V{}
	f.m.Store(&m)
	for _, k := range known {
		f.get(k)
	}
	return f
}

// get returns the child of k, creating it (or using other's) on a miss.
func (f *family[K, V]) get(k K) V {
	if v, ok := (*f.m.Load())[k]; ok {
		return v
	}
	return f.miss(k)
}

func (f *family[K, V]) miss(k K) V {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.m.Load()
	if v, ok := old[k]; ok {
		return v
	}
	if len(old) >= f.max {
		k = f.other
		if v, ok := old[k]; ok {
			return v
		}
	}
	next := make(map[K]V, len(old)+1)
	maps.Copy(next, old)
	v := f.make(k)
	next[k] = v
	f.m.Store(&next)
	return v
}

// lookup returns the child of k if it exists, without creating one.
func (f *family[K, V]) lookup(k K) (V, bool) {
	v, ok := (*f.m.Load())[k]
	return v, ok
}

// Package fakeclock is a settable clock for tests: latchkey takes time as a
// `Now func() time.Time`, and tests pass a Clock's Now and move it forward
// instead of sleeping.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a clock that only moves when told to. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock showing t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

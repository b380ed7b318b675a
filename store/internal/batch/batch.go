// Package batch is group commit for a store: calls that arrive while the
// store is busy writing are written together by the next write.
//
// A Group allows a fixed number of writes at once. A call that finds one of
// them free writes its item itself, at once and alone, so a lone call pays
// nothing for batching: no queue, no hand-over to another goroutine. A call
// that finds them all busy waits in a queue; when a write ends and calls are
// waiting, the writer's slot passes to a new goroutine that writes everything
// queued, up to a limit, as one batch. So under load a batch is whatever
// arrived during the previous write. Each item keeps its own result: the write
// function answers every item of a batch separately.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed answers calls made to, or still queued in, a closed Group.
var ErrClosed = errors.New("batch: closed")

// Func writes one batch and returns one result per item, in the order of
// items; an error for the whole batch is returned for every item.
type Func[In, Out any] func(ctx context.Context, items []In) ([]Out, error)

// Group batches calls to one Func. The zero value is not usable; see New.
type Group[In, Out any] struct {
	write   Func[In, Out]
	writers int
	max     int
	timeout time.Duration

	mu      sync.Mutex
	active  int // writes under way, at most writers
	queue   []*call[In, Out]
	closed  bool
	writing sync.WaitGroup // one per active write
}

type call[In, Out any] struct {
	ctx  context.Context // the caller's: a call whose context has ended is not written
	in   In
	out  Out
	err  error
	done chan struct{} // closed when out and err are set; nil for a writer's own item
}

// New returns a Group that writes batches of at most maxItems items with write,
// at most writers at once.
//
// A batch is written for every caller in it, so no one caller's deadline may
// cut it short: write gets a context of its own, which ends after timeout, or
// never if timeout is 0 (for a store whose own timeouts bound every write:
// a context that can end costs some drivers a goroutine per statement).
func New[In, Out any](writers, maxItems int, timeout time.Duration, write Func[In, Out]) *Group[In, Out] {
	return &Group[In, Out]{write: write, writers: max(1, writers), max: max(1, maxItems), timeout: timeout}
}

// Do writes in, alone if a write slot is free and otherwise as part of the
// next batch, and returns its result. A call whose context has ended is
// refused before its item is queued; one whose context ends while it waits
// returns the context's error, but its item may still be written: like any
// store call that times out, its effect is unknown.
func (g *Group[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	var zero Out
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return zero, ErrClosed
	}
	if g.active < g.writers {
		g.active++
		g.writing.Add(1)
		g.mu.Unlock()
		defer g.next()
		own := &call[In, Out]{ctx: ctx, in: in}
		g.writeBatch([]*call[In, Out]{own})
		return own.out, own.err
	}
	c := &call[In, Out]{ctx: ctx, in: in, done: make(chan struct{})}
	g.queue = append(g.queue, c)
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// next is called by a writer whose write ended: if calls are queued, its slot
// passes to a goroutine that writes them; otherwise the slot is freed.
func (g *Group[In, Out]) next() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 || g.closed {
		g.active--
		g.writing.Done()
		return
	}
	go g.drain()
}

// drain writes queued calls, a batch at a time, until none is left.
func (g *Group[In, Out]) drain() {
	batch := make([]*call[In, Out], 0, g.max)
	for {
		g.mu.Lock()
		if len(g.queue) == 0 || g.closed {
			g.active--
			g.writing.Done()
			g.mu.Unlock()
			return
		}
		n := min(len(g.queue), g.max)
		batch = append(batch[:0], g.queue[:n]...)
		clear(g.queue[:n])
		g.queue = g.queue[n:]
		g.mu.Unlock()
		g.writeBatch(batch)
	}
}

// writeBatch writes the items of batch and answers each call. Calls whose
// context has ended are answered with its error and left out; a write that
// panics fails its batch instead of taking the writer down.
func (g *Group[In, Out]) writeBatch(batch []*call[In, Out]) {
	live := batch[:0:0]
	items := make([]In, 0, len(batch))
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			if c.done != nil {
				close(c.done)
			}
			continue
		}
		live = append(live, c)
		items = append(items, c.in)
	}
	if len(live) == 0 {
		return
	}
	outs, err := g.run(items)
	if err == nil && len(outs) != len(items) {
		err = errors.New("batch: the write answered a different number of items")
	}
	for i, c := range live {
		if err != nil {
			c.err = err
		} else {
			c.out = outs[i]
		}
		if c.done != nil {
			close(c.done)
		}
	}
}

// run calls the write function under the Group's timeout, and turns a panic
// into an error.
func (g *Group[In, Out]) run(items []In) (outs []Out, err error) {
	defer func() {
		if v := recover(); v != nil {
			outs, err = nil, fmt.Errorf("batch: the write panicked: %v", v)
		}
	}()
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if g.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
	}
	defer cancel()
	return g.write(ctx, items)
}

// Close waits for the writes under way; calls still queued, and calls made
// after, are answered ErrClosed.
func (g *Group[In, Out]) Close() {
	g.mu.Lock()
	g.closed = true
	queued := g.queue
	g.queue = nil
	g.mu.Unlock()
	for _, c := range queued {
		c.err = ErrClosed
		close(c.done)
	}
	g.writing.Wait()
}

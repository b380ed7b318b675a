package batch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A lone call is written at once, in a batch of its own, by the calling
// goroutine itself.
func TestLoneCallIsWrittenAlone(t *testing.T) {
	var sizes []int
	g := New(1, 8, 0, func(_ context.Context, in []int) ([]int, error) {
		sizes = append(sizes, len(in))
		return slices.Clone(in), nil
	})
	defer g.Close()
	for i := range 3 {
		got, err := g.Do(t.Context(), i)
		if err != nil || got != i {
			t.Fatalf("Do(%d) = %d, %v", i, got, err)
		}
	}
	if !slices.Equal(sizes, []int{1, 1, 1}) {
		t.Fatalf("batch sizes %v, want [1 1 1]", sizes)
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (g *Group[In, Out]) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// sizeRecorder is a write function's bookkeeping: the size of every batch it
// was given; the first write waits until release is closed.
type sizeRecorder struct {
	mu      sync.Mutex
	sizes   []int
	release chan struct{}
}

func newSizeRecorder() *sizeRecorder { return &sizeRecorder{release: make(chan struct{})} }

// record notes a batch of n and, for the first batch, waits for release.
func (r *sizeRecorder) record(n int) {
	r.mu.Lock()
	r.sizes = append(r.sizes, n)
	first := len(r.sizes) == 1
	r.mu.Unlock()
	if first {
		<-r.release
	}
}

func (r *sizeRecorder) batches() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sizes)
}

// Calls that arrive while every writer is busy are written together by the
// next write, and each gets its own result.
func TestCallsQueuedDuringAWriteShareTheNext(t *testing.T) {
	rec := newSizeRecorder()
	g := New(1, 100, 0, func(_ context.Context, in []int) ([]int, error) {
		rec.record(len(in))
		out := make([]int, len(in))
		for i, v := range in {
			out[i] = v * 10
		}
		return out, nil
	})
	defer g.Close()
	var wg sync.WaitGroup
	do := func(i int) {
		wg.Go(func() {
			if got, err := g.Do(t.Context(), i); err != nil || got != i*10 {
				t.Errorf("Do(%d) = %d, %v", i, got, err)
			}
		})
	}
	do(1)
	waitFor(t, "the first write", func() bool { return len(rec.batches()) == 1 })
	for i := 2; i <= 20; i++ {
		do(i)
	}
	waitFor(t, "19 queued calls", func() bool { return g.queued() == 19 })
	close(rec.release)
	wg.Wait()
	if got := rec.batches(); !slices.Equal(got, []int{1, 19}) {
		t.Fatalf("batch sizes %v, want [1 19]", got)
	}
}

// A batch holds at most max items; the rest wait for the next one.
func TestBatchesAreCapped(t *testing.T) {
	rec := newSizeRecorder()
	g := New(1, 4, 0, func(_ context.Context, in []int) ([]int, error) {
		rec.record(len(in))
		return in, nil
	})
	defer g.Close()
	var wg sync.WaitGroup
	wg.Go(func() { g.Do(t.Context(), 0) })
	waitFor(t, "the first write", func() bool { return len(rec.batches()) == 1 })
	for i := 1; i <= 10; i++ {
		wg.Go(func() { g.Do(t.Context(), i) })
	}
	waitFor(t, "10 queued calls", func() bool { return g.queued() == 10 })
	close(rec.release)
	wg.Wait()
	if got := rec.batches(); !slices.Equal(got, []int{1, 4, 4, 2}) {
		t.Fatalf("batch sizes %v, want [1 4 4 2]", got)
	}
}

// A failed write fails every call of its batch.
func TestFailedWriteFailsTheBatch(t *testing.T) {
	boom := errors.New("boom")
	g := New(2, 4, 0, func(context.Context, []int) ([]int, error) { return nil, boom })
	defer g.Close()
	if _, err := g.Do(t.Context(), 1); !errors.Is(err, boom) {
		t.Fatalf("Do = %v, want %v", err, boom)
	}
}

// A write that answers the wrong number of items is an error, not a panic.
func TestShortAnswerIsAnError(t *testing.T) {
	g := New(1, 4, 0, func(context.Context, []int) ([]int, error) { return nil, nil })
	defer g.Close()
	if _, err := g.Do(t.Context(), 1); err == nil {
		t.Fatal("Do = nil error for a write that answered nothing")
	}
}

// A write's context ends after the Group's timeout, whatever the callers'.
func TestTimeout(t *testing.T) {
	g := New(1, 4, 10*time.Millisecond, func(ctx context.Context, in []int) ([]int, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	defer g.Close()
	if _, err := g.Do(t.Context(), 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v, want the write's deadline", err)
	}
}

// An ended context never queues its item; one that ends while waiting
// returns its error, and its item is left out of the next batch.
func TestContext(t *testing.T) {
	var mu sync.Mutex
	var written []int
	release := make(chan struct{})
	g := New(1, 4, 0, func(_ context.Context, in []int) ([]int, error) {
		mu.Lock()
		written = append(written, in...)
		mu.Unlock()
		<-release
		return in, nil
	})
	var wg sync.WaitGroup
	wg.Go(func() { g.Do(t.Context(), 0) })
	waitFor(t, "the first write", func() bool { mu.Lock(); defer mu.Unlock(); return len(written) == 1 })
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.Do(canceled, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do(canceled) = %v", err)
	}
	short, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	if _, err := g.Do(short, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do(short deadline, every writer busy) = %v", err)
	}
	close(release)
	wg.Wait()
	g.Close()
	if !slices.Equal(written, []int{0}) {
		t.Fatalf("items written: %v, want [0]: a call canceled before it was queued, or whose context ended while it waited, is never written", written)
	}
}

// Close answers queued calls ErrClosed, and so every later call.
func TestClose(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	g := New(1, 4, 0, func(_ context.Context, in []int) ([]int, error) {
		if in[0] == 0 {
			close(started)
			<-release
		}
		return in, nil
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := g.Do(t.Context(), 0); err != nil {
			t.Errorf("the write under way = %v, want it to finish", err)
		}
	})
	<-started
	queued := make(chan error)
	go func() { _, err := g.Do(t.Context(), 1); queued <- err }()
	waitFor(t, "a queued call", func() bool { return g.queued() == 1 })
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	g.Close()
	if err := <-queued; !errors.Is(err, ErrClosed) {
		t.Fatalf("queued call at Close = %v, want ErrClosed", err)
	}
	wg.Wait()
	if _, err := g.Do(t.Context(), 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close = %v, want ErrClosed", err)
	}
}

// A write that panics fails its batch, and the Group goes on writing.
func TestPanickingWriteFailsItsBatch(t *testing.T) {
	g := New(1, 4, 0, func(_ context.Context, in []int) ([]int, error) {
		if in[0] == 0 {
			panic("boom")
		}
		return in, nil
	})
	defer g.Close()
	if _, err := g.Do(t.Context(), 0); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("Do(panicking write) = %v, want an error saying it panicked", err)
	}
	if got, err := g.Do(t.Context(), 1); err != nil || got != 1 {
		t.Fatalf("Do after a panic = %d, %v: the write slot was not released", got, err)
	}
}

// Package logwriter batches log lines on their way to a file: group commit
// for a log.
//
// A server that logs a line per request pays a write system call per line
// when its logger writes straight to stderr; on a small machine that call is
// a tenth of what a cheap request costs. A Writer appends each line to a
// buffer and returns; one goroutine writes whatever has gathered, so a lone
// line goes out at once and lines that arrive during a write share the next
// one. Nothing is dropped: when the buffer holds MaxBuffer bytes (the file
// is slower than the lines), Write waits. Close writes what is left.
package logwriter

import (
	"io"
	"sync"
)

// MaxBuffer is how many bytes may wait to be written before Write waits.
const MaxBuffer = 1 << 20

// Writer is an io.Writer that batches writes to another. Each Write is kept
// whole and in order: a log handler's one Write per record stays one line.
type Writer struct {
	out io.Writer

	mu      sync.Mutex
	room    sync.Cond // signalled when the buffer is taken
	buf     []byte
	closed  bool
	wake    chan struct{} // a line is waiting
	quit    chan struct{} // closed by Close
	stopped chan struct{} // closed when the last batch is written
}

// New starts a Writer on out. Close it to write what is buffered.
func New(out io.Writer) *Writer {
	w := &Writer{out: out, wake: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}
	w.room.L = &w.mu
	go w.loop()
	return w
}

// Write buffers a copy of p; after Close it writes p straight to the file.
// It never fails: an error of the file is the file's (stderr has nowhere
// else to report it).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.buf) > 0 && len(w.buf)+len(p) > MaxBuffer && !w.closed {
		w.room.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // the writer is already due to look
	}
	return len(p), nil
}

func (w *Writer) loop() {
	defer close(w.stopped)
	var spare []byte
	for {
		quit := false
		select {
		case <-w.wake:
		case <-w.quit:
			quit = true // Close has marked the Writer closed: nothing more is buffered after this
		}
		w.mu.Lock()
		batch := w.buf
		w.buf = spare[:0]
		w.room.Broadcast()
		w.mu.Unlock()
		if len(batch) > 0 {
			w.out.Write(batch)
		}
		if quit {
			return
		}
		if cap(batch) <= MaxBuffer { // keep a buffer of ordinary size
			spare = batch
		} else {
			spare = nil
		}
	}
}

// Close writes what is buffered and waits until it is written; later writes
// go straight to the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.room.Broadcast()
	w.mu.Unlock()
	close(w.quit)
	<-w.stopped
	return nil
}

// Package audit keeps the security trail: every sign-in and failed sign-in,
// detected refresh-token reuse, ended session, password change, sign-up,
// rate limit, identity linked or unlinked, and the operators' changes to
// users, clients and keys.
//
// A Recorder is a latchkey.Observer: give it to latchkey.Config.Observer and
// server.Config.Observer and it picks the security-relevant events out of
// everything they report. Each becomes one store.Event, written as a JSON
// line (to a file or standard output) and kept in the store (store.Audit)
// for a bounded retention.
//
// Recording never holds up a request for long: Observe only queues the
// event, and a background writer stores batches with a timeout. Nothing is
// lost silently: an event that cannot be stored, or that finds the queue
// full, is written to the error log in full.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store"
)

// Kinds of audit events (store.Event.Kind).
const (
	KindLogin            = "login"
	KindLoginFailed      = "login_failed"
	KindRefreshReused    = "refresh_reused"
	KindSessionRevoked   = "session_revoked"
	KindPasswordChanged  = "password_changed"
	KindUserCreated      = "user_created"
	KindUserDisabled     = "user_disabled"
	KindUserEnabled      = "user_enabled"
	KindClientAdded      = "client_added"
	KindClientRemoved    = "client_removed"
	KindKeyRotated       = "key_rotated"
	KindRateLimited      = "rate_limited"
	KindIdentityLinked   = "identity_linked"
	KindIdentityUnlinked = "identity_unlinked"
)

// DefaultRetention is how long the store keeps events unless told otherwise.
const DefaultRetention = 90 * 24 * time.Hour

// Config configures a Recorder.
type Config struct {
	// Store keeps the events; nil keeps none (the JSON lines only).
	Store store.Audit
	// Lines receives each event as one JSON line; nil writes none.
	Lines io.Writer
	// Retention is how long the store keeps events; zero means
	// DefaultRetention.
	Retention time.Duration
	// Logger receives events that could not be stored; nil discards them
	// (do not: that is the one place they survive an outage).
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limits of the background writer.
const (
	queueSize    = 4096
	batchSize    = 256
	storeTimeout = 5 * time.Second
	// batchWait is how long the writer gathers events after the first of a
	// batch: one store write per batch instead of one per sign-in, which on
	// SQLite's single writer is what a busy server notices.
	batchWait = 25 * time.Millisecond
)

// Recorder records audit events. Create it with New and Close it on
// shutdown, which flushes the queue.
type Recorder struct {
	cfg   Config
	queue chan store.Event
	done  chan struct{}

	// mu guards closed against enqueues racing Close: a send never meets a
	// closed queue.
	mu     sync.RWMutex
	closed bool

	linesMu sync.Mutex
}

// New starts a Recorder.
func New(cfg Config) *Recorder {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Recorder{cfg: cfg, queue: make(chan store.Event, queueSize), done: make(chan struct{})}
	go r.write()
	return r
}

// Observe records e if it is security-relevant. It never blocks: with the
// queue full, the event goes to the error log instead.
func (r *Recorder) Observe(_ context.Context, e latchkey.Event) {
	ev, ok := Convert(e)
	if !ok {
		return
	}
	r.enqueue(ev)
}

// Record records an event made by hand (the CLI's changes to users, clients
// and keys). Like Observe, it does not wait for the store; Close does.
func (r *Recorder) Record(ev store.Event) {
	if ev.ID == "" {
		ev.ID = NewID()
	}
	if ev.At.IsZero() {
		ev.At = r.cfg.Now()
	}
	r.enqueue(ev)
}

func (r *Recorder) enqueue(ev store.Event) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.lost(ev, errors.New("the audit recorder is closed"))
		return
	}
	select {
	case r.queue <- ev:
	default:
		r.lost(ev, errors.New("the audit queue is full"))
	}
}

// lost writes an event that could not be stored to the error log, whole.
func (r *Recorder) lost(ev store.Event, err error) {
	b, _ := json.Marshal(lineOf(ev))
	r.cfg.Logger.Error("audit event not stored", "err", err, "event", string(b))
}

// write stores queued events in batches until Close.
func (r *Recorder) write() {
	defer close(r.done)
	for ev := range r.queue {
		batch := []store.Event{ev}
		timer := time.NewTimer(batchWait)
	more:
		for len(batch) < batchSize {
			select {
			case ev, ok := <-r.queue:
				if !ok {
					break more
				}
				batch = append(batch, ev)
			case <-timer.C:
				break more
			}
		}
		timer.Stop()
		r.flush(batch)
	}
}

func (r *Recorder) flush(batch []store.Event) {
	if r.cfg.Lines != nil {
		r.linesMu.Lock()
		enc := json.NewEncoder(r.cfg.Lines)
		for _, ev := range batch {
			if err := enc.Encode(lineOf(ev)); err != nil {
				r.cfg.Logger.Error("writing the audit log failed", "err", err)
				break
			}
		}
		r.linesMu.Unlock()
	}
	if r.cfg.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.cfg.Store.AppendEvents(ctx, batch); err != nil {
		for _, ev := range batch {
			r.lost(ev, err)
		}
	}
}

// Close stores what is queued and stops the writer. Events observed after
// Close go to the error log.
func (r *Recorder) Close() error {
	r.mu.Lock()
	already := r.closed
	if !already {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	<-r.done
	return nil
}

// Purge deletes stored events older than the retention.
func (r *Recorder) Purge(ctx context.Context) (int, error) {
	if r.cfg.Store == nil {
		return 0, nil
	}
	return r.cfg.Store.PurgeEvents(ctx, r.cfg.Now().Add(-r.cfg.Retention))
}

// NewID is a random event id.
func NewID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Line is an event as a JSON line of --audit-log.
type Line struct {
	ID        string          `json:"id"`
	At        time.Time       `json:"at"`
	Kind      string          `json:"kind"`
	Actor     string          `json:"actor"`
	UserID    string          `json:"user_id,omitempty"`
	SessionID string          `json:"session_id,omitempty"`
	IP        string          `json:"ip,omitempty"`
	UserAgent string          `json:"user_agent,omitempty"`
	Detail    json.RawMessage `json:"detail,omitempty"`
}

func lineOf(ev store.Event) Line {
	l := Line{ID: ev.ID, At: ev.At.UTC(), Kind: ev.Kind, Actor: ev.Actor, UserID: ev.UserID, SessionID: ev.SessionID,
		IP: ev.IP, UserAgent: ev.UserAgent}
	if ev.Detail != "" && json.Valid([]byte(ev.Detail)) {
		l.Detail = json.RawMessage(ev.Detail)
	}
	return l
}

// LineOf is ev as a JSON line.
func LineOf(ev store.Event) Line { return lineOf(ev) }

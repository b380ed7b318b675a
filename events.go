package latchkey

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/store"
)

// EventKind names what an Event reports.
type EventKind string

// The kinds of event Auth reports. The token server adds its own (sign-in
// attempts, password changes, …) in package server.
const (
	EventLogin   EventKind = "login"          // a session started (Login)
	EventRefresh EventKind = "refresh"        // a refresh was answered; Outcome says how
	EventVerify  EventKind = "verify"         // an access token was checked; Outcome says how
	EventRevoke  EventKind = "revoke"         // a session ended; Reason says why
	EventReuse   EventKind = "reuse_detected" // an old refresh token was replayed and its session revoked
	EventStore   EventKind = "store"          // a call to the core store; Op, Duration, Err
	EventFeed    EventKind = "feed"           // a poll of the revocation feed; Duration is how far behind this node is
)

// The kinds of event the token server (package server) reports to its
// Config.Observer.
const (
	// EventSignIn is a sign-in attempt through a grant: Outcome
	// OutcomeSuccess or OutcomeFailure (Message says why), Grant, and the
	// user when known.
	EventSignIn EventKind = "sign_in"
	// EventRateLimited is an attempt refused by the login rate limit.
	EventRateLimited EventKind = "rate_limited"
	// EventPasswordChanged is a password change; the user's other sessions end.
	EventPasswordChanged EventKind = "password_changed"
	// EventUserCreated is a new account: registration or a provider sign-up
	// (Message names the provider).
	EventUserCreated EventKind = "user_created"
	// EventIdentityLinked and EventIdentityUnlinked are links to provider
	// identities made and removed; Message names the provider.
	EventIdentityLinked   EventKind = "identity_linked"
	EventIdentityUnlinked EventKind = "identity_unlinked"
)

// Outcomes of refreshes and verifications (Event.Outcome).
const (
	OutcomeOK          = "ok"          // a verified access token
	OutcomeRotated     = "rotated"     // a refresh that rotated the session
	OutcomeGrace       = "grace"       // a refresh inside the grace window: the successor again
	OutcomeReused      = "reused"      // a replayed refresh token
	OutcomeExpired     = "expired"     // an expired token or session
	OutcomeRevoked     = "revoked"     // a revoked token or session
	OutcomeInvalid     = "invalid"     // anything else the caller got wrong
	OutcomeUnavailable = "unavailable" // the store did not answer
	OutcomeSuccess     = "success"     // a sign-in that found its user
	OutcomeFailure     = "failure"     // a sign-in with wrong credentials
)

// Event is one thing latchkey did, for metrics and audit trails. Only the
// fields of its kind are set. It never holds a token or a secret.
type Event struct {
	Kind    EventKind
	At      time.Time
	Outcome string // refresh, verify, sign-in attempts
	Reason  Reason // revoke
	Actor   string // who caused it: "user", "admin", "system", or an OAuth client id
	Grant   string // the sign-in grant (server events)

	UserID, SessionID, ClientID string
	IP, UserAgent               string
	// Generation and Current are, for reuse, the generation replayed and the
	// session's generation when it was.
	Generation, Current uint64
	// Message is a human sentence (why a sign-in failed, say).
	Message string

	Op       string        // store: the method called
	Duration time.Duration // store: how long it took; feed: the lag
	Err      error         // store: its error, if any
}

// Observer is told what happens. Observe is called on the request's path:
// it must be quick and must not block (hand slow work to a goroutine with a
// bounded queue).
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc is an Observer that is a function.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f.
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// Observers returns an Observer that tells each of os in turn; nil ones are
// skipped.
func Observers(os ...Observer) Observer {
	var live []Observer
	for _, o := range os {
		if o != nil {
			live = append(live, o)
		}
	}
	return ObserverFunc(func(ctx context.Context, e Event) {
		for _, o := range live {
			o.Observe(ctx, e)
		}
	})
}

// observe reports e to the configured observer, if any.
func (a *Auth) observe(ctx context.Context, e Event) {
	if a.cfg.Observer == nil {
		return
	}
	if e.At.IsZero() {
		e.At = a.cfg.Now()
	}
	a.cfg.Observer.Observe(ctx, e)
}

// outcome classifies the error of a refresh or a verification.
func outcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	var e *Error
	if !errors.As(err, &e) {
		return OutcomeInvalid
	}
	switch e.Code {
	case CodeRefreshReused:
		return OutcomeReused
	case CodeTokenExpired, CodeSessionExpired:
		return OutcomeExpired
	case CodeTokenRevoked:
		return OutcomeRevoked
	case CodeUnavailable:
		return OutcomeUnavailable
	}
	return OutcomeInvalid
}

// observedStore times every call Auth makes to the core store and reports it.
type observedStore struct {
	store.Store
	a *Auth
}

func (o observedStore) done(ctx context.Context, op string, start time.Time, err error) {
	o.a.observe(ctx, Event{Kind: EventStore, Op: op, Duration: time.Since(start), Err: err})
}

func (o observedStore) CreateSession(ctx context.Context, s store.Session) (err error) {
	defer func(t time.Time) { o.done(ctx, "create_session", t, err) }(time.Now())
	return o.Store.CreateSession(ctx, s)
}

func (o observedStore) Session(ctx context.Context, id string) (s store.Session, err error) {
	defer func(t time.Time) { o.done(ctx, "session", t, notFoundIsFine(err)) }(time.Now())
	return o.Store.Session(ctx, id)
}

func (o observedStore) RotateSession(ctx context.Context, id string, r store.Rotation) (s store.Session, err error) {
	defer func(t time.Time) { o.done(ctx, "rotate_session", t, conflictIsFine(err)) }(time.Now())
	return o.Store.RotateSession(ctx, id, r)
}

func (o observedStore) UserSessions(ctx context.Context, userID string) (ss []store.Session, err error) {
	defer func(t time.Time) { o.done(ctx, "user_sessions", t, err) }(time.Now())
	return o.Store.UserSessions(ctx, userID)
}

func (o observedStore) RevokeSession(ctx context.Context, rev store.Revocation, reason string) (err error) {
	defer func(t time.Time) { o.done(ctx, "revoke_session", t, notFoundIsFine(err)) }(time.Now())
	return o.Store.RevokeSession(ctx, rev, reason)
}

func (o observedStore) RevokeToken(ctx context.Context, rev store.Revocation) (err error) {
	defer func(t time.Time) { o.done(ctx, "revoke_token", t, err) }(time.Now())
	return o.Store.RevokeToken(ctx, rev)
}

func (o observedStore) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) (rs []store.Revocation, err error) {
	defer func(t time.Time) { o.done(ctx, "revocations_after", t, err) }(time.Now())
	return o.Store.RevocationsAfter(ctx, after, now, limit)
}

// notFoundIsFine and conflictIsFine keep answers that are not failures of
// the store out of its error count.
func notFoundIsFine(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func conflictIsFine(err error) error {
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends translate driver errors into these and wrap anything
// else with the operation that failed ("sqlite: rotate: %w").
var (
	// ErrNotFound means the record does not exist (or no longer exists).
	ErrNotFound = errors.New("store: not found")
	// ErrExists means a record with the same unique key exists already.
	ErrExists = errors.New("store: already exists")
	// ErrConflict means a compare-and-swap found a state other than the expected
	// one: the session is not at the expected generation, or it is revoked.
	ErrConflict = errors.New("store: conflict")
)

// User is an account of the standalone server.
type User struct {
	ID           string // UUID, immutable
	Username     string // unique, stored as given by the caller (callers normalise)
	PasswordHash string // PHC-encoded argon2id hash; never a password. Empty: the account has no password (it signs in with a provider)
	Disabled     bool
	CreatedAt    time.Time
}

// HasPassword reports whether the account can sign in with a password.
func (u User) HasPassword() bool { return u.PasswordHash != "" }

// Session is one login: the server-side state behind a lineage of refresh tokens.
//
// A refresh token names a session and a generation; only the current generation
// (and, inside the grace window, the one before it) is accepted. Storage per
// session is constant however many rotations happen.
type Session struct {
	ID         string // random, URL-safe; also the "sid" claim of access tokens
	UserID     string
	Generation uint64    // current generation; starts at 0
	RotatedAt  time.Time // when Generation was reached (CreatedAt for generation 0)
	CreatedAt  time.Time
	LastUsedAt time.Time
	// IdleExpiresAt is when the current refresh token expires: it slides with each
	// rotation unless the session is locked. Never later than ExpiresAt.
	IdleExpiresAt time.Time
	// ExpiresAt is the absolute end of the session; it never moves.
	ExpiresAt    time.Time
	RevokedAt    time.Time // zero while the session is live
	RevokeReason string    // why it was revoked: one of the library's reasons ("logout", "reused", …)
	UserAgent    string
	IP           string
	// ClientID is the client_id of the OAuth client the session was issued
	// to, carried in its access tokens; empty for a first-party session.
	ClientID string
	// ClientRegistration is the opaque identity of that client's registration
	// (Client.Registration); empty for a first-party session, never empty for
	// an OAuth one. Rotation compares it for equality and nothing else, so a
	// client removed and registered again under the same id inherits nothing.
	ClientRegistration string
	// JKT is the RFC 7638 thumbprint (SHA-256, base64url) of the DPoP key the
	// session is bound to (RFC 9449), or empty for a session not bound to a
	// key. It is set when the session is created and never changes: every
	// rotation of a bound session must be proved with the same key.
	JKT string
}

// Revoked reports whether the session has been revoked.
func (s Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// EndedAt is when the session stopped (or will stop) being refreshable: the
// earliest of its idle expiry, its absolute expiry and its revocation. It is
// the one definition of a dead session: Live, every backend's rotation and
// Purge agree with it.
func (s Session) EndedAt() time.Time {
	end := s.IdleExpiresAt
	if s.ExpiresAt.Before(end) {
		end = s.ExpiresAt
	}
	if s.Revoked() && s.RevokedAt.Before(end) {
		end = s.RevokedAt
	}
	return end
}

// Live reports whether the session can still be refreshed at now.
func (s Session) Live(now time.Time) bool { return !s.Revoked() && now.Before(s.EndedAt()) }

// Rotation is the compare-and-swap that advances a session by one generation.
// It happens only if the session is at generation From, issued to
// ClientRegistration, and live at At (Session.Live); so a caller may rotate
// straight from a verified token without reading the session first.
type Rotation struct {
	From uint64    // the generation the caller saw; the swap happens only if it is still current
	At   time.Time // becomes RotatedAt and LastUsedAt; the session must be live at At
	// ClientRegistration must equal the session's ClientRegistration ("" for
	// a first-party session).
	ClientRegistration string
	// JKT must equal the session's JKT: the thumbprint of the DPoP key whose
	// proof came with the refresh, for a bound session; "" for one that is
	// not bound.
	JKT string
	// IdleExpiresAt is the new refresh expiry, capped at the session's
	// ExpiresAt; zero keeps the current one (a locked expiry).
	IdleExpiresAt time.Time
}

// Revocation is one entry of the revocation feed that every node follows so that
// its verifier refuses revoked access tokens without a store round trip per request.
// Exactly one of SessionID and TokenID is set.
type Revocation struct {
	Seq       int64  // assigned by the store, strictly increasing
	SessionID string // every access token of this session is revoked
	TokenID   string // this one access token ("jti") is revoked
	At        time.Time
	// Until is when nothing this entry revokes can still be valid (the last access
	// token's expiry); after it the entry is no longer returned and may be purged.
	Until time.Time
}

// Key is a signing key as stored: its private part sealed (encrypted) by the keys
// package under a key derived from the deployment secret.
type Key struct {
	ID        string // "kid"
	Algorithm string // EdDSA, ES256, RS256, HS256
	Sealed    []byte // encrypted private key; opaque to the store
	CreatedAt time.Time
	// ActivatedAt is when the key started signing; zero while it is only published
	// as the next key.
	ActivatedAt time.Time
	// RetiredAt is when the key stopped signing; zero while it is current or next.
	RetiredAt time.Time
}

// Client is a registered OAuth 2.0 client of the standalone server.
type Client struct {
	ID string // "client_id": unique, chosen by the operator
	// Registration is an opaque value, set by the caller, that is different
	// for every registration: a client removed and added again under the same
	// ID gets a new one. Sessions record it (Session.ClientRegistration).
	Registration string
	// SecretHash is the hash of a confidential client's secret (never the
	// secret); empty for a public client, which authenticates with nothing.
	SecretHash string
	Name       string // a description for operators
	// Origins are the browser origins ("https://app.example.com") from which
	// the client's pages may call the OAuth endpoints, in the order the
	// operator gave them; none for a client that no browser page uses.
	Origins []string
	// DPoPRequired makes every token request of the client carry a DPoP proof
	// (RFC 9449), so that each of its sessions is bound to a key.
	DPoPRequired bool
	CreatedAt    time.Time
}

// Public reports whether the client has no secret.
func (c Client) Public() bool { return c.SecretHash == "" }

// Users stores the accounts of the standalone server. It is a role, not part
// of the core: the library never needs it.
type Users interface {
	// CreateUser inserts u. ErrExists if the ID or the username is taken.
	CreateUser(ctx context.Context, u User) error
	// UserByName returns the user with exactly this username, or ErrNotFound.
	UserByName(ctx context.Context, username string) (User, error)
	// UserByID returns the user with this ID, or ErrNotFound.
	UserByID(ctx context.Context, id string) (User, error)
	// UpdateUser replaces the password hash and the disabled flag of u.ID.
	// ErrNotFound if there is no such user.
	UpdateUser(ctx context.Context, u User) error
	// ListUsers returns every user, ordered by username.
	ListUsers(ctx context.Context) ([]User, error)
}

// Sessions stores sessions.
type Sessions interface {
	// CreateSession inserts s. ErrExists if the ID is taken.
	CreateSession(ctx context.Context, s Session) error
	// Session returns the session with this ID, or ErrNotFound.
	Session(ctx context.Context, id string) (Session, error)
	// RotateSession atomically advances session id from r.From to r.From+1 if the
	// conditions of r hold (see Rotation), setting RotatedAt and LastUsedAt to r.At
	// and IdleExpiresAt as r says, and returns the updated session. If a condition
	// fails it changes nothing and returns ErrConflict; if the session does not
	// exist, ErrNotFound. Exactly one of any number of
	// concurrent callers with the same r.From succeeds.
	RotateSession(ctx context.Context, id string, r Rotation) (Session, error)
	// UserSessions returns every stored session of the user (live, expired and
	// revoked alike), newest first (CreatedAt descending); sessions created in
	// the same millisecond come in ascending byte order of ID.
	UserSessions(ctx context.Context, userID string) ([]Session, error)
}

// Revocations records revocations and serves them as a feed.
type Revocations interface {
	// RevokeSession marks session rev.SessionID revoked at rev.At with reason
	// and appends rev to the feed, atomically. Revoking a revoked session
	// changes nothing and returns nil. ErrNotFound if the session does not exist.
	RevokeSession(ctx context.Context, rev Revocation, reason string) error
	// RevokeToken appends rev (a TokenID entry) to the feed.
	RevokeToken(ctx context.Context, rev Revocation) error
	// RevocationsAfter returns the feed entries with Seq > after whose Until is
	// after now, in ascending Seq order, at most limit of them.
	RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]Revocation, error)
}

// Keys stores signing keys.
type Keys interface {
	// PutKey inserts k, or replaces the stored key with the same ID.
	PutKey(ctx context.Context, k Key) error
	// ListKeys returns every stored key, oldest first.
	ListKeys(ctx context.Context) ([]Key, error)
	// DeleteKey removes the key with this ID; removing a missing key is not an error.
	DeleteKey(ctx context.Context, id string) error
}

// Clients stores the OAuth 2.0 clients of the standalone server. It is a
// role, not part of the core.
type Clients interface {
	// CreateClient inserts c. ErrExists if the ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// Client returns the client with exactly this ID, or ErrNotFound.
	Client(ctx context.Context, id string) (Client, error)
	// ListClients returns every client, ordered by ID.
	ListClients(ctx context.Context) ([]Client, error)
	// DeleteClient removes the client with this ID; ErrNotFound if there is none.
	DeleteClient(ctx context.Context, id string) error
}

// Identity links an account at another identity provider (an OpenID Connect
// issuer) to a user. The pair (Provider, Subject) names the outside account
// and is linked to at most one user.
type Identity struct {
	ID       string // random, URL-safe; names the link (DELETE /identities/{id})
	UserID   string
	Provider string // the operator's name for the provider ("google")
	// Subject is the provider's "sub" claim: stable and unique within the
	// provider, and the only thing a sign-in matches on.
	Subject string
	// Email is the address the provider reported when the link was made, for
	// display only: nothing is ever linked or found by it.
	Email     string
	CreatedAt time.Time
}

// Identities stores the links between users and identities at other
// providers. It is a role, not part of the core; a backend that offers it
// offers Users too.
type Identities interface {
	// LinkIdentity inserts id for the existing user id.UserID. ErrExists if
	// (Provider, Subject) is linked already, to any user, or the ID is taken;
	// ErrNotFound if there is no user id.UserID.
	LinkIdentity(ctx context.Context, id Identity) error
	// CreateUserWithIdentity inserts u and id (id.UserID == u.ID) atomically:
	// both or neither. ErrExists if the user's ID or username is taken, or
	// (Provider, Subject) is linked already, or the identity's ID is taken.
	CreateUserWithIdentity(ctx context.Context, u User, id Identity) error
	// IdentityBySubject returns the identity with exactly this provider and
	// subject (compared byte for byte, as Users compares usernames), or
	// ErrNotFound.
	IdentityBySubject(ctx context.Context, provider, subject string) (Identity, error)
	// UserIdentities returns the identities of the user, oldest first
	// (CreatedAt ascending; ties in ascending byte order of ID); none is not an
	// error.
	UserIdentities(ctx context.Context, userID string) ([]Identity, error)
	// UnlinkIdentity removes identity id of user userID. ErrNotFound if the
	// user has no identity with this ID. With keepOne, it refuses with
	// ErrConflict, changing nothing, when this is the user's last identity:
	// atomically, so two concurrent unlinks never remove the last two.
	UnlinkIdentity(ctx context.Context, userID, id string, keepOne bool) error
}

// Markers records single-use values shared by every node: the ID tokens
// already used to sign in (and, later, proofs that may be presented once). It
// is a role, not part of the core.
type Markers interface {
	// Mark records key as used until the instant until (at millisecond
	// precision, like every time in the store). ErrExists if key is recorded
	// already with an until after now; then it changes nothing.
	// Exactly one of any number of concurrent callers with the same key
	// succeeds. A record whose until has passed counts as absent (and Purge,
	// or the backend's own expiry, forgets it). Keys are at most 128 bytes;
	// callers hash what they mark.
	Mark(ctx context.Context, key string, now, until time.Time) error
}

// Event is one security event of the audit log: a sign-in, a refused
// refresh, an administrator's change. Events are kept for a bounded time
// (Audit.PurgeEvents) and never change once appended.
type Event struct {
	ID string    // random, set by the caller; unique among stored events
	At time.Time // when it happened
	// Kind says what happened: "login", "login_failed", "refresh_reused",
	// "session_revoked", "password_changed", "user_created",
	// "user_disabled", "client_added", "client_removed", "key_rotated",
	// "rate_limited", "identity_linked", "identity_unlinked", … The store
	// reads it as free text of 1 to MaxEventKind bytes.
	Kind      string
	Actor     string // who did it: "user", "admin", "system", or a client ID
	UserID    string // the user concerned; empty for none
	SessionID string // the session concerned; empty for none
	IP        string
	UserAgent string
	// Detail is a JSON object as text, at most MaxEventDetail bytes
	// ({"reason":"reused","generation":4}); empty for none.
	Detail string
}

// Limits of an Event that every backend enforces, refusing an event beyond
// them with an error that is none of the sentinels.
const (
	MaxEventKind   = 64   // bytes of Event.Kind
	MaxEventDetail = 4096 // bytes of Event.Detail
)

// EventFilter selects the events Audit.Events returns.
type EventFilter struct {
	UserID string    // only this user's events; "" for every user's
	Since  time.Time // only events with At at or after Since; zero for all
	// Limit is the most events returned: DefaultEventLimit if it is 0 or
	// less, and never more than MaxEventLimit.
	Limit int
}

// Bounds of EventFilter.Limit.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

// Audit keeps the security events of the standalone server for a bounded
// time. It is a role, not part of the core.
type Audit interface {
	// AppendEvents stores es, all or none. ErrExists, storing nothing, if
	// an event's ID is taken (by a stored event or by another of es).
	// Appending no events does nothing.
	AppendEvents(ctx context.Context, es []Event) error
	// Events returns the stored events that f selects, newest first (At
	// descending; events of the same millisecond in descending byte order
	// of ID), at most f's limit of them.
	Events(ctx context.Context, f EventFilter) ([]Event, error)
	// PurgeEvents deletes the events whose At is before before and returns
	// how many it deleted.
	PurgeEvents(ctx context.Context, before time.Time) (int, error)
}

// Bucket is a token bucket of a rate limiter shared by every node, named by
// Key: it holds at most Burst tokens and gains one every Every, so N nodes
// spending from one bucket allow together what one node would.
type Bucket struct {
	Key   string        // 1 to MaxBucketKey bytes; callers hash what they limit on
	Burst int           // at least 1: the tokens of a full bucket
	Every time.Duration // more than 0: the time one token takes to come back
}

// MaxBucketKey is the longest Bucket.Key, in bytes.
const MaxBucketKey = 256

// Buckets stores the token buckets of the login rate limiter. It is a role,
// not part of the core.
//
// A bucket never seen, or forgotten, holds Burst tokens. From the last time
// it was spent from, it gains one token per Every (fractions included) up to
// Burst. Times are taken at millisecond precision, like every time in the
// store, and the arithmetic is the same on every backend; a bucket whose
// caller passes another Burst or Every than before is refilled and spent
// with the new ones. A bucket that has refilled holds nothing worth keeping,
// so a backend may drop it Burst*Every after it was last spent from (Purge,
// or the backend's own expiry, does).
type Buckets interface {
	// Spend takes one token from each of bs at now, all in one atomic step:
	// concurrent spends on any node never lose one another's tokens. A
	// bucket holding less than one token is left at zero; it never goes
	// below. A key given twice is spent from once, with the first Bucket's
	// Burst and Every.
	Spend(ctx context.Context, bs []Bucket, now time.Time) error
	// Wait returns how long from now until every one of bs holds at least
	// one token, rounded up to the millisecond: 0 if all do at now. It
	// changes nothing.
	Wait(ctx context.Context, bs []Bucket, now time.Time) (time.Duration, error)
	// Forget deletes the bucket with this key, so that it is full again
	// (a successful sign-in forgets its failures); forgetting a key never
	// spent from is not an error.
	Forget(ctx context.Context, key string) error
}

// Store is the core contract: what the token logic (latchkey.Auth) needs and
// nothing else. Every backend implements it and passes storetest.Run; the
// roles a backend also offers (Users, Clients, …) are found by type
// assertion, and storetest.Run runs their sub-suites too.
type Store interface {
	Sessions
	Revocations
	Keys
	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
	// Purge deletes what no longer matters at now: sessions whose EndedAt is
	// before now-retain, feed entries whose Until is before now, in a
	// store that offers Markers, markers whose until is not after now (they
	// count as absent already), and, in a store that offers Buckets, the
	// buckets that have refilled by now (they read as full already). It
	// returns how many sessions it deleted. Audit events have their own
	// retention: Audit.PurgeEvents.
	Purge(ctx context.Context, now time.Time, retain time.Duration) (int, error)
	// Close releases the backend's resources.
	Close() error
}

// Notifier is an optional capability of a store shared by several nodes: it
// announces appends to the revocation feed, so a node can apply a revocation at
// once instead of at its next poll. Nodes keep polling regardless, so a lost
// announcement only delays a revocation up to the poll interval.
type Notifier interface {
	// Subscribe returns a channel that receives a value soon after any node
	// appends to the feed. It is closed when ctx ends. Announcements may be
	// coalesced or lost; they carry no data.
	Subscribe(ctx context.Context) (<-chan struct{}, error)
}

// SessionCap is an optional capability of the core Sessions, found by type
// assertion like Notifier: it creates sessions under a per-user cap, so a
// user signed in everywhere at once keeps at most a given number of
// sessions.
type SessionCap interface {
	// CreateSessionCapped inserts s as CreateSession does (ErrExists,
	// changing nothing, if its ID is taken) and, atomically with it,
	// revokes the least recently used live sessions of s.UserID (LastUsedAt
	// ascending; ties in ascending byte order of ID) so that at most max
	// live sessions remain, s included. Live means Session.Live(s.CreatedAt);
	// s itself counts and is never revoked. Each revocation is made as
	// RevokeSession makes it, with reason, at s.CreatedAt, appending to the
	// feed a Revocation whose Until is until. It returns the IDs it revoked,
	// in the order it revoked them. Concurrent calls for one user, on any
	// node, leave at most max live sessions between them. max must be at
	// least 1.
	CreateSessionCapped(ctx context.Context, s Session, max int, reason string, until time.Time) (revoked []string, err error)
}

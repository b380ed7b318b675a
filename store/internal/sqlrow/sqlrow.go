// Package sqlrow maps the contract's records to and from the rows of the SQL
// backends (SQLite and PostgreSQL share one schema shape): times as Unix
// milliseconds with 0 for the zero time, generations as signed 64-bit integers.
// It also holds the SQL both backends must agree on word for word: when a
// session is live or dead, and how an older database gets its registrations.
package sqlrow

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/latchkey/latchkey/store"
)

// Millis is t in Unix milliseconds, 0 for the zero time.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Time is the inverse of Millis.
func Time(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Generation converts g to a signed 64-bit column value.
func Generation(g uint64) (int64, error) {
	if g > math.MaxInt64 {
		return 0, fmt.Errorf("generation %d out of range", g)
	}
	return int64(g), nil
}

// Scanner is a row: *sql.Row, *sql.Rows, pgx.Row.
type Scanner interface{ Scan(dest ...any) error }

// LiveAt is the SQL condition under which a session row is live at the time
// that the parameter at (a placeholder such as "?1" or "$1", in Unix
// milliseconds) names: store.Session.Live.
func LiveAt(at string) string {
	return strings.NewReplacer("AT", at).Replace(`(revoked_at = 0 AND idle_expires_at > AT AND expires_at > AT)`)
}

// EndedBefore is the SQL condition under which a session row's
// store.Session.EndedAt is before the time that the parameter cut (a
// placeholder, in Unix milliseconds) names: the sessions Purge deletes. A row
// for which it holds is not LiveAt any instant from cut on. It compares each
// of the three ends, so it needs no function that SQLite and PostgreSQL spell
// differently.
func EndedBefore(cut string) string {
	return strings.NewReplacer("CUT", cut).Replace(`(idle_expires_at < CUT OR expires_at < CUT OR (revoked_at <> 0 AND revoked_at < CUT))`)
}

// UserColumns are the columns User reads, in order.
const UserColumns = `id, username, password_hash, disabled, created_at`

// User reads a row of UserColumns.
func User(row Scanner) (store.User, error) {
	var u store.User
	var created int64
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Disabled, &created)
	u.CreatedAt = Time(created)
	return u, err
}

// SessionColumns are the columns Session reads, in order.
const SessionColumns = `id, user_id, generation, rotated_at, created_at, last_used_at, idle_expires_at, expires_at,
	revoked_at, revoke_reason, user_agent, ip, client_id, client_registration, jkt`

// Session reads a row of SessionColumns.
func Session(row Scanner) (store.Session, error) {
	var x store.Session
	var gen, rotated, created, used, idle, exp, revoked int64
	if err := row.Scan(&x.ID, &x.UserID, &gen, &rotated, &created, &used, &idle, &exp,
		&revoked, &x.RevokeReason, &x.UserAgent, &x.IP, &x.ClientID, &x.ClientRegistration, &x.JKT); err != nil {
		return store.Session{}, err
	}
	x.Generation = uint64(gen)
	x.RotatedAt, x.CreatedAt, x.LastUsedAt = Time(rotated), Time(created), Time(used)
	x.IdleExpiresAt, x.ExpiresAt, x.RevokedAt = Time(idle), Time(exp), Time(revoked)
	return x, nil
}

// SessionValues are x's values in the order of SessionColumns.
func SessionValues(x store.Session) ([]any, error) {
	gen, err := Generation(x.Generation)
	if err != nil {
		return nil, err
	}
	return []any{x.ID, x.UserID, gen, Millis(x.RotatedAt), Millis(x.CreatedAt), Millis(x.LastUsedAt),
		Millis(x.IdleExpiresAt), Millis(x.ExpiresAt), Millis(x.RevokedAt), x.RevokeReason, x.UserAgent, x.IP,
		x.ClientID, x.ClientRegistration, x.JKT}, nil
}

// ClientColumns are the columns Client reads, in order.
const ClientColumns = `id, registration, secret_hash, name, created_at, origins, dpop_required`

// Client reads a row of ClientColumns.
func Client(row Scanner) (store.Client, error) {
	var c store.Client
	var created int64
	var origins string
	err := row.Scan(&c.ID, &c.Registration, &c.SecretHash, &c.Name, &created, &origins, &c.DPoPRequired)
	c.CreatedAt = Time(created)
	c.Origins = SplitOrigins(origins)
	return c, err
}

// ClientValues are c's values in the order of ClientColumns.
func ClientValues(c store.Client) []any {
	return []any{c.ID, c.Registration, c.SecretHash, c.Name, Millis(c.CreatedAt), JoinOrigins(c.Origins), c.DPoPRequired}
}

// JoinOrigins is how a client's origins are stored: separated by spaces,
// which an origin never contains.
func JoinOrigins(origins []string) string { return strings.Join(origins, " ") }

// SplitOrigins reads what JoinOrigins wrote.
func SplitOrigins(s string) []string { return strings.Fields(s) }

// KeyColumns are the columns Key reads, in order.
const KeyColumns = `id, algorithm, sealed, created_at, activated_at, retired_at`

// Key reads a row of KeyColumns.
func Key(row Scanner) (store.Key, error) {
	var k store.Key
	var created, activated, retired int64
	err := row.Scan(&k.ID, &k.Algorithm, &k.Sealed, &created, &activated, &retired)
	k.CreatedAt, k.ActivatedAt, k.RetiredAt = Time(created), Time(activated), Time(retired)
	return k, err
}

// KeyValues are k's values in the order of KeyColumns; a nil Sealed is
// written as empty (the column is NOT NULL).
func KeyValues(k store.Key) []any {
	sealed := k.Sealed
	if sealed == nil {
		sealed = []byte{}
	}
	return []any{k.ID, k.Algorithm, sealed, Millis(k.CreatedAt), Millis(k.ActivatedAt), Millis(k.RetiredAt)}
}

// RevocationColumns are the columns Revocation reads, in order.
const RevocationColumns = `seq, session_id, token_id, at, until`

// Revocation reads a row of RevocationColumns.
func Revocation(row Scanner) (store.Revocation, error) {
	var r store.Revocation
	var at, until int64
	err := row.Scan(&r.Seq, &r.SessionID, &r.TokenID, &at, &until)
	r.At, r.Until = Time(at), Time(until)
	return r, err
}

// ErrNoRegistration is the error of CreateSession for an OAuth session
// (ClientID set) without a ClientRegistration: the contract never allows one,
// as a rotation for "" would refresh it as a first-party session.
var ErrNoRegistration = errors.New("an OAuth session needs a client registration")

// CheckRegistration returns ErrNoRegistration for an OAuth session without
// a client registration.
func CheckRegistration(x store.Session) error {
	if x.ClientID != "" && x.ClientRegistration == "" {
		return ErrNoRegistration
	}
	return nil
}

// UnknownRegistration is the client registration an upgraded database gives
// an OAuth session whose client registration cannot be told: its client is
// gone, or was registered after the session began. No registration is ever
// "-" (callers make them unique and non-empty), so such a session never
// rotates again; it is never "", which would make it refreshable as a
// first-party session.
const UnknownRegistration = "-"

// MigrateRegistrations is the data step of the schema version that brought
// registrations, on the tables named clients and sessions (each already with
// its new, empty column): every client's registration becomes
// id || '@' || created_at (a value unique to that registration), and every
// OAuth session takes the registration of its client if the client exists and
// is no younger than the session, UnknownRegistration otherwise.
// First-party sessions keep "".
func MigrateRegistrations(clients, sessions string) string {
	return strings.NewReplacer("CLIENTS", clients, "SESSIONS", sessions, "UNKNOWN", UnknownRegistration).Replace(`
UPDATE CLIENTS SET registration = id || '@' || created_at;
UPDATE SESSIONS SET client_registration = COALESCE(
	(SELECT c.registration FROM CLIENTS c WHERE c.id = SESSIONS.client_id AND SESSIONS.created_at >= c.created_at),
	'UNKNOWN')
WHERE client_id <> '';
`)
}

// IdentityColumns are the columns Identity reads, in order.
const IdentityColumns = `id, user_id, provider, subject, email, created_at`

// Identity reads a row of IdentityColumns.
func Identity(row Scanner) (store.Identity, error) {
	var id store.Identity
	var created int64
	err := row.Scan(&id.ID, &id.UserID, &id.Provider, &id.Subject, &id.Email, &created)
	id.CreatedAt = Time(created)
	return id, err
}

// IdentityValues are id's values in the order of IdentityColumns.
func IdentityValues(id store.Identity) []any {
	return []any{id.ID, id.UserID, id.Provider, id.Subject, id.Email, Millis(id.CreatedAt)}
}

// EventColumns are the columns Event reads, in order.
const EventColumns = `id, at, kind, actor, user_id, session_id, ip, user_agent, detail`

// Event reads a row of EventColumns.
func Event(row Scanner) (store.Event, error) {
	var e store.Event
	var at int64
	err := row.Scan(&e.ID, &at, &e.Kind, &e.Actor, &e.UserID, &e.SessionID, &e.IP, &e.UserAgent, &e.Detail)
	e.At = Time(at)
	return e, err
}

// EventValues are e's values in the order of EventColumns.
func EventValues(e store.Event) []any {
	return []any{e.ID, Millis(e.At), e.Kind, e.Actor, e.UserID, e.SessionID, e.IP, e.UserAgent, e.Detail}
}

// Rotation is one RotateSession call waiting in a batch (group commit); Gen
// is its store.Rotation.From already converted by Generation.
type Rotation struct {
	ID  string
	Gen int64
	store.Rotation
}

// Args are the arguments of both backends' rotation statement, in order:
// the time, the new idle expiry (0 keeps it), the id, the generation
// expected, the client registration and the DPoP key thumbprint.
func (x Rotation) Args() []any {
	return []any{Millis(x.At), Millis(x.IdleExpiresAt), x.ID, x.Gen, x.ClientRegistration, x.JKT}
}

// Rotated is a Rotation's result: the rotated session, or the driver's "no
// rows" error if no row matched.
type Rotated struct {
	Session store.Session
	Err     error
}

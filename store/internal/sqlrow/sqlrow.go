// Package sqlrow maps the contract's records to and from the rows of the SQL
// backends (SQLite and PostgreSQL share one schema shape): times as Unix
// milliseconds with 0 for the zero time, generations as signed 64-bit integers.
package sqlrow

import (
	"fmt"
	"math"
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
	revoked_at, revoke_reason, user_agent, ip, client_id`

// Session reads a row of SessionColumns.
func Session(row Scanner) (store.Session, error) {
	var x store.Session
	var gen, rotated, created, used, idle, exp, revoked int64
	if err := row.Scan(&x.ID, &x.UserID, &gen, &rotated, &created, &used, &idle, &exp,
		&revoked, &x.RevokeReason, &x.UserAgent, &x.IP, &x.ClientID); err != nil {
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
		Millis(x.IdleExpiresAt), Millis(x.ExpiresAt), Millis(x.RevokedAt), x.RevokeReason, x.UserAgent, x.IP, x.ClientID}, nil
}

// ClientColumns are the columns Client reads, in order.
const ClientColumns = `id, secret_hash, name, created_at`

// Client reads a row of ClientColumns.
func Client(row Scanner) (store.Client, error) {
	var c store.Client
	var created int64
	err := row.Scan(&c.ID, &c.SecretHash, &c.Name, &created)
	c.CreatedAt = Time(created)
	return c, err
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey/store"
)

// DB is a store.Store on one SQLite file.
type DB struct {
	db *sql.DB
}

var _ store.Store = (*DB)(nil)

// schemaVersion is the user_version of the current schema.
const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
	id              TEXT PRIMARY KEY,
	user_id         TEXT NOT NULL,
	generation      INTEGER NOT NULL,
	rotated_at      INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	last_used_at    INTEGER NOT NULL,
	idle_expires_at INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL,
	revoked_at      INTEGER NOT NULL DEFAULT 0,
	revoke_reason   TEXT NOT NULL DEFAULT '',
	user_agent      TEXT NOT NULL DEFAULT '',
	ip              TEXT NOT NULL DEFAULT '',
	client_id       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id, created_at);
CREATE INDEX IF NOT EXISTS sessions_idle ON sessions (idle_expires_at);
CREATE INDEX IF NOT EXISTS sessions_revoked ON sessions (revoked_at) WHERE revoked_at > 0;
CREATE TABLE IF NOT EXISTS revocations (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id TEXT NOT NULL DEFAULT '',
	token_id   TEXT NOT NULL DEFAULT '',
	at         INTEGER NOT NULL,
	until      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS revocations_until ON revocations (until);
CREATE TABLE IF NOT EXISTS keys (
	id           TEXT PRIMARY KEY,
	algorithm    TEXT NOT NULL,
	sealed       BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	activated_at INTEGER NOT NULL DEFAULT 0,
	retired_at   INTEGER NOT NULL DEFAULT 0
);
`

// Open opens (creating if needed) the database file at path and brings its
// schema up to date.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" {
		return nil, errors.New("sqlite: a file path is required (an in-memory database cannot be shared)")
	}
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("sqlite: directory %s does not exist", dir)
		}
	}
	// The file holds password hashes and session state: readable by its owner
	// only. SQLite gives the -wal and -shm files the same mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &DB{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *DB) migrate(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if v > schemaVersion {
		return fmt.Errorf("sqlite: the database has schema version %d, newer than this latchkey (%d)", v, schemaVersion)
	}
	if v == schemaVersion {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// ms stores a time as Unix milliseconds, the zero time as 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// isUnique reports whether err is a uniqueness violation.
func isUnique(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// CreateUser inserts u.
func (s *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES (?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.PasswordHash, u.Disabled, ms(u.CreatedAt))
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	return nil
}

const userCols = `id, username, password_hash, disabled, created_at`

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var created int64
	err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Disabled, &created)
	u.CreatedAt = fromMS(created)
	return u, err
}

func (s *DB) userWhere(ctx context.Context, op, where string, arg any) (store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, store.ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return u, nil
}

// UserByName returns the user with this username.
func (s *DB) UserByName(ctx context.Context, username string) (store.User, error) {
	return s.userWhere(ctx, "user by name", "username = ?", username)
}

// UserByID returns the user with this id.
func (s *DB) UserByID(ctx context.Context, id string) (store.User, error) {
	return s.userWhere(ctx, "user by id", "id = ?", id)
}

// UpdateUser replaces the password hash and the disabled flag.
func (s *DB) UpdateUser(ctx context.Context, u store.User) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = ?, disabled = ? WHERE id = ?`, u.PasswordHash, u.Disabled, u.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListUsers returns every user by username.
func (s *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return out, nil
}

const sessionCols = `id, user_id, generation, rotated_at, created_at, last_used_at, idle_expires_at, expires_at, revoked_at, revoke_reason, user_agent, ip, client_id`

func scanSession(row interface{ Scan(...any) error }) (store.Session, error) {
	var x store.Session
	var gen, rotated, created, used, idle, exp, revoked int64
	err := row.Scan(&x.ID, &x.UserID, &gen, &rotated, &created, &used, &idle, &exp, &revoked, &x.RevokeReason, &x.UserAgent, &x.IP, &x.ClientID)
	x.Generation = uint64(gen)
	x.RotatedAt, x.CreatedAt, x.LastUsedAt = fromMS(rotated), fromMS(created), fromMS(used)
	x.IdleExpiresAt, x.ExpiresAt, x.RevokedAt = fromMS(idle), fromMS(exp), fromMS(revoked)
	return x, err
}

func generation(g uint64) (int64, error) {
	if g > math.MaxInt64 {
		return 0, errors.New("sqlite: generation out of range")
	}
	return int64(g), nil
}

// CreateSession inserts x.
func (s *DB) CreateSession(ctx context.Context, x store.Session) error {
	gen, err := generation(x.Generation)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		x.ID, x.UserID, gen, ms(x.RotatedAt), ms(x.CreatedAt), ms(x.LastUsedAt), ms(x.IdleExpiresAt), ms(x.ExpiresAt),
		ms(x.RevokedAt), x.RevokeReason, x.UserAgent, x.IP, x.ClientID)
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	return nil
}

// Session returns the session with this id.
func (s *DB) Session(ctx context.Context, id string) (store.Session, error) {
	x, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: session: %w", err)
	}
	return x, nil
}

// RotateSession advances the session one generation with a single
// conditional UPDATE.
func (s *DB) RotateSession(ctx context.Context, id string, r store.Rotation) (store.Session, error) {
	from, err := generation(r.From)
	if err != nil {
		return store.Session{}, err
	}
	x, err := scanSession(s.db.QueryRowContext(ctx, `UPDATE sessions
		SET generation = generation + 1, rotated_at = ?, last_used_at = ?, idle_expires_at = ?
		WHERE id = ? AND generation = ? AND revoked_at = 0
		RETURNING `+sessionCols, ms(r.At), ms(r.At), ms(r.IdleExpiresAt), id, from))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.Session(ctx, id); err != nil {
			return store.Session{}, err
		}
		return store.Session{}, store.ErrConflict
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: rotate: %w", err)
	}
	return x, nil
}

// UserSessions returns every session of the user, newest first.
func (s *DB) UserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE user_id = ? ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user sessions: %w", err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: user sessions: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: user sessions: %w", err)
	}
	return out, nil
}

// RevokeSession marks the session revoked and appends to the feed, in one
// IMMEDIATE transaction.
func (s *DB) RevokeSession(ctx context.Context, id, reason string, rev store.Revocation) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: revoke session: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at = 0`, ms(rev.At), reason, id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlite: revoke session: %w", err)
		}
		return nil // already revoked
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (session_id, at, until) VALUES (?, ?, ?)`, id, ms(rev.At), ms(rev.Until)); err != nil {
		return fmt.Errorf("sqlite: revoke session: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: revoke session: %w", err)
	}
	return nil
}

// RevokeToken appends a single-token entry to the feed.
func (s *DB) RevokeToken(ctx context.Context, rev store.Revocation) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO revocations (token_id, at, until) VALUES (?, ?, ?)`, rev.TokenID, ms(rev.At), ms(rev.Until)); err != nil {
		return fmt.Errorf("sqlite: revoke token: %w", err)
	}
	return nil
}

// RevocationsAfter returns the feed after seq.
func (s *DB) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]store.Revocation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, session_id, token_id, at, until FROM revocations
		WHERE seq > ? AND until > ? ORDER BY seq LIMIT ?`, after, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revocations: %w", err)
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var r store.Revocation
		var at, until int64
		if err := rows.Scan(&r.Seq, &r.SessionID, &r.TokenID, &at, &until); err != nil {
			return nil, fmt.Errorf("sqlite: revocations: %w", err)
		}
		r.At, r.Until = fromMS(at), fromMS(until)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: revocations: %w", err)
	}
	return out, nil
}

// PutKey inserts or replaces a key.
func (s *DB) PutKey(ctx context.Context, k store.Key) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO keys (id, algorithm, sealed, created_at, activated_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET algorithm = excluded.algorithm, sealed = excluded.sealed, created_at = excluded.created_at,
		activated_at = excluded.activated_at, retired_at = excluded.retired_at`,
		k.ID, k.Algorithm, k.Sealed, ms(k.CreatedAt), ms(k.ActivatedAt), ms(k.RetiredAt))
	if err != nil {
		return fmt.Errorf("sqlite: put key: %w", err)
	}
	return nil
}

// ListKeys returns every key, oldest first.
func (s *DB) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, algorithm, sealed, created_at, activated_at, retired_at FROM keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	var out []store.Key
	for rows.Next() {
		var k store.Key
		var created, activated, retired int64
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Sealed, &created, &activated, &retired); err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		k.CreatedAt, k.ActivatedAt, k.RetiredAt = fromMS(created), fromMS(activated), fromMS(retired)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return out, nil
}

// DeleteKey removes a key.
func (s *DB) DeleteKey(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM keys WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete key: %w", err)
	}
	return nil
}

// purgeBatch bounds each DELETE so the write lock is held briefly.
const purgeBatch = 1000

// Purge deletes sessions expired or revoked before now-retain and feed
// entries whose Until has passed, in batches.
func (s *DB) Purge(ctx context.Context, now time.Time, retain time.Duration) (int, error) {
	cut := ms(now.Add(-retain))
	total := 0
	for {
		res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE rowid IN (
			SELECT rowid FROM sessions WHERE idle_expires_at < ? OR expires_at < ? OR (revoked_at > 0 AND revoked_at < ?) LIMIT ?)`,
			cut, cut, cut, purgeBatch)
		if err != nil {
			return total, fmt.Errorf("sqlite: purge: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
		if n < purgeBatch {
			break
		}
	}
	for {
		res, err := s.db.ExecContext(ctx, `DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations WHERE until < ? LIMIT ?)`, ms(now), purgeBatch)
		if err != nil {
			return total, fmt.Errorf("sqlite: purge: %w", err)
		}
		if n, _ := res.RowsAffected(); n < purgeBatch {
			return total, nil
		}
	}
}

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/batch"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// DB is a store.Store on one SQLite file. It is safe for concurrent use, and
// several DB values, in one process or several, may share a file.
type DB struct {
	w *sql.DB // exactly one connection: every write of this process, in turn
	r *sql.DB // read-only connections

	rotate *sql.Stmt // on w: the compare-and-swap
	// rotations writes concurrent rotations in one transaction (group commit).
	rotations *batch.Group[sqlrow.Rotation, sqlrow.Rotated]
	session   *sql.Stmt // on r: one session by id
	exists    *sql.Stmt // on r: whether a session exists
}

var (
	_ store.Store      = (*DB)(nil)
	_ store.Users      = (*DB)(nil)
	_ store.Clients    = (*DB)(nil)
	_ store.Identities = (*DB)(nil)
	_ store.Markers    = (*DB)(nil)
	_ store.Audit      = (*DB)(nil)
	_ store.Buckets    = (*DB)(nil)
	_ store.SessionCap = (*DB)(nil)
)

// busyTimeout is how long a write waits for another process's write lock.
const busyTimeout = 5 * time.Second

// migrations[v] brings a database from schema version v to v+1. The version is
// kept in PRAGMA user_version; append, never edit.
var migrations = []string{
	// 0 → 1: the first schema.
	`CREATE TABLE users (
		id            TEXT PRIMARY KEY,
		username      TEXT NOT NULL UNIQUE, -- the index behind UserByName and ListUsers
		password_hash TEXT NOT NULL,
		disabled      INTEGER NOT NULL DEFAULT 0,
		created_at    INTEGER NOT NULL
	) STRICT;
	CREATE TABLE sessions (
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
	) STRICT;
	CREATE INDEX sessions_user ON sessions (user_id, created_at);
	CREATE TABLE revocations (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		session_id TEXT NOT NULL DEFAULT '',
		token_id   TEXT NOT NULL DEFAULT '',
		at         INTEGER NOT NULL,
		until      INTEGER NOT NULL
	) STRICT;
	CREATE INDEX revocations_until ON revocations (until);
	CREATE TABLE keys (
		id           TEXT PRIMARY KEY,
		algorithm    TEXT NOT NULL,
		sealed       BLOB NOT NULL,
		created_at   INTEGER NOT NULL,
		activated_at INTEGER NOT NULL DEFAULT 0,
		retired_at   INTEGER NOT NULL DEFAULT 0
	) STRICT;`,
	// 1 → 2: OAuth clients.
	`CREATE TABLE clients (
		id          TEXT PRIMARY KEY,
		secret_hash TEXT NOT NULL DEFAULT '',
		name        TEXT NOT NULL DEFAULT '',
		created_at  INTEGER NOT NULL
	) STRICT;`,
	// 2 → 3: a client's registration, and the registration a session was
	// issued to; existing rows get theirs from the data (sqlrow.MigrateRegistrations).
	`ALTER TABLE clients ADD COLUMN registration TEXT NOT NULL DEFAULT '';
	ALTER TABLE sessions ADD COLUMN client_registration TEXT NOT NULL DEFAULT '';` +
		sqlrow.MigrateRegistrations("clients", "sessions") +
		// A process of the previous version still on the file (a rolling
		// restart) writes OAuth sessions with the default '': refuse them
		// rather than let them be refreshed as first-party sessions.
		`CREATE TRIGGER sessions_oauth_insert BEFORE INSERT ON sessions
		WHEN NEW.client_id <> '' AND NEW.client_registration = ''
		BEGIN SELECT RAISE(ABORT, 'an OAuth session needs a client registration'); END;
	CREATE TRIGGER sessions_oauth_update BEFORE UPDATE OF client_id, client_registration ON sessions
		WHEN NEW.client_id <> '' AND NEW.client_registration = ''
		BEGIN SELECT RAISE(ABORT, 'an OAuth session needs a client registration'); END;`,
	// 3 → 4: identities at other providers, and single-use markers. Text
	// compares byte for byte (BINARY), so (provider, subject) is exact.
	`CREATE TABLE identities (
		id         TEXT PRIMARY KEY,
		user_id    TEXT NOT NULL,
		provider   TEXT NOT NULL,
		subject    TEXT NOT NULL,
		email      TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		UNIQUE (provider, subject) -- the index behind IdentityBySubject
	) STRICT;
	CREATE INDEX identities_user ON identities (user_id, created_at);
	CREATE TABLE markers (
		key   TEXT PRIMARY KEY,
		until INTEGER NOT NULL
	) STRICT, WITHOUT ROWID;
	CREATE INDEX markers_until ON markers (until);`,
	// 4 → 5: audit events, and the token buckets of the rate limiter.
	`CREATE TABLE events (
		id         TEXT PRIMARY KEY,
		at         INTEGER NOT NULL,
		kind       TEXT NOT NULL,
		actor      TEXT NOT NULL DEFAULT '',
		user_id    TEXT NOT NULL DEFAULT '',
		session_id TEXT NOT NULL DEFAULT '',
		ip         TEXT NOT NULL DEFAULT '',
		user_agent TEXT NOT NULL DEFAULT '',
		detail     TEXT NOT NULL DEFAULT ''
	) STRICT;
	CREATE INDEX events_user ON events (user_id, at);
	CREATE INDEX events_at ON events (at);
	CREATE TABLE buckets (
		key        TEXT PRIMARY KEY,
		tokens     REAL NOT NULL,
		updated_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL -- updated_at + Burst*Every: refilled, Purge drops it
	) STRICT, WITHOUT ROWID;
	CREATE INDEX buckets_expires ON buckets (expires_at);`,
	// 5 → 6: DPoP (the key a session is bound to; clients that require it)
	// and the browser origins of each OAuth client.
	`ALTER TABLE sessions ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN origins TEXT NOT NULL DEFAULT '';
	ALTER TABLE clients ADD COLUMN dpop_required INTEGER NOT NULL DEFAULT 0;`,
}

// Open opens the SQLite database file at path, creating it (readable by its
// owner only) if it does not exist, and brings its schema up to date. The
// directory must exist. Close the DB when done.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: want the path of a file (an in-memory database cannot be shared)", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sqlite: open %s: not a regular file", abs)
	}
	// The file holds password hashes and session state, so it is created
	// owner-only; SQLite gives its -wal and -shm files the same mode. O_EXCL
	// matters: it opens no descriptor on an existing file, and closing one would
	// drop every POSIX lock this process holds on the file, including those of
	// another DB already using it.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close()
	case errors.Is(err, fs.ErrExist):
	default:
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}

	w, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	r, err := sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{w: w, r: r}
	if err := d.open(ctx, abs); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// dsn is the modernc.org/sqlite data source name for the file at abs. The
// _pragma parameters run on every new connection of the pool.
func dsn(abs string, readOnly bool) string {
	q := url.Values{}
	for _, p := range []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()), // first: the next one may wait for a lock
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(ON)",
	} {
		q.Add("_pragma", p)
	}
	// BEGIN IMMEDIATE: a transaction takes the write lock at its start, so it
	// waits for another writer (busy_timeout) instead of failing when its read
	// snapshot turns out stale at its first write.
	q.Set("_txlock", "immediate")
	if readOnly {
		q.Set("_query_only", "1")
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	// A URI, so that '?', '#' and '%' in the path are escaped, not parsed.
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// open migrates the schema, checks the readers and prepares the hot statements.
func (d *DB) open(ctx context.Context, abs string) error {
	if err := d.migrate(ctx); err != nil {
		return openError(abs, err)
	}
	if err := d.r.PingContext(ctx); err != nil {
		return openError(abs, err)
	}
	var err error
	prepare := func(db *sql.DB, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.PrepareContext(ctx, query)
		return st
	}
	d.rotate = prepare(d.w, `UPDATE sessions
		SET generation = generation + 1, rotated_at = ?1, last_used_at = ?1,
			idle_expires_at = CASE WHEN ?2 = 0 THEN idle_expires_at ELSE MIN(?2, expires_at) END
		WHERE id = ?3 AND generation = ?4 AND client_registration = ?5 AND jkt = ?6 AND `+sqlrow.LiveAt("?1")+`
		RETURNING `+sqlrow.SessionColumns)
	d.session = prepare(d.r, `SELECT `+sqlrow.SessionColumns+` FROM sessions WHERE id = ?`)
	d.exists = prepare(d.r, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?)`)
	if err != nil {
		return openError(abs, err)
	}
	// One writer: there is one write connection.
	d.rotations = batch.New(1, maxBatch, 0, d.rotateBatch) // busy_timeout bounds a write
	return nil
}

// maxBatch caps the rotations one transaction writes.
const maxBatch = 128

// openError explains a failure to open the file at abs.
func openError(abs string, err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return fmt.Errorf("sqlite: open %s: not an SQLite database: %w", abs, err)
	}
	return fmt.Errorf("sqlite: open %s: %w", abs, err)
}

// migrate brings the schema up to date in one IMMEDIATE transaction, so that
// two processes opening a new file at once do not both migrate it. Taking the
// write lock also proves the file writable.
func (d *DB) migrate(ctx context.Context) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this latchkey's (%d)", v, len(migrations))
	}
	if v == len(migrations) {
		return tx.Commit()
	}
	for ; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (d *DB) Close() error {
	if d.rotations != nil {
		d.rotations.Close()
	}
	var errs []error
	for _, st := range []*sql.Stmt{d.rotate, d.session, d.exists} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, d.r.Close(), d.w.Close())
	return errors.Join(errs...)
}

// Ping reports whether the database file can be read.
func (d *DB) Ping(ctx context.Context) error {
	var v int
	if err := d.r.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// isUnique reports whether err is a violation of a primary key or a UNIQUE
// constraint.
func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// insertUser inserts the values of userValues.
const insertUser = `INSERT INTO users (` + sqlrow.UserColumns + `) VALUES (?, ?, ?, ?, ?)`

func userValues(u store.User) []any {
	return []any{u.ID, u.Username, u.PasswordHash, u.Disabled, sqlrow.Millis(u.CreatedAt)}
}

// CreateUser inserts u; store.ErrExists if its ID or username is taken.
func (d *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := d.w.ExecContext(ctx, insertUser, userValues(u)...)
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	return nil
}

func (d *DB) userWhere(ctx context.Context, op, where string, arg any) (store.User, error) {
	u, err := sqlrow.User(d.r.QueryRowContext(ctx, `SELECT `+sqlrow.UserColumns+` FROM users WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, store.ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return u, nil
}

// UserByName returns the user with exactly this username, or store.ErrNotFound.
func (d *DB) UserByName(ctx context.Context, username string) (store.User, error) {
	return d.userWhere(ctx, "user by name", `username = ?`, username)
}

// UserByID returns the user with this ID, or store.ErrNotFound.
func (d *DB) UserByID(ctx context.Context, id string) (store.User, error) {
	return d.userWhere(ctx, "user by id", `id = ?`, id)
}

// UpdateUser replaces the password hash and the disabled flag of u.ID.
func (d *DB) UpdateUser(ctx context.Context, u store.User) error {
	res, err := d.w.ExecContext(ctx, `UPDATE users SET password_hash = ?, disabled = ? WHERE id = ?`, u.PasswordHash, u.Disabled, u.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update user: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: update user: %w", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListUsers returns every user, ordered by username.
func (d *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+sqlrow.UserColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	out, err := collect(rows, sqlrow.User)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return out, nil
}

// collect scans every row and closes rows.
func collect[T any](rows *sql.Rows, scan func(sqlrow.Scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// insertSession inserts the values of sqlrow.SessionValues.
const insertSession = `INSERT INTO sessions (` + sqlrow.SessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// CreateSession inserts x; store.ErrExists if its ID is taken.
func (d *DB) CreateSession(ctx context.Context, x store.Session) error {
	if err := sqlrow.CheckRegistration(x); err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	vals, err := sqlrow.SessionValues(x)
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	_, err = d.w.ExecContext(ctx, insertSession, vals...)
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	return nil
}

// Session returns the session with this ID, or store.ErrNotFound.
func (d *DB) Session(ctx context.Context, id string) (store.Session, error) {
	x, err := sqlrow.Session(d.session.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: session: %w", err)
	}
	return x, nil
}

// RotateSession advances session id from r.From to r.From+1 with one
// conditional UPDATE … RETURNING, so the swap is atomic across connections and
// processes. Rotations that arrive while another is being written are written
// together, in one transaction (group commit); each keeps its own result, and
// none is answered before its transaction commits. If no row matched, a second
// look tells a conflict (a condition of r failed) from a missing session.
func (d *DB) RotateSession(ctx context.Context, id string, r store.Rotation) (store.Session, error) {
	from, err := sqlrow.Generation(r.From)
	if err != nil || from == math.MaxInt64 {
		return store.Session{}, fmt.Errorf("sqlite: rotate: generation %d cannot advance", r.From)
	}
	res, err := d.rotations.Do(ctx, sqlrow.Rotation{ID: id, Gen: from, Rotation: r})
	if err == nil {
		err = res.Err
	}
	if err == nil {
		return res.Session, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("sqlite: rotate: %w", err)
	}
	var exists bool
	if err := d.exists.QueryRowContext(ctx, id).Scan(&exists); err != nil {
		return store.Session{}, fmt.Errorf("sqlite: rotate: %w", err)
	}
	if !exists {
		return store.Session{}, store.ErrNotFound
	}
	return store.Session{}, store.ErrConflict
}

// rotateBatch writes rotations: a lone one on its own, several in one
// IMMEDIATE transaction, one statement each in arrival order (so two
// rotations of one session in a batch behave as if written one after the
// other). An error other than "no row matched" fails the whole batch, and
// nothing of it is committed.
func (d *DB) rotateBatch(ctx context.Context, rs []sqlrow.Rotation) ([]sqlrow.Rotated, error) {
	out := make([]sqlrow.Rotated, len(rs))
	if len(rs) == 1 {
		if out[0] = rotateOne(ctx, d.rotate, rs[0]); out[0].Err != nil && !errors.Is(out[0].Err, sql.ErrNoRows) {
			return nil, out[0].Err
		}
		return out, nil
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, d.rotate)
	for i, x := range rs {
		if out[i] = rotateOne(ctx, st, x); out[i].Err != nil && !errors.Is(out[i].Err, sql.ErrNoRows) {
			return nil, out[i].Err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return out, nil
}

func rotateOne(ctx context.Context, st *sql.Stmt, x sqlrow.Rotation) sqlrow.Rotated {
	s, err := sqlrow.Session(st.QueryRowContext(ctx, x.Args()...))
	return sqlrow.Rotated{Session: s, Err: err}
}

// UserSessions returns every stored session of the user, newest first, ties in
// byte order of ID (SQLite's BINARY collation compares bytes).
func (d *DB) UserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+sqlrow.SessionColumns+` FROM sessions WHERE user_id = ? ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user sessions: %w", err)
	}
	out, err := collect(rows, sqlrow.Session)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user sessions: %w", err)
	}
	return out, nil
}

// RevokeSession marks session rev.SessionID revoked and appends its feed
// entry in one IMMEDIATE transaction. Revoking a revoked session changes nothing.
func (d *DB) RevokeSession(ctx context.Context, rev store.Revocation, reason string) error {
	if err := d.revokeSession(ctx, rev.SessionID, reason, rev); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("sqlite: revoke session: %w", err)
	}
	return nil
}

func (d *DB) revokeSession(ctx context.Context, id, reason string, rev store.Revocation) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := revokeIn(ctx, tx, id, reason, rev); err != nil {
		return err
	}
	return tx.Commit()
}

// revokeIn marks session id revoked at rev.At with reason and appends its
// feed entry, inside tx, and reports whether it did: false if the session was
// revoked already (the first revocation stands), store.ErrNotFound if there
// is no such session.
func revokeIn(ctx context.Context, tx *sql.Tx, id, reason string, rev store.Revocation) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at = 0`, sqlrow.Millis(rev.At), reason, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?)`, id).Scan(&exists); err != nil {
			return false, err
		}
		if !exists {
			return false, store.ErrNotFound
		}
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (session_id, at, until) VALUES (?, ?, ?)`, id, sqlrow.Millis(rev.At), sqlrow.Millis(rev.Until)); err != nil {
		return false, err
	}
	return true, nil
}

// RevokeToken appends rev, an entry revoking one access token, to the feed.
func (d *DB) RevokeToken(ctx context.Context, rev store.Revocation) error {
	if rev.TokenID == "" {
		return errors.New("sqlite: revoke token: empty token id")
	}
	if _, err := d.w.ExecContext(ctx, `INSERT INTO revocations (token_id, at, until) VALUES (?, ?, ?)`, rev.TokenID, sqlrow.Millis(rev.At), sqlrow.Millis(rev.Until)); err != nil {
		return fmt.Errorf("sqlite: revoke token: %w", err)
	}
	return nil
}

// RevocationsAfter returns at most limit feed entries with Seq > after whose
// Until is after now, in ascending Seq order. SQLite commits one writer at a
// time, so entries become visible in Seq order and a follower that remembers
// the last Seq it saw misses none.
func (d *DB) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]store.Revocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: revocations: %w", err)
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := d.r.QueryContext(ctx, `SELECT `+sqlrow.RevocationColumns+` FROM revocations
		WHERE seq > ? AND until > ? ORDER BY seq LIMIT ?`, after, sqlrow.Millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revocations: %w", err)
	}
	out, err := collect(rows, sqlrow.Revocation)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revocations: %w", err)
	}
	return out, nil
}

// PutKey inserts k, or replaces the key with the same ID.
func (d *DB) PutKey(ctx context.Context, k store.Key) error {
	_, err := d.w.ExecContext(ctx, `INSERT INTO keys (`+sqlrow.KeyColumns+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET algorithm = excluded.algorithm, sealed = excluded.sealed, created_at = excluded.created_at,
			activated_at = excluded.activated_at, retired_at = excluded.retired_at`,
		sqlrow.KeyValues(k)...)
	if err != nil {
		return fmt.Errorf("sqlite: put key: %w", err)
	}
	return nil
}

// ListKeys returns every stored key, oldest first.
func (d *DB) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+sqlrow.KeyColumns+` FROM keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	out, err := collect(rows, sqlrow.Key)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return out, nil
}

// DeleteKey removes the key with this ID, if there is one.
func (d *DB) DeleteKey(ctx context.Context, id string) error {
	if _, err := d.w.ExecContext(ctx, `DELETE FROM keys WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: delete key: %w", err)
	}
	return nil
}

// purgeBatch is the most rows one purge statement deletes, so that the write
// lock is never held for long.
const purgeBatch = 1000

// sessionDead is the condition under which Purge deletes a session, shared
// with PostgreSQL; parameter ?1 is the cut-off time.
var sessionDead = sqlrow.EndedBefore("?1")

// CreateClient inserts c; store.ErrExists if its ID is taken.
func (d *DB) CreateClient(ctx context.Context, c store.Client) error {
	_, err := d.w.ExecContext(ctx, `INSERT INTO clients (`+sqlrow.ClientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		sqlrow.ClientValues(c)...)
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create client: %w", err)
	}
	return nil
}

// Client returns the client with this ID, or store.ErrNotFound.
func (d *DB) Client(ctx context.Context, id string) (store.Client, error) {
	c, err := sqlrow.Client(d.r.QueryRowContext(ctx, `SELECT `+sqlrow.ClientColumns+` FROM clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Client{}, store.ErrNotFound
	}
	if err != nil {
		return store.Client{}, fmt.Errorf("sqlite: client: %w", err)
	}
	return c, nil
}

// ListClients returns every client, ordered by ID.
func (d *DB) ListClients(ctx context.Context) ([]store.Client, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+sqlrow.ClientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list clients: %w", err)
	}
	out, err := collect(rows, sqlrow.Client)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list clients: %w", err)
	}
	return out, nil
}

// DeleteClient removes the client with this ID; store.ErrNotFound if there is none.
func (d *DB) DeleteClient(ctx context.Context, id string) error {
	res, err := d.w.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete client: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: delete client: %w", err)
	} else if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Purge deletes the sessions whose EndedAt is before now-retain, the feed
// entries whose Until is before now, the markers that have ended and the
// buckets that have refilled, a batch at a time: a read
// finds the next batch of sessions, without the write lock, and a short write
// deletes them, checking the condition again. It returns how many sessions it
// deleted.
//
// The reads make one pass over the sessions table in rowid order. An index on
// the expiry columns would spare that pass but cost every rotation, which
// moves idle_expires_at (about 20% slower in BenchmarkRotateSession); Purge
// runs now and then, rotations all the time.
func (d *DB) Purge(ctx context.Context, now time.Time, retain time.Duration) (int, error) {
	cut := sqlrow.Millis(now.Add(-retain))
	deleted := 0
	type candidate struct {
		rowid int64
		id    string
	}
	for after := int64(math.MinInt64); ; {
		rows, err := d.r.QueryContext(ctx, `SELECT rowid, id FROM sessions WHERE `+sessionDead+` AND rowid > ?2 ORDER BY rowid LIMIT ?3`,
			cut, after, purgeBatch)
		if err != nil {
			return deleted, fmt.Errorf("sqlite: purge: %w", err)
		}
		batch, err := collect(rows, func(row sqlrow.Scanner) (c candidate, err error) { return c, row.Scan(&c.rowid, &c.id) })
		if err != nil {
			return deleted, fmt.Errorf("sqlite: purge: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		ids := make([]string, len(batch))
		for i, c := range batch {
			ids[i] = c.id
		}
		list, err := json.Marshal(ids)
		if err != nil {
			return deleted, fmt.Errorf("sqlite: purge: %w", err)
		}
		res, err := d.w.ExecContext(ctx, `DELETE FROM sessions WHERE `+sessionDead+` AND id IN (SELECT value FROM json_each(?2))`,
			cut, string(list))
		if err != nil {
			return deleted, fmt.Errorf("sqlite: purge: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return deleted, fmt.Errorf("sqlite: purge: %w", err)
		}
		deleted += int(n)
		if len(batch) < purgeBatch {
			break
		}
		after = batch[len(batch)-1].rowid
	}
	for _, query := range []string{
		`DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations WHERE until < ?1 LIMIT ?2)`,
		`DELETE FROM markers WHERE key IN (SELECT key FROM markers WHERE until <= ?1 LIMIT ?2)`,
		`DELETE FROM buckets WHERE key IN (SELECT key FROM buckets WHERE expires_at <= ?1 LIMIT ?2)`,
	} {
		if _, err := d.deleteBatches(ctx, query, sqlrow.Millis(now)); err != nil {
			return deleted, fmt.Errorf("sqlite: purge: %w", err)
		}
	}
	return deleted, nil
}

// deleteBatches runs query, a DELETE of at most ?2 rows matching ?1 = arg,
// until it deletes fewer than purgeBatch: each run is a short write. It
// returns how many rows it deleted.
func (d *DB) deleteBatches(ctx context.Context, query string, arg any) (int, error) {
	total := 0
	for {
		res, err := d.w.ExecContext(ctx, query, arg, purgeBatch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < purgeBatch {
			return total, nil
		}
	}
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/batch"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// DB is a store.Store on PostgreSQL.
type DB struct {
	pool *pgxpool.Pool
	// rotations sends concurrent rotations together (group commit).
	rotations *batch.Group[sqlrow.Rotation, sqlrow.Rotated]
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

// Options tune the connection pool.
type Options struct {
	// MaxConns caps the pool; 0 means DefaultMaxConns, unless the URL sets
	// pool_max_conns.
	MaxConns int32
	// ConnectTimeout bounds connecting and the start-up ping, and (on Linux)
	// how long what a connection sent may go unacknowledged before the
	// connection is given up; default 5 s.
	ConnectTimeout time.Duration
}

// DefaultMaxConns is the pool size when neither Options nor the URL sets one.
// pgx's own default (the larger of 4 and the CPU count) leaves a 2-CPU node
// waiting on four connections while each commit waits for its WAL flush: 16
// let concurrent commits share a flush (refresh throughput 1.4x at 32 clients,
// docs/benchmarks.md). Sixteen per node also leaves a default PostgreSQL
// (max_connections 100) room for six nodes.
const DefaultMaxConns = 16

// rotateWriters is how many pipelines of rotations a node has in flight at
// once; maxBatch caps the rotations one pipeline sends; batchTimeout bounds its
// round trip (a row lock held elsewhere would otherwise hold every refresh of
// the node). It stays well under the default reuse grace window (10 s): a
// rotation's time is fixed before it queues, so a commit much later than that
// time could make a racing client's retry look like reuse.
const (
	rotateWriters = 1
	maxBatch      = 64
	batchTimeout  = 5 * time.Second
)

// migrations[v] brings a database from schema version v to v+1, all in one
// transaction under migrationLock; the version is kept in latchkey_schema.
// Append, never edit: a database at any version takes the same path to the
// newest as a new one, so both end with the same schema. Times are Unix
// milliseconds, 0 = the zero time.
var migrations = []string{
	// 0 → 1: the first schema.
	`CREATE TABLE latchkey_users (
		id            TEXT PRIMARY KEY,
		username      TEXT NOT NULL UNIQUE,
		password_hash TEXT NOT NULL,
		disabled      BOOLEAN NOT NULL DEFAULT FALSE,
		created_at    BIGINT NOT NULL
	);
	CREATE TABLE latchkey_sessions (
		id              TEXT PRIMARY KEY,
		user_id         TEXT NOT NULL,
		generation      BIGINT NOT NULL,
		rotated_at      BIGINT NOT NULL,
		created_at      BIGINT NOT NULL,
		last_used_at    BIGINT NOT NULL,
		idle_expires_at BIGINT NOT NULL,
		expires_at      BIGINT NOT NULL,
		revoked_at      BIGINT NOT NULL DEFAULT 0,
		revoke_reason   TEXT NOT NULL DEFAULT '',
		user_agent      TEXT NOT NULL DEFAULT '',
		ip              TEXT NOT NULL DEFAULT '',
		client_id       TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX latchkey_sessions_user ON latchkey_sessions (user_id, created_at);
	CREATE TABLE latchkey_revocations (
		seq        BIGSERIAL PRIMARY KEY,
		session_id TEXT NOT NULL DEFAULT '',
		token_id   TEXT NOT NULL DEFAULT '',
		at         BIGINT NOT NULL,
		until      BIGINT NOT NULL
	);
	CREATE INDEX latchkey_revocations_until ON latchkey_revocations (until);
	CREATE TABLE latchkey_keys (
		id           TEXT PRIMARY KEY,
		algorithm    TEXT NOT NULL,
		sealed       BYTEA NOT NULL,
		created_at   BIGINT NOT NULL,
		activated_at BIGINT NOT NULL DEFAULT 0,
		retired_at   BIGINT NOT NULL DEFAULT 0
	);`,
	// 1 → 2: no index may cover a column that a rotation changes
	// (generation, rotated_at, last_used_at, idle_expires_at): then every
	// rotation is a heap-only (HOT) update that touches no index, and the free
	// space left in each page (fillfactor) lets it stay on its page; Purge
	// walks the primary key instead of an expiry index. Pages written before
	// keep no room until the table is rewritten (VACUUM FULL, pg_repack);
	// rotations are correct either way. The clients table is created here if
	// missing: version 1 had no step for it (the first schemas were re-run
	// idempotently on every start, and a database of the earliest ones lacks it).
	`DROP INDEX IF EXISTS latchkey_sessions_idle;
	DROP INDEX IF EXISTS latchkey_sessions_revoked;
	ALTER TABLE latchkey_sessions SET (fillfactor = 70);
	CREATE TABLE IF NOT EXISTS latchkey_clients (
		id          TEXT PRIMARY KEY,
		secret_hash TEXT NOT NULL DEFAULT '',
		name        TEXT NOT NULL DEFAULT '',
		created_at  BIGINT NOT NULL
	);`,
	// 2 → 3: a client's registration, and the registration a session was
	// issued to; existing rows get theirs from the data (sqlrow.MigrateRegistrations).
	`ALTER TABLE latchkey_clients ADD COLUMN registration TEXT NOT NULL DEFAULT '';
	ALTER TABLE latchkey_sessions ADD COLUMN client_registration TEXT NOT NULL DEFAULT '';` +
		sqlrow.MigrateRegistrations("latchkey_clients", "latchkey_sessions") +
		// A node of the previous version still running (a rolling upgrade)
		// writes OAuth sessions with the default '': refuse them rather than
		// let them be refreshed as first-party sessions.
		`ALTER TABLE latchkey_sessions ADD CONSTRAINT latchkey_sessions_oauth_registration
		CHECK (client_id = '' OR client_registration <> '');`,
	// 3 → 4: identities at other providers, and single-use markers. TEXT
	// equality is byte for byte under any deterministic collation, so
	// (provider, subject) is exact.
	`CREATE TABLE latchkey_identities (
		id         TEXT PRIMARY KEY,
		user_id    TEXT NOT NULL,
		provider   TEXT NOT NULL,
		subject    TEXT NOT NULL,
		email      TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		UNIQUE (provider, subject)
	);
	CREATE INDEX latchkey_identities_user ON latchkey_identities (user_id, created_at);
	CREATE TABLE latchkey_markers (
		key   TEXT PRIMARY KEY,
		until BIGINT NOT NULL
	);
	CREATE INDEX latchkey_markers_until ON latchkey_markers (until);`,
	// 4 → 5: audit events, and the token buckets of the rate limiter. A
	// detail is kept as TEXT, byte for byte as written (JSONB would
	// reformat it).
	`CREATE TABLE latchkey_events (
		id         TEXT PRIMARY KEY,
		at         BIGINT NOT NULL,
		kind       TEXT NOT NULL,
		actor      TEXT NOT NULL DEFAULT '',
		user_id    TEXT NOT NULL DEFAULT '',
		session_id TEXT NOT NULL DEFAULT '',
		ip         TEXT NOT NULL DEFAULT '',
		user_agent TEXT NOT NULL DEFAULT '',
		detail     TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX latchkey_events_user ON latchkey_events (user_id, at);
	CREATE INDEX latchkey_events_at ON latchkey_events (at);
	CREATE TABLE latchkey_buckets (
		key        TEXT PRIMARY KEY,
		tokens     DOUBLE PRECISION NOT NULL,
		updated_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL -- updated_at + Burst*Every: refilled, Purge drops it
	);
	CREATE INDEX latchkey_buckets_expires ON latchkey_buckets (expires_at);`,
	// 5 → 6: DPoP (the key a session is bound to; clients that require it)
	// and the browser origins of each OAuth client.
	`ALTER TABLE latchkey_sessions ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
	ALTER TABLE latchkey_clients ADD COLUMN origins TEXT NOT NULL DEFAULT '';
	ALTER TABLE latchkey_clients ADD COLUMN dpop_required BOOLEAN NOT NULL DEFAULT FALSE;`,
}

// migrationLock is the advisory lock key that serialises schema set-up.
const migrationLock = 0x6c6174636b6579 // "latckey"

// Open connects to the database named by dsn (a postgres:// URL or key=value
// string) and creates or migrates the schema. It fails, rather than hangs,
// when the server cannot be reached within the connect timeout.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("postgres: the connection URL is malformed") // the URL may hold a password: not echoed
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	// An established connection gets the same bound on an unanswered send.
	dialer := &net.Dialer{KeepAlive: 15 * time.Second, Control: unanswered(opts.ConnectTimeout)}
	cfg.ConnConfig.DialFunc = dialer.DialContext
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot reach the server: %w", err)
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// One pipeline of rotations at a time: while it waits for its commit's
	// WAL flush, the next batch fills. More writers make smaller batches and
	// more commits: on 2 CPUs, 1 writer reached 0.41–0.45 of the no-store
	// ceiling and 2 writers 0.31–0.39 in one run; 8 writers 0.28–0.41 in an
	// earlier one (docs/benchmarks.md). The price: a batch that waits (a row lock held by
	// a long transaction elsewhere) holds the node's refreshes until it ends
	// or batchTimeout does. The rest of the pool serves reads, revocations
	// and the slow path of a refused rotation.
	db.rotations = batch.New(rotateWriters, maxBatch, batchTimeout, db.rotateBatch)
	return db, nil
}

// migrate brings the schema up to date in one transaction, under an advisory
// lock so that nodes starting together migrate one after the other.
func (db *DB) migrate(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS latchkey_schema (version INTEGER NOT NULL)`); err != nil {
			return err
		}
		v, found := 0, true
		if err := tx.QueryRow(ctx, `SELECT version FROM latchkey_schema`).Scan(&v); errors.Is(err, pgx.ErrNoRows) {
			found = false
		} else if err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("the database has schema version %d, newer than this latchkey (%d)", v, len(migrations))
		}
		if v == len(migrations) {
			return nil
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("to schema version %d: %w", v+1, err)
			}
		}
		var err error
		if found {
			_, err = tx.Exec(ctx, `UPDATE latchkey_schema SET version = $1`, v)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO latchkey_schema (version) VALUES ($1)`, v)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.rotations.Close()
	db.pool.Close()
	return nil
}

// Ping checks that the server answers.
func (db *DB) Ping(ctx context.Context) error {
	// A pooled connection the server has ended (pg_terminate_backend, a
	// restart) fails its ping and is dropped from the pool on release; the
	// question is whether the server answers, so try the next one. A server
	// that is away fails the acquire itself, which dials anew.
	var err error
	for range db.pool.Config().MaxConns + 1 {
		c, aerr := db.pool.Acquire(ctx)
		if aerr != nil {
			return fmt.Errorf("postgres: ping: %w", aerr)
		}
		err = c.Ping(ctx)
		c.Release()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// insertUser inserts the values of userValues.
const insertUser = `INSERT INTO latchkey_users (` + sqlrow.UserColumns + `) VALUES ($1, $2, $3, $4, $5)`

func userValues(u store.User) []any {
	return []any{u.ID, u.Username, u.PasswordHash, u.Disabled, sqlrow.Millis(u.CreatedAt)}
}

// CreateUser inserts u.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	_, err := db.pool.Exec(ctx, insertUser, userValues(u)...)
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	return nil
}

func (db *DB) userWhere(ctx context.Context, op, where string, arg any) (store.User, error) {
	u, err := sqlrow.User(db.pool.QueryRow(ctx, `SELECT `+sqlrow.UserColumns+` FROM latchkey_users WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, store.ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return u, nil
}

// UserByName returns the user with this username.
func (db *DB) UserByName(ctx context.Context, username string) (store.User, error) {
	return db.userWhere(ctx, "user by name", "username = $1", username)
}

// UserByID returns the user with this id.
func (db *DB) UserByID(ctx context.Context, id string) (store.User, error) {
	return db.userWhere(ctx, "user by id", "id = $1", id)
}

// UpdateUser replaces the password hash and the disabled flag.
func (db *DB) UpdateUser(ctx context.Context, u store.User) error {
	tag, err := db.pool.Exec(ctx, `UPDATE latchkey_users SET password_hash = $1, disabled = $2 WHERE id = $3`, u.PasswordHash, u.Disabled, u.ID)
	if err != nil {
		return fmt.Errorf("postgres: update user: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListUsers returns every user by username.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.UserColumns+` FROM latchkey_users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return sqlrow.User(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return us, nil
}

// insertSession inserts the values of sqlrow.SessionValues.
const insertSession = `INSERT INTO latchkey_sessions (` + sqlrow.SessionColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

// CreateSession inserts x.
func (db *DB) CreateSession(ctx context.Context, x store.Session) error {
	if err := sqlrow.CheckRegistration(x); err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	vals, err := sqlrow.SessionValues(x)
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	_, err = db.pool.Exec(ctx, insertSession, vals...)
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	return nil
}

// Session returns the session with this id.
func (db *DB) Session(ctx context.Context, id string) (store.Session, error) {
	x, err := sqlrow.Session(db.pool.QueryRow(ctx, `SELECT `+sqlrow.SessionColumns+` FROM latchkey_sessions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: session: %w", err)
	}
	return x, nil
}

// rotateSQL is the compare-and-swap: $1 at, $2 the new idle expiry (0 keeps
// it), $3 the id, $4 the generation expected, $5 the client registration,
// $6 the DPoP key thumbprint.
var rotateSQL = `UPDATE latchkey_sessions
	SET generation = generation + 1, rotated_at = $1, last_used_at = $1,
		idle_expires_at = CASE WHEN $2::BIGINT = 0 THEN idle_expires_at ELSE LEAST($2::BIGINT, expires_at) END
	WHERE id = $3 AND generation = $4 AND client_registration = $5 AND jkt = $6 AND ` + sqlrow.LiveAt("$1::BIGINT") + `
	RETURNING ` + sqlrow.SessionColumns

// RotateSession advances the session one generation with one conditional
// UPDATE that checks every condition of r. Rotations that arrive while the
// node's writers are busy are sent together, in one round trip and one
// transaction (group commit); each keeps its own result, and none is answered
// before its transaction commits.
func (db *DB) RotateSession(ctx context.Context, id string, r store.Rotation) (store.Session, error) {
	from, err := sqlrow.Generation(r.From)
	if err != nil || from == math.MaxInt64 {
		return store.Session{}, fmt.Errorf("postgres: rotate: generation %d cannot advance", r.From)
	}
	res, err := db.rotations.Do(ctx, sqlrow.Rotation{ID: id, Gen: from, Rotation: r})
	if err == nil {
		err = res.Err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		// No row matched: a condition of r failed, or there is no such session.
		var exists bool
		if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM latchkey_sessions WHERE id = $1)`, id).Scan(&exists); err != nil {
			return store.Session{}, fmt.Errorf("postgres: rotate: %w", err)
		}
		if !exists {
			return store.Session{}, store.ErrNotFound
		}
		return store.Session{}, store.ErrConflict
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: rotate: %w", err)
	}
	return res.Session, nil
}

// rotateBatch sends rotations in one pipeline, which PostgreSQL runs as one
// implicit transaction: one commit, one WAL flush for the lot. They go in
// order of session id (arrival order within one id, so two rotations of a
// session behave as if sent one after the other), so that two batches on two
// connections lock their rows in the same order and never deadlock. An error
// other than "no row matched" fails the whole batch, and nothing of it
// is committed.
func (db *DB) rotateBatch(ctx context.Context, rs []sqlrow.Rotation) ([]sqlrow.Rotated, error) {
	out := make([]sqlrow.Rotated, len(rs))
	if len(rs) == 1 {
		out[0].Session, out[0].Err = sqlrow.Session(db.pool.QueryRow(ctx, rotateSQL, rs[0].Args()...))
		if out[0].Err != nil && !errors.Is(out[0].Err, pgx.ErrNoRows) {
			return nil, out[0].Err
		}
		return out, nil
	}
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(rs[a].ID, rs[b].ID) })
	err := db.sendRotations(ctx, rs, order, out)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "40P01" {
		// A deadlock with a transaction that locked some of these rows in
		// another order (PostgreSQL aborted this batch, so nothing of it was
		// written): once more.
		err = db.sendRotations(ctx, rs, order, out)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sendRotations sends rs in one pipeline, in the given order, and fills out.
func (db *DB) sendRotations(ctx context.Context, rs []sqlrow.Rotation, order []int, out []sqlrow.Rotated) error {
	b := &pgx.Batch{}
	for _, i := range order {
		b.Queue(rotateSQL, rs[i].Args()...)
	}
	br := db.pool.SendBatch(ctx, b)
	for _, i := range order {
		out[i].Session, out[i].Err = sqlrow.Session(br.QueryRow())
		if out[i].Err != nil && !errors.Is(out[i].Err, pgx.ErrNoRows) {
			err := out[i].Err
			br.Close()
			return err
		}
	}
	// Close reads the commit's answer: only now is the batch durable.
	return br.Close()
}

// UserSessions returns every session of the user, newest first, ties in byte
// order of ID (COLLATE "C", whatever the database's collation).
func (db *DB) UserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.SessionColumns+` FROM latchkey_sessions WHERE user_id = $1 ORDER BY created_at DESC, id COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: user sessions: %w", err)
	}
	ss, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Session, error) { return sqlrow.Session(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: user sessions: %w", err)
	}
	return ss, nil
}

// RevokeSession marks the session revoked and appends to the feed in one
// transaction; the append happens only if the mark changed the row.
func (db *DB) RevokeSession(ctx context.Context, rev store.Revocation, reason string) error {
	id := rev.SessionID
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE latchkey_sessions SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at = 0`, sqlrow.Millis(rev.At), reason, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM latchkey_sessions WHERE id = $1`, id).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			} else if err != nil {
				return err
			}
			return nil // already revoked
		}
		return appendFeed(ctx, tx, store.Revocation{SessionID: id, At: rev.At, Until: rev.Until})
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("postgres: revoke session: %w", err)
	}
	return err
}

// RevokeToken appends a single-token entry to the feed.
func (db *DB) RevokeToken(ctx context.Context, rev store.Revocation) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		return appendFeed(ctx, tx, store.Revocation{TokenID: rev.TokenID, At: rev.At, Until: rev.Until})
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke token: %w", err)
	}
	return nil
}

// feedLock serialises appends to the revocation feed.
const feedLock = migrationLock + 1

// appendFeed appends rev inside tx. A sequence hands out numbers before
// commit, so two concurrent appends could commit out of order and a node that
// had already read the higher seq would never see the lower one. Holding an
// advisory lock from nextval to commit makes seq order commit order.
func appendFeed(ctx context.Context, tx pgx.Tx, rev store.Revocation) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(feedLock)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO latchkey_revocations (session_id, token_id, at, until) VALUES ($1, $2, $3, $4)`,
		rev.SessionID, rev.TokenID, sqlrow.Millis(rev.At), sqlrow.Millis(rev.Until)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel) // delivered at commit
	return err
}

// notifyChannel is the LISTEN/NOTIFY channel of feed appends.
const notifyChannel = "latchkey_revocations"

var _ store.Notifier = (*DB)(nil)

// Subscribe listens for feed appends on a dedicated connection, reconnecting
// after a failure; notifications in between are lost, which the callers'
// polling covers.
func (db *DB) Subscribe(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		for ctx.Err() == nil {
			db.listen(ctx, ch)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return ch, nil
}

func (db *DB) listen(ctx context.Context, ch chan<- struct{}) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return
	}
	defer conn.Exec(context.Background(), "UNLISTEN "+notifyChannel)
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return
		}
		select {
		case ch <- struct{}{}:
		default: // one pending announcement is enough
		}
	}
}

// RevocationsAfter returns the feed after seq.
func (db *DB) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]store.Revocation, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.RevocationColumns+` FROM latchkey_revocations
		WHERE seq > $1 AND until > $2 ORDER BY seq LIMIT $3`, after, sqlrow.Millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: revocations: %w", err)
	}
	revs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Revocation, error) { return sqlrow.Revocation(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: revocations: %w", err)
	}
	return revs, nil
}

// PutKey inserts or replaces a key.
func (db *DB) PutKey(ctx context.Context, k store.Key) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO latchkey_keys (`+sqlrow.KeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET algorithm = EXCLUDED.algorithm, sealed = EXCLUDED.sealed, created_at = EXCLUDED.created_at,
		activated_at = EXCLUDED.activated_at, retired_at = EXCLUDED.retired_at`,
		sqlrow.KeyValues(k)...)
	if err != nil {
		return fmt.Errorf("postgres: put key: %w", err)
	}
	return nil
}

// ListKeys returns every key, oldest first.
func (db *DB) ListKeys(ctx context.Context) ([]store.Key, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.KeyColumns+` FROM latchkey_keys ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	ks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Key, error) { return sqlrow.Key(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	return ks, nil
}

// DeleteKey removes a key.
func (db *DB) DeleteKey(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM latchkey_keys WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete key: %w", err)
	}
	return nil
}

// CreateClient inserts c; store.ErrExists if its ID is taken.
func (db *DB) CreateClient(ctx context.Context, c store.Client) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO latchkey_clients (`+sqlrow.ClientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		sqlrow.ClientValues(c)...)
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: create client: %w", err)
	}
	return nil
}

// Client returns the client with this ID, or store.ErrNotFound.
func (db *DB) Client(ctx context.Context, id string) (store.Client, error) {
	c, err := sqlrow.Client(db.pool.QueryRow(ctx, `SELECT `+sqlrow.ClientColumns+` FROM latchkey_clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Client{}, store.ErrNotFound
	}
	if err != nil {
		return store.Client{}, fmt.Errorf("postgres: client: %w", err)
	}
	return c, nil
}

// ListClients returns every client, ordered by ID.
func (db *DB) ListClients(ctx context.Context) ([]store.Client, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.ClientColumns+` FROM latchkey_clients ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list clients: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Client, error) { return sqlrow.Client(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list clients: %w", err)
	}
	return cs, nil
}

// DeleteClient removes the client with this ID; store.ErrNotFound if there is none.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM latchkey_clients WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete client: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

const purgeBatch = 1000

// sessionDead is the condition under which Purge deletes a session, shared
// with SQLite; parameter $3 is the cut-off time.
var sessionDead = sqlrow.EndedBefore("$3::BIGINT")

// Purge deletes sessions whose EndedAt is before now-retain, walking the
// primary key a batch at a time (there is no expiry index, see the schema),
// feed entries whose Until has passed, markers that have ended and buckets
// that have refilled.
func (db *DB) Purge(ctx context.Context, now time.Time, retain time.Duration) (int, error) {
	cut := sqlrow.Millis(now.Add(-retain))
	total, after := 0, ""
	for {
		var last *string
		var n int
		err := db.pool.QueryRow(ctx, `WITH batch AS (
				SELECT id FROM latchkey_sessions WHERE id > $1 ORDER BY id LIMIT $2),
			gone AS (
				DELETE FROM latchkey_sessions s USING batch WHERE s.id = batch.id AND `+sessionDead+`
				RETURNING 1)
			SELECT (SELECT max(id) FROM batch), (SELECT count(*) FROM gone)`, after, purgeBatch, cut).Scan(&last, &n)
		if err != nil {
			return total, fmt.Errorf("postgres: purge: %w", err)
		}
		total += n
		if last == nil {
			break
		}
		after = *last
	}
	for _, query := range []string{
		`DELETE FROM latchkey_revocations WHERE seq IN (SELECT seq FROM latchkey_revocations WHERE until < $1 LIMIT $2)`,
		`DELETE FROM latchkey_markers WHERE key IN (SELECT key FROM latchkey_markers WHERE until <= $1 LIMIT $2)`,
		`DELETE FROM latchkey_buckets WHERE key IN (SELECT key FROM latchkey_buckets WHERE expires_at <= $1 LIMIT $2)`,
	} {
		if _, err := db.deleteBatches(ctx, query, sqlrow.Millis(now)); err != nil {
			return total, fmt.Errorf("postgres: purge: %w", err)
		}
	}
	return total, nil
}

// deleteBatches runs query, a DELETE of at most $2 rows matching $1 = arg,
// until it deletes fewer than purgeBatch, and returns how many it deleted.
func (db *DB) deleteBatches(ctx context.Context, query string, arg any) (int, error) {
	total := 0
	for {
		tag, err := db.pool.Exec(ctx, query, arg, purgeBatch)
		if err != nil {
			return total, err
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < purgeBatch {
			return total, nil
		}
	}
}

package postgres_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/storetest"
)

// schemaV1 is a database of schema version 1 as the first PostgreSQL store
// created it: expiry indexes, no fillfactor, no clients table.
const schemaV1 = `
CREATE TABLE IF NOT EXISTS latchkey_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS latchkey_users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	disabled      BOOLEAN NOT NULL DEFAULT FALSE,
	created_at    BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS latchkey_sessions (
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
CREATE INDEX IF NOT EXISTS latchkey_sessions_user ON latchkey_sessions (user_id, created_at);
CREATE INDEX IF NOT EXISTS latchkey_sessions_idle ON latchkey_sessions (idle_expires_at);
CREATE INDEX IF NOT EXISTS latchkey_sessions_revoked ON latchkey_sessions (revoked_at) WHERE revoked_at > 0;
CREATE TABLE IF NOT EXISTS latchkey_revocations (
	seq        BIGSERIAL PRIMARY KEY,
	session_id TEXT NOT NULL DEFAULT '',
	token_id   TEXT NOT NULL DEFAULT '',
	at         BIGINT NOT NULL,
	until      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS latchkey_revocations_until ON latchkey_revocations (until);
CREATE TABLE IF NOT EXISTS latchkey_keys (
	id           TEXT PRIMARY KEY,
	algorithm    TEXT NOT NULL,
	sealed       BYTEA NOT NULL,
	created_at   BIGINT NOT NULL,
	activated_at BIGINT NOT NULL DEFAULT 0,
	retired_at   BIGINT NOT NULL DEFAULT 0
);
INSERT INTO latchkey_schema (version) VALUES (1);
`

// schemaV2 is a database of schema version 2 as the last release before
// client registrations created it (its schema text, verbatim).
const schemaV2 = `
CREATE TABLE IF NOT EXISTS latchkey_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS latchkey_users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	disabled      BOOLEAN NOT NULL DEFAULT FALSE,
	created_at    BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS latchkey_sessions (
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
) WITH (fillfactor = 70);
-- No index may cover a column that a rotation changes (generation, rotated_at,
-- last_used_at, idle_expires_at): then every rotation is a heap-only (HOT)
-- update that touches no index, and the free space left in each page
-- (fillfactor) lets it stay on its page. Purge walks the primary key instead
-- of an expiry index.
CREATE INDEX IF NOT EXISTS latchkey_sessions_user ON latchkey_sessions (user_id, created_at);
CREATE TABLE IF NOT EXISTS latchkey_revocations (
	seq        BIGSERIAL PRIMARY KEY,
	session_id TEXT NOT NULL DEFAULT '',
	token_id   TEXT NOT NULL DEFAULT '',
	at         BIGINT NOT NULL,
	until      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS latchkey_revocations_until ON latchkey_revocations (until);
CREATE TABLE IF NOT EXISTS latchkey_keys (
	id           TEXT PRIMARY KEY,
	algorithm    TEXT NOT NULL,
	sealed       BYTEA NOT NULL,
	created_at   BIGINT NOT NULL,
	activated_at BIGINT NOT NULL DEFAULT 0,
	retired_at   BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS latchkey_clients (
	id          TEXT PRIMARY KEY,
	secret_hash TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL
);
INSERT INTO latchkey_schema (version) VALUES (2);
`

func connect(t *testing.T, d string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(t.Context()) })
	return c
}

func mustExec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(t.Context(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// openFrom opens the store on a database first built with old (a schema text
// of an earlier version, or "" for a new database).
func openFrom(t *testing.T, old string) *postgres.DB {
	d := testenv.Postgres(t)
	if old != "" {
		mustExec(t, connect(t, d), old)
	}
	return open(t, d)
}

// A database upgraded from version 1, 2, 3 or 4 behaves as a new one: the
// whole suite passes on it.
func TestConformanceUpgraded(t *testing.T) {
	for name, old := range map[string]string{"version1": schemaV1, "version2": schemaV2, "version3": postgres.Schema(3), "version4": postgres.Schema(4)} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return openFrom(t, old) })
		})
	}
}

// describe is the schema of the test's search path: every column with its
// type, default and nullability, every index and constraint, and the table
// options, one line each in a fixed order.
func describe(t *testing.T, c *pgx.Conn) []string {
	t.Helper()
	rows, err := c.Query(t.Context(), `
		SELECT format('column %s.%s %s default %s null %s', table_name, column_name, data_type, coalesce(column_default, '-'), is_nullable)
			FROM information_schema.columns WHERE table_schema = current_schema()
		UNION ALL
		SELECT format('index %s', replace(indexdef, current_schema() || '.', ''))
			FROM pg_indexes WHERE schemaname = current_schema()
		UNION ALL
		SELECT format('constraint %s %s', conrelid::regclass, pg_get_constraintdef(oid))
			FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
		UNION ALL
		SELECT format('table %s %s', relname, coalesce(reloptions, '{}'))
			FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// An upgraded database ends with exactly the schema of a new one.
func TestUpgradedSchemaIsNew(t *testing.T) {
	schemas := map[string][]string{}
	for name, old := range map[string]string{"new": "", "version1": schemaV1, "version2": schemaV2, "version3": postgres.Schema(3), "version4": postgres.Schema(4)} {
		d := testenv.Postgres(t)
		if old != "" {
			mustExec(t, connect(t, d), old)
		}
		open(t, d)
		schemas[name] = describe(t, connect(t, d))
	}
	want := schemas["new"]
	for _, name := range []string{"version1", "version2", "version3", "version4"} {
		got := schemas[name]
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("schema upgraded from %s differs from a new one:\n%q\nwant\n%q", name, got, want)
		}
	}
}

// insertV2 writes a session as the last release before registrations did.
const insertV2 = `INSERT INTO latchkey_sessions (id, user_id, generation, rotated_at, created_at, last_used_at, idle_expires_at, expires_at, client_id)
	VALUES ($1, 'u1', 0, $2, $2, $2, $3, $3, $4)`

// A version-2 database with an OAuth client and sessions, upgraded: the client
// gets id@created_at as its registration; an OAuth session gets its client's
// if the client exists and is no younger than the session, and "-" otherwise
// (never "", which would make it refreshable as a first-party session); a
// first-party session keeps "".
func TestUpgradeFromVersion2(t *testing.T) {
	d := testenv.Postgres(t)
	c := connect(t, d)
	mustExec(t, c, schemaV2)
	const created = int64(4102444800123) // the client's created_at
	mustExec(t, c, `INSERT INTO latchkey_clients (id, secret_hash, name, created_at) VALUES ('web', '', 'the web app', $1)`, created)
	insert := func(id, client string, at int64) { mustExec(t, c, insertV2, id, at, at+3_600_000, client) }
	insert("first-party", "", created-1)
	insert("after", "web", created+1)
	insert("same-ms", "web", created)
	insert("before", "web", created-1)  // of an earlier registration of "web"
	insert("orphan", "gone", created+1) // its client was removed
	db := open(t, d)
	storetest.CheckUpgradedRegistrations(t, db, storetest.Upgraded{
		Client: "web", Registration: "web@4102444800123", At: time.UnixMilli(created + 2),
		Known:   map[string]string{"first-party": "", "after": "web@4102444800123", "same-ms": "web@4102444800123"},
		Unknown: []string{"before", "orphan"},
	})
	for _, id := range []string{"before", "orphan"} {
		if x, err := db.Session(t.Context(), id); err != nil || x.ClientRegistration != "-" {
			t.Errorf("Session(%q) = %+v, %v; want registration \"-\"", id, x, err)
		}
	}
	// A node of the previous version, still running, writes sessions without
	// the new column: a first-party one goes in, an OAuth one (which would get
	// '') is refused.
	if _, err := c.Exec(t.Context(), insertV2, "old-first-party", created+5, created+5+3_600_000, ""); err != nil {
		t.Errorf("a first-party session written as by the previous version: %v", err)
	}
	if _, err := c.Exec(t.Context(), insertV2, "old-oauth", created+5, created+5+3_600_000, "web"); err == nil {
		t.Errorf("an OAuth session written as by the previous version was accepted, with registration \"\"")
	}
	var v int
	if err := c.QueryRow(t.Context(), `SELECT version FROM latchkey_schema`).Scan(&v); err != nil || v != postgres.SchemaVersion {
		t.Fatalf("schema version after the upgrade = %d, %v; want %d", v, err, postgres.SchemaVersion)
	}
}

// A version-3 database (the last before identities and markers) with a user,
// an OAuth client and a session, upgraded: everything reads back as written,
// the session still rotates, and identities and markers work beside it.
func TestUpgradeFromVersion3(t *testing.T) {
	d := testenv.Postgres(t)
	c := connect(t, d)
	mustExec(t, c, postgres.Schema(3))
	const at = int64(4102444800123)
	mustExec(t, c, `INSERT INTO latchkey_users (id, username, password_hash, disabled, created_at) VALUES ('u1', 'alice', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$hash-of-alice', FALSE, $1)`, at)
	mustExec(t, c, `INSERT INTO latchkey_clients (id, registration, secret_hash, name, created_at) VALUES ('web', 'web@1', '', 'the web app', $1)`, at)
	mustExec(t, c, `INSERT INTO latchkey_sessions (id, user_id, generation, rotated_at, created_at, last_used_at, idle_expires_at, expires_at, user_agent, ip, client_id, client_registration)
		VALUES ('s1', 'u1', 3, $1, $1, $1, $2, $3, 'curl/8.5.0', '192.0.2.1', 'web', 'web@1')`, at, at+3_600_000, at+86_400_000)
	db := open(t, d)
	var v int
	if err := c.QueryRow(t.Context(), `SELECT version FROM latchkey_schema`).Scan(&v); err != nil || v != postgres.SchemaVersion {
		t.Fatalf("schema version after the upgrade = %d, %v; want %d", v, err, postgres.SchemaVersion)
	}
	created := time.UnixMilli(at)
	storetest.CheckUpgradedKept(t, db, storetest.Kept{
		User:   store.User{ID: "u1", Username: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$hash-of-alice", CreatedAt: created},
		Client: store.Client{ID: "web", Registration: "web@1", Name: "the web app", CreatedAt: created},
		Session: store.Session{ID: "s1", UserID: "u1", Generation: 3, RotatedAt: created, CreatedAt: created, LastUsedAt: created,
			IdleExpiresAt: created.Add(time.Hour), ExpiresAt: created.Add(24 * time.Hour), UserAgent: "curl/8.5.0", IP: "192.0.2.1",
			ClientID: "web", ClientRegistration: "web@1"},
	})
}

// A version-4 database (the last before audit events, limiter buckets and
// capped sessions) with a user, an OAuth client, a session, an identity and a
// marker, upgraded: everything reads back as written and still holds, and
// the new roles work beside it; a capped creation counts the old session.
func TestUpgradeFromVersion4(t *testing.T) {
	d := testenv.Postgres(t)
	c := connect(t, d)
	mustExec(t, c, postgres.Schema(4))
	const at = int64(4102444800123)
	mustExec(t, c, `INSERT INTO latchkey_users (id, username, password_hash, disabled, created_at) VALUES ('u1', 'alice', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$hash-of-alice', FALSE, $1)`, at)
	mustExec(t, c, `INSERT INTO latchkey_clients (id, registration, secret_hash, name, created_at) VALUES ('web', 'web@1', '', 'the web app', $1)`, at)
	mustExec(t, c, `INSERT INTO latchkey_sessions (id, user_id, generation, rotated_at, created_at, last_used_at, idle_expires_at, expires_at, user_agent, ip, client_id, client_registration)
		VALUES ('s1', 'u1', 3, $1, $1, $1, $2, $3, 'curl/8.5.0', '192.0.2.1', 'web', 'web@1')`, at, at+3_600_000, at+86_400_000)
	mustExec(t, c, `INSERT INTO latchkey_identities (id, user_id, provider, subject, email, created_at) VALUES ('i1', 'u1', 'github', '583231', 'alice@example.com', $1)`, at)
	mustExec(t, c, `INSERT INTO latchkey_markers (key, until) VALUES ('id-token-hash', $1)`, at+3_600_000)
	db := open(t, d)
	var v int
	if err := c.QueryRow(t.Context(), `SELECT version FROM latchkey_schema`).Scan(&v); err != nil || v != postgres.SchemaVersion {
		t.Fatalf("schema version after the upgrade = %d, %v; want %d", v, err, postgres.SchemaVersion)
	}
	created := time.UnixMilli(at)
	storetest.CheckUpgradedBeforeAudit(t, db, storetest.KeptBeforeAudit{
		Kept: storetest.Kept{
			User:   store.User{ID: "u1", Username: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$hash-of-alice", CreatedAt: created},
			Client: store.Client{ID: "web", Registration: "web@1", Name: "the web app", CreatedAt: created},
			Session: store.Session{ID: "s1", UserID: "u1", Generation: 3, RotatedAt: created, CreatedAt: created, LastUsedAt: created,
				IdleExpiresAt: created.Add(time.Hour), ExpiresAt: created.Add(24 * time.Hour), UserAgent: "curl/8.5.0", IP: "192.0.2.1",
				ClientID: "web", ClientRegistration: "web@1"},
		},
		Identity:    store.Identity{ID: "i1", UserID: "u1", Provider: "github", Subject: "583231", Email: "alice@example.com", CreatedAt: created},
		Marker:      "id-token-hash",
		MarkerUntil: created.Add(time.Hour),
	})
}

// A database of a newer latchkey is refused, not downgraded.
func TestOpenRefusesNewerSchema(t *testing.T) {
	d := testenv.Postgres(t)
	mustExec(t, connect(t, d), `CREATE TABLE latchkey_schema (version INTEGER NOT NULL); INSERT INTO latchkey_schema VALUES (99)`)
	db, err := postgres.Open(t.Context(), d, postgres.Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded on a database with schema version 99")
	}
	if !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("Open = %v, want it to name schema version 99", err)
	}
}

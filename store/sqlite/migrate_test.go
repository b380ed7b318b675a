package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/storetest"
)

// oldFile writes a database of schema version v with the migrations of that
// time (the list is append-only, so migrations[:v] is their text verbatim),
// runs setup on it, and returns its path.
func oldFile(t *testing.T, v int, setup ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, m := range migrations[:v] {
		if _, err := raw.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
		t.Fatal(err)
	}
	for _, q := range setup {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// A database upgraded from version 1, 2, 3 or 4 behaves as a new one: the
// whole suite passes on it.
func TestConformanceUpgraded(t *testing.T) {
	for _, v := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprint("version", v), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				d, err := Open(t.Context(), oldFile(t, v))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { d.Close() })
				return d
			})
		})
	}
}

// An upgraded database ends with exactly the schema of a new one.
func TestUpgradedSchemaIsNew(t *testing.T) {
	schema := func(d *DB) string {
		var s string
		if err := d.r.QueryRowContext(t.Context(), `SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_schema ORDER BY name)`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := schema(openTB(t))
	for _, v := range []int{1, 2, 3, 4} {
		d, err := Open(t.Context(), oldFile(t, v))
		if err != nil {
			t.Fatal(err)
		}
		if got := schema(d); got != want {
			t.Errorf("schema upgraded from version %d:\n%s\nwant\n%s", v, got, want)
		}
		d.Close()
	}
}

// A version-2 database with an OAuth client and sessions, upgraded: the client
// gets id@created_at as its registration; an OAuth session gets its client's
// if the client exists and is no younger than the session, and "-" otherwise
// (never "", which would make it refreshable as a first-party session); a
// first-party session keeps "".
func TestUpgradeFromVersion2(t *testing.T) {
	const created = int64(4102444800123) // the client's created_at
	session := func(id, client string, at int64) string {
		return fmt.Sprintf(`INSERT INTO sessions (id, user_id, generation, rotated_at, created_at, last_used_at, idle_expires_at, expires_at, client_id)
			VALUES ('%s', 'u1', 0, %d, %d, %d, %d, %d, '%s')`, id, at, at, at, at+3_600_000, at+3_600_000, client)
	}
	path := oldFile(t, 2,
		fmt.Sprintf(`INSERT INTO clients (id, secret_hash, name, created_at) VALUES ('web', '', 'the web app', %d)`, created),
		session("first-party", "", created-1),
		session("after", "web", created+1),
		session("same-ms", "web", created),
		session("before", "web", created-1),  // of an earlier registration of "web"
		session("orphan", "gone", created+1), // its client was removed
	)
	d, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	storetest.CheckUpgradedRegistrations(t, d, storetest.Upgraded{
		Client: "web", Registration: "web@4102444800123", At: time.UnixMilli(created + 2),
		Known:   map[string]string{"first-party": "", "after": "web@4102444800123", "same-ms": "web@4102444800123"},
		Unknown: []string{"before", "orphan"},
	})
	for _, id := range []string{"before", "orphan"} {
		if x, err := d.Session(t.Context(), id); err != nil || x.ClientRegistration != "-" {
			t.Errorf("Session(%q) = %+v, %v; want registration \"-\"", id, x, err)
		}
	}
	// A process of the previous version, still on the file, writes sessions
	// without the new column: a first-party one goes in, an OAuth one (which
	// would get '') is refused.
	old := func(id, client string) error {
		_, err := d.w.ExecContext(t.Context(), session(id, client, created+5))
		return err
	}
	if err := old("old-first-party", ""); err != nil {
		t.Errorf("a first-party session written as by the previous version: %v", err)
	}
	if err := old("old-oauth", "web"); err == nil {
		t.Errorf("an OAuth session written as by the previous version was accepted, with registration \"\"")
	}
	if _, err := d.w.ExecContext(t.Context(), `UPDATE sessions SET client_registration = '' WHERE id = 'after'`); err == nil {
		t.Errorf("an OAuth session's registration was updated to \"\"")
	}
	var v int
	if err := d.r.QueryRowContext(t.Context(), `PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version after the upgrade = %d, %v; want %d", v, err, len(migrations))
	}
}

// A version-3 database (the last before identities and markers) with a user,
// an OAuth client and a session, upgraded: everything reads back as written,
// the session still rotates, and identities and markers work beside it.
func TestUpgradeFromVersion3(t *testing.T) {
	const at = int64(4102444800123)
	path := oldFile(t, 3,
		fmt.Sprintf(`INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES ('u1', 'alice', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$hash-of-alice', 0, %d)`, at),
		fmt.Sprintf(`INSERT INTO clients (id, registration, secret_hash, name, created_at) VALUES ('web', 'web@1', '', 'the web app', %d)`, at),
		fmt.Sprintf(`INSERT INTO sessions (id, user_id, generation, rotated_at, created_at, last_used_at, idle_expires_at, expires_at, user_agent, ip, client_id, client_registration)
			VALUES ('s1', 'u1', 3, %d, %d, %d, %d, %d, 'curl/8.5.0', '192.0.2.1', 'web', 'web@1')`, at, at, at, at+3_600_000, at+86_400_000),
	)
	d, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var v int
	if err := d.r.QueryRowContext(t.Context(), `PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version after the upgrade = %d, %v; want %d", v, err, len(migrations))
	}
	created := time.UnixMilli(at)
	storetest.CheckUpgradedKept(t, d, storetest.Kept{
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
	const at = int64(4102444800123)
	path := oldFile(t, 4,
		fmt.Sprintf(`INSERT INTO users (id, username, password_hash, disabled, created_at) VALUES ('u1', 'alice', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$hash-of-alice', 0, %d)`, at),
		fmt.Sprintf(`INSERT INTO clients (id, registration, secret_hash, name, created_at) VALUES ('web', 'web@1', '', 'the web app', %d)`, at),
		fmt.Sprintf(`INSERT INTO sessions (id, user_id, generation, rotated_at, created_at, last_used_at, idle_expires_at, expires_at, user_agent, ip, client_id, client_registration)
			VALUES ('s1', 'u1', 3, %d, %d, %d, %d, %d, 'curl/8.5.0', '192.0.2.1', 'web', 'web@1')`, at, at, at, at+3_600_000, at+86_400_000),
		fmt.Sprintf(`INSERT INTO identities (id, user_id, provider, subject, email, created_at) VALUES ('i1', 'u1', 'github', '583231', 'alice@example.com', %d)`, at),
		fmt.Sprintf(`INSERT INTO markers (key, until) VALUES ('id-token-hash', %d)`, at+3_600_000),
	)
	d, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var v int
	if err := d.r.QueryRowContext(t.Context(), `PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version after the upgrade = %d, %v; want %d", v, err, len(migrations))
	}
	created := time.UnixMilli(at)
	storetest.CheckUpgradedBeforeAudit(t, d, storetest.KeptBeforeAudit{
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

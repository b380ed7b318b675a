package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/storetest"
)

func open(t *testing.T, d string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), d, postgres.Options{MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return open(t, testenv.Postgres(t)) })
	})
}

// Two pools (two nodes) on one schema: exactly one of 64 rotations wins.
func TestTwoPoolsOneSession(t *testing.T) {
	d := testenv.Postgres(t)
	a, b := open(t, d), open(t, d)
	ctx := context.Background()
	now := time.UnixMilli(1_800_000_000_000)
	if err := a.CreateSession(ctx, store.Session{ID: "s", UserID: "u", RotatedAt: now, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 64 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Go(func() {
			_, err := db.RotateSession(ctx, "s", store.Rotation{From: 0, At: now})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrConflict) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d rotations won across two pools, want 1", wins.Load())
	}
}

func TestUnreachableFailsFast(t *testing.T) {
	start := time.Now()
	_, err := postgres.Open(context.Background(), "postgres://u:secretpw@127.0.0.1:1/x?sslmode=disable", postgres.Options{ConnectTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Open took %v to fail", time.Since(start))
	}
	if strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("the error leaks the password: %v", err)
	}
}

// A rotation changes generation, rotated_at, last_used_at and idle_expires_at;
// no index of the sessions table may cover one (or use one in its predicate),
// or rotations stop being heap-only (HOT) updates and write every index. An
// index of an older schema is dropped when the store opens.
func TestRotationTouchesNoIndex(t *testing.T) {
	d := testenv.Postgres(t)
	open(t, d).Close()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// A database of schema version 1, with its expiry index and no fillfactor.
	if _, err := c.Exec(ctx, `CREATE INDEX latchkey_sessions_idle ON latchkey_sessions (idle_expires_at);
		ALTER TABLE latchkey_sessions RESET (fillfactor); UPDATE latchkey_schema SET version = 1`); err != nil {
		t.Fatal(err)
	}
	open(t, d) // as a node of the new version starts on the old schema
	var v int
	if err := c.QueryRow(ctx, `SELECT version FROM latchkey_schema`).Scan(&v); err != nil || v != 2 {
		t.Fatalf("schema version after the upgrade = %d, %v; want 2", v, err)
	}
	rows, err := c.Query(ctx, `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), coalesce(pg_get_expr(i.indpred, i.indrelid), '')
		FROM pg_index i WHERE i.indrelid = 'latchkey_sessions'::regclass`)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var name, def, pred string
		err := r.Scan(&name, &def, &pred)
		return name + ": " + def + " " + pred, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) == 0 {
		t.Fatal("no index on latchkey_sessions: the primary key is missing")
	}
	for _, def := range defs {
		for _, col := range []string{"generation", "rotated_at", "last_used_at", "idle_expires_at"} {
			if strings.Contains(def, col) {
				t.Errorf("index %s covers %s, which every rotation changes", def, col)
			}
		}
	}
	var opts []string
	if err := c.QueryRow(ctx, `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = 'latchkey_sessions'::regclass`).Scan(&opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(opts, "fillfactor=70") {
		t.Errorf("latchkey_sessions options %v: want fillfactor=70, room for HOT updates", opts)
	}
}

// The pool is DefaultMaxConns unless Options or the URL size it.
func TestPoolSize(t *testing.T) {
	d := testenv.Postgres(t)
	for _, tc := range []struct {
		url  string
		opt  int32
		want int32
	}{{d, 0, postgres.DefaultMaxConns}, {d, 5, 5}, {d + "&pool_max_conns=3", 0, 3}} {
		db, err := postgres.Open(context.Background(), tc.url, postgres.Options{MaxConns: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		if got := postgres.PoolMax(db); got != tc.want {
			t.Errorf("Open(MaxConns %d, %q): pool of %d, want %d", tc.opt, tc.url[strings.LastIndex(tc.url, "&"):], got, tc.want)
		}
		db.Close()
	}
}

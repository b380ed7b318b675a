package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// Two pools (two nodes) on one schema behave as one store.
func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		d := testenv.Postgres(t)
		return open(t, d), open(t, d)
	})
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
// or rotations stop being heap-only (HOT) updates and write every index. The
// expiry indexes of a version-1 database are dropped when the store opens.
func TestRotationTouchesNoIndex(t *testing.T) {
	for _, from := range []struct {
		name   string
		schema string
	}{{"new", ""}, {"version1", schemaV1}} {
		t.Run(from.name, func(t *testing.T) {
			d := testenv.Postgres(t)
			c := connect(t, d)
			ctx := t.Context()
			if from.schema != "" {
				mustExec(t, c, from.schema)
			}
			open(t, d) // as a node of the new version starts on the old schema
			var v int
			if err := c.QueryRow(ctx, `SELECT version FROM latchkey_schema`).Scan(&v); err != nil || v != postgres.SchemaVersion {
				t.Fatalf("schema version after opening = %d, %v; want %d", v, err, postgres.SchemaVersion)
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
		})
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

// Purge drops a bucket's row once it has refilled (Burst*Every after its last
// spend), and not a millisecond before.
func TestPurgeDropsRefilledBuckets(t *testing.T) {
	d := testenv.Postgres(t)
	db := open(t, d)
	c := connect(t, d)
	ctx := t.Context()
	now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.Spend(ctx, []store.Bucket{{Key: "k", Burst: 3, Every: time.Second}, {Key: "long", Burst: 3, Every: time.Minute}}, now); err != nil {
		t.Fatal(err)
	}
	rows := func() int {
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM latchkey_buckets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := db.Purge(ctx, now.Add(3*time.Second-time.Millisecond), 0); err != nil || rows() != 2 {
		t.Fatalf("after Purge a millisecond before the bucket refilled: %d rows, %v; want 2", rows(), err)
	}
	if _, err := db.Purge(ctx, now.Add(3*time.Second), 0); err != nil || rows() != 1 {
		t.Fatalf("after Purge as the bucket refilled: %d rows, %v; want 1", rows(), err)
	}
}

// Spends of the same buckets listed in opposite orders, at once, never
// deadlock: the statement takes the rows' locks in key order.
func TestSpendNoDeadlock(t *testing.T) {
	db := open(t, testenv.Postgres(t))
	ctx := t.Context()
	now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for i := range 64 {
		bs := make([]store.Bucket, len(keys))
		for j, k := range keys {
			if i%2 == 1 {
				k = keys[len(keys)-1-j]
			}
			bs[j] = store.Bucket{Key: k, Burst: 1000, Every: time.Minute}
		}
		wg.Go(func() { errs <- db.Spend(ctx, bs, now) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Spend = %v", err)
		}
	}
}

// Ping asks whether the server answers, not whether one pooled connection
// still works: after every backend of the pool was ended (as
// pg_terminate_backend does, and a restart), the connections just used are
// handed out again without a liveness check, and Ping must go past them.
func TestPingPastEndedConnections(t *testing.T) {
	d := testenv.Postgres(t)
	const app = "latchkey-ping-test"
	sep := "?"
	if strings.Contains(d, "?") {
		sep = "&"
	}
	db, err := postgres.Open(context.Background(), d+sep+"application_name="+app, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatalf("the PostgreSQL under test is unreachable: %v", err)
	}
	defer db.Close()
	ctx := t.Context()
	// Four sessions read at once fill the pool with four connections.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := db.UserSessions(ctx, fmt.Sprint("u", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c, err := pgx.Connect(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var ended int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1) AS e`, app).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if ended == 0 {
		t.Fatal("no backend of the pool was found to end")
	}
	time.Sleep(50 * time.Millisecond) // the FATAL reaches the client sockets
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after %d pooled connections were ended = %v, want nil: the server is up", ended, err)
	}
}

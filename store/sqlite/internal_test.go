package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/batch"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

func openTB(tb testing.TB) *DB {
	tb.Helper()
	d, err := Open(context.Background(), filepath.Join(tb.TempDir(), "latchkey.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// Every connection of both pools runs with the same pragmas; the readers are
// read-only.
func TestPragmasOnEveryConnection(t *testing.T) {
	d := openTB(t)
	ctx := t.Context()
	want := map[string]string{
		"journal_mode": "wal",
		"synchronous":  "1", // NORMAL
		"foreign_keys": "1",
		"busy_timeout": fmt.Sprint(busyTimeout.Milliseconds()),
	}
	check := func(pool string, db *sql.DB, n int, queryOnly string) {
		// Hold n connections at once, so that each is a different one.
		var conns []*sql.Conn
		for range n {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			for pragma, v := range want {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != v {
					t.Errorf("%s connection %d: PRAGMA %s = %s, want %s", pool, i, pragma, got, v)
				}
			}
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA query_only").Scan(&got); err != nil || got != queryOnly {
				t.Errorf("%s connection %d: PRAGMA query_only = %s (%v), want %s", pool, i, got, err, queryOnly)
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
	check("writer", d.w, 1, "0")
	check("reader", d.r, d.r.Stats().MaxOpenConnections, "1")
}

func TestSchemaVersion(t *testing.T) {
	d := openTB(t)
	var v int
	if err := d.r.QueryRowContext(t.Context(), "PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != len(migrations) {
		t.Fatalf("user_version = %d, want %d", v, len(migrations))
	}
	for _, index := range []string{"sessions_user", "revocations_until", "identities_user", "markers_until", "events_user", "events_at", "buckets_expires"} {
		var n int
		if err := d.r.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?`, index).Scan(&n); err != nil || n != 1 {
			t.Errorf("index %s: %d, %v", index, n, err)
		}
	}
}

// Purge finds its batches with reads and deletes them in short writes; many
// batches, with live sessions between the dead ones, all go.
func TestPurgeBatches(t *testing.T) {
	d := openTB(t)
	ctx := t.Context()
	now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	const total = 2*purgeBatch + 17
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dead := 0
	for i := range total {
		exp := now.Add(time.Hour)
		if i%3 != 1 {
			exp = now.Add(-time.Hour)
			dead++
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sqlrow.SessionColumns+`) VALUES (?, 'u', 0, 0, 0, 0, ?, ?, 0, '', '', '', '', '', '')`,
			fmt.Sprintf("s%05d", i), sqlrow.Millis(exp), sqlrow.Millis(exp)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	n, err := d.Purge(ctx, now, 0)
	if err != nil || n != dead {
		t.Fatalf("Purge = %d, %v; want %d", n, err, dead)
	}
	var left int
	if err := d.r.QueryRowContext(ctx, `SELECT count(*) FROM sessions`).Scan(&left); err != nil || left != total-dead {
		t.Fatalf("%d sessions left (%v), want %d", left, err, total-dead)
	}
}

// parallel32 runs body with 32 goroutines (at least one per P).
func parallel32(b *testing.B, body func(*testing.PB)) {
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(body)
}

// BenchmarkRotateSession measures the compare-and-swap of a refresh. In the
// parallel case every goroutine rotates its own session, so every swap succeeds
// and the figure is the cost of a successful rotation under write contention.
func BenchmarkRotateSession(b *testing.B) {
	at := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	r := store.Rotation{At: at, IdleExpiresAt: at.Add(time.Hour)}
	newSession := func(b *testing.B, d *DB, id string) {
		if err := d.CreateSession(context.Background(), store.Session{ID: id, UserID: "u", RotatedAt: at, CreatedAt: at,
			LastUsedAt: at, IdleExpiresAt: at.Add(time.Hour), ExpiresAt: at.Add(24 * time.Hour),
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "192.0.2.1"}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("sequential", func(b *testing.B) {
		d := openTB(b)
		ctx := context.Background()
		newSession(b, d, "s")
		b.ReportAllocs()
		for r.From = 0; b.Loop(); r.From++ {
			if _, err := d.RotateSession(ctx, "s", r); err != nil {
				b.Fatal(err)
			}
		}
	})
	// "parallel" is the store as it runs, with group commit; "unbatched"
	// writes every rotation on its own, as before group commit.
	for _, mode := range []string{"parallel", "unbatched"} {
		b.Run(mode, func(b *testing.B) {
			d := openTB(b)
			if mode == "unbatched" {
				unbatched(d)
			}
			ctx := context.Background()
			var ids atomic.Int64
			b.ReportAllocs()
			parallel32(b, func(pb *testing.PB) {
				id := fmt.Sprint("s", ids.Add(1))
				newSession(b, d, id)
				r := r
				for r.From = 0; pb.Next(); r.From++ {
					if _, err := d.RotateSession(ctx, id, r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// unbatched makes d write every rotation on its own (batches of one), the
// baseline of group commit.
func unbatched(d *DB) {
	d.rotations.Close()
	d.rotations = batch.New(1, 1, 0, d.rotateBatch)
}

// BenchmarkBareWriteTx is the baseline for BenchmarkRotateSession: the
// cheapest write SQLite can commit with the same file, pragmas and writer
// connection — one single-row UPDATE of a two-column table, as a statement on
// its own ("stmt") and inside BEGIN IMMEDIATE … COMMIT ("tx").
func BenchmarkBareWriteTx(b *testing.B) {
	setup := func(b *testing.B) (*DB, *sql.Stmt) {
		d := openTB(b)
		if _, err := d.w.Exec(`CREATE TABLE bare (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		if _, err := d.w.Exec(`WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 1000) INSERT INTO bare SELECT x, 0 FROM i`); err != nil {
			b.Fatal(err)
		}
		st, err := d.w.Prepare(`UPDATE bare SET n = n + 1 WHERE id = ?`)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return d, st
	}
	update := func(ctx context.Context, d *DB, st *sql.Stmt, inTx bool, id int64) error {
		if !inTx {
			_, err := st.ExecContext(ctx, id)
			return err
		}
		tx, err := d.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, id); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	for _, mode := range []struct {
		name string
		inTx bool
	}{{"stmt", false}, {"tx", true}} {
		b.Run(mode.name+"/sequential", func(b *testing.B) {
			d, st := setup(b)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := update(ctx, d, st, mode.inTx, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"/parallel", func(b *testing.B) {
			d, st := setup(b)
			ctx := context.Background()
			var ids atomic.Int64
			b.ReportAllocs()
			parallel32(b, func(pb *testing.PB) {
				id := ids.Add(1)
				for pb.Next() {
					if err := update(ctx, d, st, mode.inTx, id); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSession measures the point read a refresh makes before it rotates.
func BenchmarkSession(b *testing.B) {
	at := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	d := openTB(b)
	ctx := context.Background()
	const n = 1000
	for i := range n {
		if err := d.CreateSession(ctx, store.Session{ID: fmt.Sprint("s", i), UserID: "u", CreatedAt: at,
			IdleExpiresAt: at.Add(time.Hour), ExpiresAt: at.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("s", i)
	}
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := d.Session(ctx, ids[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		parallel32(b, func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := d.Session(ctx, ids[i%n]); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	})
}

// Purge drops a bucket's row once it has refilled (Burst*Every after its last
// spend), and not a millisecond before.
func TestPurgeDropsRefilledBuckets(t *testing.T) {
	d := openTB(t)
	ctx := t.Context()
	now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := d.Spend(ctx, []store.Bucket{{Key: "k", Burst: 3, Every: time.Second}, {Key: "long", Burst: 3, Every: time.Minute}}, now); err != nil {
		t.Fatal(err)
	}
	rows := func() int {
		var n int
		if err := d.r.QueryRowContext(ctx, `SELECT count(*) FROM buckets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := d.Purge(ctx, now.Add(3*time.Second-time.Millisecond), 0); err != nil || rows() != 2 {
		t.Fatalf("after Purge a millisecond before the bucket refilled: %d rows, %v; want 2", rows(), err)
	}
	if _, err := d.Purge(ctx, now.Add(3*time.Second), 0); err != nil || rows() != 1 {
		t.Fatalf("after Purge as the bucket refilled: %d rows, %v; want 1", rows(), err)
	}
}

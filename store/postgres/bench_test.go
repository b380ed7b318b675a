package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/storetest"
)

// BenchmarkRotateSession is the compare-and-swap of a refresh on PostgreSQL,
// every goroutine on its own session (every swap succeeds). Compare with
// BenchmarkBareWrite, run in the same invocation.
func BenchmarkRotateSession(b *testing.B) {
	storetest.BenchRotateSession(b, open32(b, testenv.Postgres(b)))
}

// BenchmarkRotateSessionUnbatched is BenchmarkRotateSession with every
// rotation written on its own: the baseline of group commit.
func BenchmarkRotateSessionUnbatched(b *testing.B) {
	db := open32(b, testenv.Postgres(b))
	postgres.Unbatched(db)
	storetest.BenchRotateSession(b, db)
}

// BenchmarkBareWrite is the baseline of BenchmarkRotateSession: the cheapest
// committed write, a single-row UPDATE of a two-column table, on 32 pooled
// connections of the same server.
func BenchmarkBareWrite(b *testing.B) {
	d := testenv.Postgres(b)
	open32(b, d) // the same schema set-up, so both run on equal terms
	ctx := context.Background()
	c, err := pgx.Connect(ctx, d)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE bare (id INT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO bare SELECT g, 0 FROM generate_series(1, 1000) g`); err != nil {
		b.Fatal(err)
	}
	pool := poolOf(b, d)
	var ids atomic.Int64
	b.ReportAllocs()
	storetest.Parallel32(b, func(pb *testing.PB) {
		id := ids.Add(1)
		for pb.Next() {
			if _, err := pool.Exec(ctx, `UPDATE bare SET n = n + 1 WHERE id = $1`, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// open32 opens the store with 32 connections, one per benchmark goroutine.
func open32(b *testing.B, d string) *postgres.DB {
	b.Helper()
	db, err := postgres.Open(context.Background(), d, postgres.Options{MaxConns: 32})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// poolOf is a bare pgx pool of 32 connections to d.
func poolOf(b *testing.B, d string) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(d)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

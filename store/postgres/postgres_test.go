package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/storetest"
)

// dsn returns LATCHKEY_TEST_POSTGRES, or skips saying why.
func dsn(t *testing.T) string {
	t.Helper()
	d := os.Getenv("LATCHKEY_TEST_POSTGRES")
	if d == "" {
		t.Skip("LATCHKEY_TEST_POSTGRES not set: skipping the PostgreSQL store tests")
	}
	return d
}

// schemaDSN creates an empty schema for one test and returns a DSN that uses it.
func schemaDSN(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "lk_test_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("LATCHKEY_TEST_POSTGRES is set but unreachable: %v", err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

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
	base := dsn(t)
	t.Run("postgres", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return open(t, schemaDSN(t, base)) })
	})
}

// Two pools (two nodes) on one schema: exactly one of 64 rotations wins.
func TestTwoPoolsOneSession(t *testing.T) {
	d := schemaDSN(t, dsn(t))
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

package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

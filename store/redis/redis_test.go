package redis_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/redis"
	"github.com/latchkey/latchkey/store/storetest"
)

// backends are the Redis deployments the tests run against; each skips,
// saying so, when its environment variable is unset.
var backends = []struct {
	name string
	url  func(testing.TB) string
}{
	{"redis", testenv.Redis},
	{"cluster", testenv.RedisCluster},
}

func open(t *testing.T, u string) *redis.DB {
	t.Helper()
	db, err := redis.Open(context.Background(), u, redis.Options{})
	if err != nil {
		t.Fatalf("the Redis under test is unreachable: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.url(t) // skip the whole backend early when it is not configured
			storetest.Run(t, func(t *testing.T) store.Store { return open(t, b.url(t)) })
		})
	}
}

// Two clients (two nodes): exactly one of 64 rotations wins.
func TestTwoClientsOneSession(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			a := open(t, b.url(t))
			ctx := context.Background()
			now := time.Now()
			if err := a.CreateSession(ctx, store.Session{ID: "s", UserID: "u", RotatedAt: now, CreatedAt: now, LastUsedAt: now,
				IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			var wins atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					_, err := a.RotateSession(ctx, "s", store.Rotation{From: 0, At: now})
					if err == nil {
						wins.Add(1)
					} else if !errors.Is(err, store.ErrConflict) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d rotations won, want 1", wins.Load())
			}
		})
	}
}

func TestUnreachableFailsFast(t *testing.T) {
	start := time.Now()
	_, err := redis.Open(context.Background(), "redis://:secretpw@127.0.0.1:1/0", redis.Options{DialTimeout: time.Second})
	if err == nil || time.Since(start) > 10*time.Second || strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("Open against a closed port = %v after %v", err, time.Since(start))
	}
}

// A session hash missing fields (written by hand, or by something else) is
// refused by the rotation as the Go side reads it — "" and 0 — not answered
// with a script error.
func TestRotateHashWithMissingFields(t *testing.T) {
	u := testenv.Redis(t)
	db := open(t, u)
	base, query, _ := strings.Cut(u, "?")
	q, _ := url.ParseQuery(query)
	opts, err := goredis.ParseURL(base)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	key := q.Get("prefix") + "s:{s:partial}"
	if err := c.HSet(ctx, key, "id", "partial", "user_id", "u", "generation", "0").Err(); err != nil {
		t.Fatal(err)
	}
	_, err = db.RotateSession(ctx, "partial", store.Rotation{From: 0, At: time.Now(), IdleExpiresAt: time.Now().Add(time.Hour)})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RotateSession of a partial hash = %v, want %v", err, store.ErrConflict)
	}
}

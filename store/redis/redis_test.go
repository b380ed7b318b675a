package redis_test

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

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/redis"
	"github.com/latchkey/latchkey/store/storetest"
)

// backends are the Redis deployments the tests run against: each needs its
// environment variable, and a run says which ones it skipped.
var backends = []struct{ name, env, scheme string }{
	{"redis", "LATCHKEY_TEST_REDIS", ""},
	{"cluster", "LATCHKEY_TEST_REDIS_CLUSTER", "redis-cluster://"},
}

func url(t *testing.T, env, scheme string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Skipf("%s not set: skipping this Redis backend", env)
	}
	return scheme + v
}

// open returns a store under a fresh key prefix, and removes its keys afterwards.
func open(t *testing.T, u string) *redis.DB {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "lkt:" + hex.EncodeToString(b) + ":"
	db, err := redis.Open(context.Background(), u, redis.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("the Redis under test is unreachable: %v", err)
	}
	t.Cleanup(func() {
		cleanup(u, prefix)
		db.Close()
	})
	return db
}

func cleanup(u, prefix string) {
	ctx := context.Background()
	var c goredis.UniversalClient
	if strings.HasPrefix(u, "redis-cluster://") {
		c = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: strings.Split(strings.TrimPrefix(u, "redis-cluster://"), ",")})
	} else {
		o, _ := goredis.ParseURL(u)
		c = goredis.NewClient(o)
	}
	defer c.Close()
	del := func(ctx context.Context, n goredis.UniversalClient) error {
		iter := n.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			n.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	if cc, ok := c.(*goredis.ClusterClient); ok {
		cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return del(ctx, n) })
	} else {
		del(ctx, c)
	}
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			u := url(t, b.env, b.scheme)
			storetest.Run(t, func(t *testing.T) store.Store { return open(t, u) })
		})
	}
}

// Two clients (two nodes): exactly one of 64 rotations wins.
func TestTwoClientsOneSession(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			u := url(t, b.env, b.scheme)
			a := open(t, u)
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

package redis_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/redis"
)

// parallel32 runs body on 32 goroutines, as 32 HTTP clients would.
func parallel32(b *testing.B, body func(*testing.PB)) {
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(body)
}

// BenchmarkRotateSession is the compare-and-swap of a refresh on Redis (one
// Lua script), every goroutine on its own session. Compare with
// BenchmarkBareWrite, run in the same invocation.
func BenchmarkRotateSession(b *testing.B) {
	u := testenv.Redis(b)
	db, err := redis.Open(context.Background(), u, redis.Options{PoolSize: 32})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	at := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids atomic.Int64
	b.ReportAllocs()
	parallel32(b, func(pb *testing.PB) {
		id := fmt.Sprint("s", ids.Add(1))
		if err := db.CreateSession(ctx, store.Session{ID: id, UserID: "u", RotatedAt: at, CreatedAt: at, LastUsedAt: at,
			IdleExpiresAt: at.Add(time.Hour), ExpiresAt: at.Add(24 * time.Hour)}); err != nil {
			b.Error(err)
			return
		}
		r := store.Rotation{At: at, IdleExpiresAt: at.Add(time.Hour)}
		for r.From = 0; pb.Next(); r.From++ {
			if _, err := db.RotateSession(ctx, id, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBareWrite is the baseline of BenchmarkRotateSession: one HINCRBY
// per operation on the same server, 32 pooled connections.
func BenchmarkBareWrite(b *testing.B) {
	u := testenv.Redis(b)
	base, _, _ := strings.Cut(u, "?") // the store's ?prefix= is not a go-redis option
	opts, err := goredis.ParseURL(base)
	if err != nil {
		b.Fatal(err)
	}
	opts.PoolSize = 32
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	key := "lkbench:bare:" + fmt.Sprint(time.Now().UnixNano())
	defer c.Del(ctx, key)
	var ids atomic.Int64
	b.ReportAllocs()
	parallel32(b, func(pb *testing.PB) {
		field := fmt.Sprint(ids.Add(1))
		for pb.Next() {
			if err := c.HIncrBy(ctx, key, field, 1).Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

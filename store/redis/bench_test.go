package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store/redis"
	"github.com/latchkey/latchkey/store/storetest"
)

// BenchmarkRotateSession is the compare-and-swap of a refresh on Redis (one
// Lua script), every goroutine on its own session. Compare with
// BenchmarkBareWrite, run in the same invocation.
func BenchmarkRotateSession(b *testing.B) {
	db, err := redis.Open(context.Background(), testenv.Redis(b), redis.Options{PoolSize: 32})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchRotateSession(b, db)
}

// BenchmarkRotateSessionUnbatched is BenchmarkRotateSession with every
// rotation sent on its own: the baseline of group commit.
func BenchmarkRotateSessionUnbatched(b *testing.B) {
	db, err := redis.Open(context.Background(), testenv.Redis(b), redis.Options{PoolSize: 32})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	redis.Unbatched(db)
	storetest.BenchRotateSession(b, db)
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
	storetest.Parallel32(b, func(pb *testing.PB) {
		field := fmt.Sprint(ids.Add(1))
		for pb.Next() {
			if err := c.HIncrBy(ctx, key, field, 1).Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/tokenbucket"
)

// bucketKey is the key of the limiter bucket named key. Every bucket shares
// the hash tag {rl}, so one script spends from all the buckets of a call,
// under Redis Cluster too.
func (db *DB) bucketKey(key string) string { return db.p + "{rl}:" + key }

// spend takes one token from each bucket KEYS[i], whose burst, refill
// interval (milliseconds) and lifetime (milliseconds) are ARGV[3i-1],
// ARGV[3i] and ARGV[3i+1], at ARGV[1] (Unix milliseconds). The arithmetic is
// tokenbucket.Spend's, operation for operation, on Lua's doubles; tokens are
// written with 17 significant digits, so they read back exactly. A bucket
// expires when it has refilled: its lifetime after its updated_at, on Redis'
// clock, counted from the caller's now.
var spend = goredis.NewScript(`
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
	local burst, every, ttl = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
	local tokens, updated = burst, now
	local b = redis.call('HMGET', key, 'tokens', 'updated_at')
	if b[1] and b[2] then tokens, updated = tonumber(b[1]), tonumber(b[2]) end
	tokens = math.max(math.min(burst, tokens + math.max(now - updated, 0) / every) - 1, 0)
	updated = math.max(updated, now)
	redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'updated_at', string.format('%d', updated))
	redis.call('PEXPIRE', key, string.format('%d', ttl + updated - now))
end
return 1`)

// Spend takes a token from each of bs with one script.
func (db *DB) Spend(ctx context.Context, bs []store.Bucket, now time.Time) error {
	tbs, err := tokenbucket.Check(bs)
	if err != nil {
		return fmt.Errorf("redis: spend: %w", err)
	}
	if len(tbs) == 0 {
		return nil
	}
	keys := make([]string, len(tbs))
	args := make([]any, 1, 1+3*len(tbs))
	args[0] = strconv.FormatInt(now.UnixMilli(), 10)
	for i, b := range tbs {
		keys[i] = db.bucketKey(b.Key)
		args = append(args, strconv.FormatFloat(b.Burst, 'g', -1, 64), strconv.FormatFloat(b.EveryMS, 'g', -1, 64), strconv.FormatInt(b.TTLMS, 10))
	}
	if err := spend.Run(ctx, db.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("redis: spend: %w", err)
	}
	return nil
}

// Wait reads the buckets of bs and returns the longest wait among them.
func (db *DB) Wait(ctx context.Context, bs []store.Bucket, now time.Time) (time.Duration, error) {
	tbs, err := tokenbucket.Check(bs)
	if err != nil {
		return 0, fmt.Errorf("redis: wait: %w", err)
	}
	cmds := make([]*goredis.SliceCmd, len(tbs))
	if _, err := db.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, b := range tbs {
			cmds[i] = p.HMGet(ctx, db.bucketKey(b.Key), "tokens", "updated_at")
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("redis: wait: %w", err)
	}
	var wait time.Duration
	for i, b := range tbs {
		v := cmds[i].Val()
		ts, ok1 := v[0].(string)
		us, ok2 := v[1].(string)
		if !ok1 || !ok2 {
			continue // never seen, forgotten or expired: full
		}
		tokens, err1 := strconv.ParseFloat(ts, 64)
		updated, err2 := strconv.ParseInt(us, 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, fmt.Errorf("redis: wait: bucket %q: %w", b.Key, err)
		}
		wait = max(wait, tokenbucket.Wait(b, tokenbucket.Refill(b, tokens, updated, now.UnixMilli())))
	}
	return wait, nil
}

// Forget deletes the bucket with this key.
func (db *DB) Forget(ctx context.Context, key string) error {
	if err := db.c.Del(ctx, db.bucketKey(key)).Err(); err != nil {
		return fmt.Errorf("redis: forget: %w", err)
	}
	return nil
}

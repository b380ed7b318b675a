package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/store"
)

// markerKey is the key of one marker: alone in its slot, as every script on
// it touches it and nothing else.
func (db *DB) markerKey(key string) string { return db.p + "m:{m:" + key + "}" }

// mark records marker KEYS[1] with until ARGV[1] (Unix milliseconds) for
// ARGV[3] milliseconds, unless it holds an until after now, ARGV[2]: then 0.
//
// The check compares the stored until with the caller's now, never with
// Redis' clock, so every backend draws the line at the same instant. The
// expiry, which only lets Redis forget the marker, is relative (PX until-now,
// computed by the caller): a Redis clock ahead of the caller's cannot drop a
// marker early, as an absolute PXAT until would. With ARGV[3] <= 0 the
// marker has ended already and counts as absent: the key is removed.
var mark = goredis.NewScript(`
local u = redis.call('GET', KEYS[1])
if u and tonumber(u) > tonumber(ARGV[2]) then return 0 end
if tonumber(ARGV[3]) > 0 then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
else
	redis.call('DEL', KEYS[1])
end
return 1`)

// Mark records key until until, in one script; store.ErrExists while a
// marker with an until after now holds it.
func (db *DB) Mark(ctx context.Context, key string, now, until time.Time) error {
	u, n := until.UnixMilli(), now.UnixMilli()
	ok, err := mark.Run(ctx, db.c, []string{db.markerKey(key)}, strconv.FormatInt(u, 10), strconv.FormatInt(n, 10), strconv.FormatInt(u-n, 10)).Int()
	if err != nil {
		return fmt.Errorf("redis: mark: %w", err)
	}
	if ok == 0 {
		return store.ErrExists
	}
	return nil
}

// purgeMarker deletes marker KEYS[1] if its until is not after ARGV[1].
var purgeMarker = goredis.NewScript(`
local u = redis.call('GET', KEYS[1])
if u and tonumber(u) <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0`)

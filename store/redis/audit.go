package redis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/eventlog"
)

// Audit events live in one hash slot, {audit}: a hash per event, a sorted
// set of every event's ID and one of each user's, both scored by At in Unix
// milliseconds. An append — checking every ID, then writing the hashes and
// the sets — is then one script, all or none, which Redis Cluster allows.
// Members of one score come out of ZREVRANGEBYSCORE in descending byte
// order, the order Events promises for events of one millisecond. Events
// are appended at every sign-in and read by operators now and then: one
// slot carries them easily.

func (db *DB) eventKey(id string) string       { return db.p + "{audit}:e:" + id }
func (db *DB) eventsKey() string               { return db.p + "{audit}:all" }
func (db *DB) userEventsKey(uid string) string { return db.p + "{audit}:u:" + uid }

// eventFields are the fields of an event hash, in the order of eventValues.
var eventFields = []string{"id", "at", "kind", "actor", "user_id", "session_id", "ip", "user_agent", "detail"}

func eventValues(e store.Event) []any {
	return []any{e.ID, ms(e.At), e.Kind, e.Actor, e.UserID, e.SessionID, e.IP, e.UserAgent, e.Detail}
}

// appendEvents stores n events: KEYS[1] is the set of every event,
// KEYS[1+i] the hash of event i and KEYS[1+n+i] its user's set; ARGV holds
// each event's eventValues in turn. 0, writing nothing, if a hash exists.
var appendEvents = goredis.NewScript(`
local n = #ARGV / 9
for i = 1, n do
	if redis.call('EXISTS', KEYS[1 + i]) == 1 then return 0 end
end
for i = 1, n do
	local a = (i - 1) * 9
	redis.call('HSET', KEYS[1 + i], 'id', ARGV[a + 1], 'at', ARGV[a + 2], 'kind', ARGV[a + 3], 'actor', ARGV[a + 4],
		'user_id', ARGV[a + 5], 'session_id', ARGV[a + 6], 'ip', ARGV[a + 7], 'user_agent', ARGV[a + 8], 'detail', ARGV[a + 9])
	redis.call('ZADD', KEYS[1], ARGV[a + 2], ARGV[a + 1])
	if ARGV[a + 5] ~= '' then redis.call('ZADD', KEYS[1 + n + i], ARGV[a + 2], ARGV[a + 1]) end
end
return 1`)

// AppendEvents stores es with one script: all or none; store.ErrExists if
// an ID is taken.
func (db *DB) AppendEvents(ctx context.Context, es []store.Event) error {
	if err := eventlog.Check(es); err != nil {
		if errors.Is(err, store.ErrExists) {
			return err
		}
		return fmt.Errorf("redis: append events: %w", err)
	}
	if len(es) == 0 {
		return nil
	}
	keys := make([]string, 1+2*len(es))
	keys[0] = db.eventsKey()
	args := make([]any, 0, len(eventFields)*len(es))
	for i, e := range es {
		keys[1+i], keys[1+len(es)+i] = db.eventKey(e.ID), db.userEventsKey(e.UserID)
		args = append(args, eventValues(e)...)
	}
	n, err := appendEvents.Run(ctx, db.c, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("redis: append events: %w", err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

// Events reads the newest IDs from the set f names (every event's, or the
// user's), then their hashes. An event purged in between is left out.
func (db *DB) Events(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	set := db.eventsKey()
	if f.UserID != "" {
		set = db.userEventsKey(f.UserID)
	}
	since := "-inf"
	if s := eventlog.Since(f); s != math.MinInt64 {
		since = strconv.FormatInt(s, 10)
	}
	ids, err := db.c.ZRevRangeByScore(ctx, set, &goredis.ZRangeBy{Max: "+inf", Min: since, Count: int64(eventlog.Limit(f))}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: events: %w", err)
	}
	cmds := make([]*goredis.SliceCmd, len(ids))
	_, err = db.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, db.eventKey(id), eventFields...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis: events: %w", err)
	}
	out := make([]store.Event, 0, len(ids))
	for _, c := range cmds {
		v := make([]string, len(eventFields))
		for i, f := range c.Val() {
			v[i], _ = f.(string)
		}
		if v[0] == "" {
			continue // purged in between
		}
		out = append(out, store.Event{ID: v[0], At: fromMS(v[1]), Kind: v[2], Actor: v[3], UserID: v[4],
			SessionID: v[5], IP: v[6], UserAgent: v[7], Detail: v[8]})
	}
	return out, nil
}

// purgeEvents deletes the n events ARGV[2..n+1] whose at is before ARGV[1]:
// hash KEYS[1+i], its entry in the set of every event KEYS[1] and in its
// user's set KEYS[1+n+i]. An entry without its hash goes too, uncounted. It
// returns how many hashes it deleted.
var purgeEvents = goredis.NewScript(`
local n, deleted = #ARGV - 1, 0
for i = 1, n do
	local id, at = ARGV[1 + i], redis.call('HGET', KEYS[1 + i], 'at')
	if not at or tonumber(at) < tonumber(ARGV[1]) then
		redis.call('ZREM', KEYS[1], id)
		redis.call('ZREM', KEYS[1 + n + i], id)
		deleted = deleted + redis.call('DEL', KEYS[1 + i])
	end
end
return deleted`)

// eventsBatch is how many events one purgeEvents script deletes at most.
const eventsBatch = 500

// PurgeEvents deletes the events before before, oldest first, a batch at a
// time: it reads the batch's IDs and users, then deletes them with one
// script that checks each event's time again.
func (db *DB) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	deleted := 0
	cut := before.UnixMilli()
	for {
		ids, err := db.c.ZRangeByScore(ctx, db.eventsKey(), &goredis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatInt(cut, 10), Count: eventsBatch}).Result()
		if err != nil {
			return deleted, fmt.Errorf("redis: purge events: %w", err)
		}
		if len(ids) == 0 {
			return deleted, nil
		}
		users := make([]*goredis.StringCmd, len(ids))
		if _, err := db.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, id := range ids {
				users[i] = p.HGet(ctx, db.eventKey(id), "user_id")
			}
			return nil
		}); err != nil && !errors.Is(err, goredis.Nil) {
			return deleted, fmt.Errorf("redis: purge events: %w", err)
		}
		keys := make([]string, 1+2*len(ids))
		keys[0] = db.eventsKey()
		args := make([]any, 1+len(ids))
		args[0] = strconv.FormatInt(cut, 10)
		for i, id := range ids {
			keys[1+i], keys[1+len(ids)+i] = db.eventKey(id), db.userEventsKey(users[i].Val())
			args[1+i] = id
		}
		n, err := purgeEvents.Run(ctx, db.c, keys, args...).Int()
		if err != nil {
			return deleted, fmt.Errorf("redis: purge events: %w", err)
		}
		deleted += n
	}
}

package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/store"
)

// A session's hash lives in its own slot ({s:ID}), so no script can see all
// of a user's sessions under Redis Cluster. The cap is kept in the user's
// slot ({u:ID}) instead, beside the set of the user's session IDs that
// UserSessions reads:
//
//   - ul:{u:ID}, the user's sessions not known to have ended, each scored by
//     its LastUsedAt (Unix milliseconds); members of one score sort in
//     ascending byte order, so the set's first members are the least
//     recently used, ties by ID, as CreateSessionCapped orders them;
//   - ui:{u:ID}, set by the first capped creation of the user, which adds
//     the sessions stored before the set existed (by an older version).
//
// CreateSession adds each new session to the user's set and to ul.
// CreateSessionCapped inserts the session's hash, reads the user's sessions
// (as UserSessions does), and then runs one script on the user's slot: it
// drops from ul the sessions it read as ended (ended sessions never come
// back), refreshes the scores of those it read as live to their LastUsedAt,
// adds the new session, and pops the least recently used members beyond the
// cap, never the new one. Because the count and the pop are one script,
// concurrent creations on any node never leave more than the cap in ul
// between them, and every popped session is revoked by the creation that
// popped it, through the normal revocation path (its own slot, then the
// feed's).
//
// The approximation: LastUsedAt is read from the sessions' hashes before
// the script, and rotations do not touch the user's slot (a refresh stays
// one script on one key), so the order may lag a rotation in flight, one
// that commits between the read and the script. A session revoked or ended
// in that window still counts, so a creation racing a logout may leave one
// live session fewer than the cap allows; never more. A session's ended
// state is final, and a session that another creation popped (and is
// revoking) is refreshed only if still a member (ZADD XX), so it is never
// counted again. A process that dies between steps can leave a session out
// of ul (created but not indexed, or popped but not revoked): such a session
// is not counted until it ends.

func (db *DB) lruKey(uid string) string         { return db.p + "ul:{u:" + uid + "}" }
func (db *DB) lruCompleteKey(uid string) string { return db.p + "ui:{u:" + uid + "}" }

// indexSessionScript adds session ARGV[1], last used at ARGV[2], to the
// user's set KEYS[1] and to the user's least-recently-used set KEYS[2].
var indexSessionScript = goredis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1`)

// indexSession adds x to its user's indexes.
func (db *DB) indexSession(ctx context.Context, x store.Session) error {
	return indexSessionScript.Run(ctx, db.c, []string{db.userSessions(x.UserID), db.lruKey(x.UserID)}, x.ID, ms(x.LastUsedAt)).Err()
}

// unindexSessionScript removes session ARGV[1] from the user's indexes
// KEYS[1] and KEYS[2].
var unindexSessionScript = goredis.NewScript(`
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`)

// unindexSession removes session id from the indexes of user uid, best
// effort: it is called for sessions gone from Redis.
func (db *DB) unindexSession(ctx context.Context, uid, id string) {
	unindexSessionScript.Run(ctx, db.c, []string{db.userSessions(uid), db.lruKey(uid)}, id)
}

// capSessions adds session ARGV[2], last used at ARGV[3], to the user's set
// KEYS[1] and least-recently-used set KEYS[2], after dropping from KEYS[2]
// the ARGV[4] sessions that follow (read as ended) and refreshing the
// sessions after those (ID, LastUsedAt pairs, read as live): only if they
// are members, once KEYS[3] is set; else adding them too, then setting
// KEYS[3]. It then pops and returns the least recently used members beyond
// ARGV[1], never ARGV[2].
var capSessions = goredis.NewScript(`
local limit, id = tonumber(ARGV[1]), ARGV[2]
local ended = tonumber(ARGV[4])
for i = 5, 4 + ended do redis.call('ZREM', KEYS[2], ARGV[i]) end
local complete = redis.call('EXISTS', KEYS[3]) == 1
for i = 5 + ended, #ARGV, 2 do
	if complete then
		redis.call('ZADD', KEYS[2], 'XX', 'GT', ARGV[i + 1], ARGV[i])
	else
		redis.call('ZADD', KEYS[2], 'GT', ARGV[i + 1], ARGV[i])
	end
end
redis.call('SET', KEYS[3], '1')
redis.call('SADD', KEYS[1], id)
redis.call('ZADD', KEYS[2], ARGV[3], id)
local over = redis.call('ZCARD', KEYS[2]) - limit
local popped = {}
if over <= 0 then return popped end
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, over)) do
	if m ~= id and #popped < over then
		popped[#popped + 1] = m
		redis.call('ZREM', KEYS[2], m)
	end
end
return popped`)

// CreateSessionCapped inserts x and revokes the user's least recently used
// live sessions beyond limit, in the steps the comment at the top of this
// file describes.
func (db *DB) CreateSessionCapped(ctx context.Context, x store.Session, limit int, reason string, until time.Time) ([]string, error) {
	if limit < 1 {
		return nil, fmt.Errorf("redis: create session capped: a cap of %d sessions", limit)
	}
	if x.ClientID != "" && x.ClientRegistration == "" {
		return nil, errors.New("redis: create session capped: an OAuth session needs a client registration")
	}
	args := append([]any{expiry(x)}, sessionFields(x)...)
	n, err := createSession.Run(ctx, db.c, []string{db.sessionKey(x.ID)}, args...).Int()
	if err != nil {
		return nil, fmt.Errorf("redis: create session capped: %w", err)
	}
	if n == 0 {
		return nil, store.ErrExists
	}
	revoked, err := db.capSessions(ctx, x, limit, reason, until)
	if err != nil {
		return revoked, fmt.Errorf("redis: create session capped: %w", err)
	}
	return revoked, nil
}

func (db *DB) capSessions(ctx context.Context, x store.Session, limit int, reason string, until time.Time) ([]string, error) {
	ss, err := db.sessionsOf(ctx, x.UserID)
	if err != nil {
		return nil, err
	}
	now := time.UnixMilli(x.CreatedAt.UnixMilli()) // at the stored precision
	var ended, live []any
	for _, s := range ss {
		switch {
		case s.ID == x.ID:
		case s.Live(now):
			live = append(live, s.ID, ms(s.LastUsedAt))
		default:
			ended = append(ended, s.ID)
		}
	}
	args := append([]any{strconv.Itoa(limit), x.ID, ms(x.LastUsedAt), strconv.Itoa(len(ended))}, ended...)
	args = append(args, live...)
	popped, err := capSessions.Run(ctx, db.c, []string{db.userSessions(x.UserID), db.lruKey(x.UserID), db.lruCompleteKey(x.UserID)}, args...).StringSlice()
	if err != nil {
		return nil, err
	}
	var revoked []string
	rev := store.Revocation{At: x.CreatedAt, Until: until}
	for _, id := range popped {
		rev.SessionID = id
		did, err := db.revoke(ctx, rev, reason)
		if errors.Is(err, store.ErrNotFound) {
			continue // purged in between
		}
		if err != nil {
			return revoked, err
		}
		if did {
			revoked = append(revoked, id)
		}
	}
	return revoked, nil
}

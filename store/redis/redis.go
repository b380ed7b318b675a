package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/batch"
)

// DB is a store.Store on Redis or Redis Cluster.
type DB struct {
	c goredis.UniversalClient
	p string // key prefix
	// rotations pipelines concurrent rotations (group commit).
	rotations *batch.Group[rotation, rotated]
}

// rotateWriters is how many pipelines of rotations a node has in flight at
// once, and maxBatch the rotations one pipeline carries.
const rotateWriters, maxBatch = 4, 64

var (
	_ store.Store      = (*DB)(nil)
	_ store.Users      = (*DB)(nil)
	_ store.Clients    = (*DB)(nil)
	_ store.Identities = (*DB)(nil)
	_ store.Markers    = (*DB)(nil)
	_ store.Audit      = (*DB)(nil)
	_ store.Buckets    = (*DB)(nil)
	_ store.SessionCap = (*DB)(nil)
)

// Options tune the client.
type Options struct {
	// PoolSize is the connections per node; 0 keeps go-redis's default.
	PoolSize int
	// DialTimeout bounds connecting and the start-up ping; default 5 s.
	DialTimeout time.Duration
	// Prefix starts every key; default "lk:".
	Prefix string
}

// keep is how long past its absolute end a session stays in Redis, so its
// tokens are still answered "expired" for a day.
const keep = 25 * time.Hour

// Open connects to redis://[user:password@]host:port/DB or
// redis-cluster://[user:password@]host:port,host:port,… and pings it. A
// `prefix` query parameter (…?prefix=app1:) overrides Options.Prefix, so
// several deployments can share one Redis.
func Open(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	cfg, err := parseURL(rawURL, opts)
	if err != nil {
		return nil, err
	}
	var c goredis.UniversalClient
	if cfg.cluster != nil {
		cc := goredis.NewClusterClient(cfg.cluster)
		cc.AddHook(followFailover{cc}) // a promoted replica is used at once
		c = cc
	} else {
		c = goredis.NewClient(cfg.single)
	}
	db := &DB{c: c, p: cfg.prefix}
	pctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout)
	defer cancel()
	if err := db.Ping(pctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: cannot reach the server: %w", err)
	}
	db.rotations = batch.New(rotateWriters, maxBatch, 0, db.rotateBatch) // go-redis times out reads and writes
	return db, nil
}

// clientConfig is what a URL and Options ask of the client: one server
// (single) or a cluster, and the key prefix.
type clientConfig struct {
	single      *goredis.Options
	cluster     *goredis.ClusterOptions
	prefix      string
	dialTimeout time.Duration
}

// parseURL turns Open's URL and options into a client configuration, without
// connecting. Its errors never echo the URL: it may hold a password.
func parseURL(rawURL string, opts Options) (clientConfig, error) {
	rawURL, prefix := splitPrefix(rawURL)
	if prefix != "" {
		opts.Prefix = prefix
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.Prefix == "" {
		opts.Prefix = "lk:"
	}
	cfg := clientConfig{prefix: opts.Prefix, dialTimeout: opts.DialTimeout}
	switch {
	case strings.HasPrefix(rawURL, "redis-cluster://"):
		u, err := url.Parse("redis://" + strings.TrimPrefix(rawURL, "redis-cluster://"))
		if err != nil || u.Host == "" {
			return cfg, errors.New("redis: malformed redis-cluster:// URL (want redis-cluster://host:port,host:port)")
		}
		cfg.cluster = &goredis.ClusterOptions{Addrs: strings.Split(u.Host, ","), DialTimeout: opts.DialTimeout, PoolSize: opts.PoolSize}
		if u.User != nil {
			cfg.cluster.Username = u.User.Username()
			cfg.cluster.Password, _ = u.User.Password()
		}
	case strings.HasPrefix(rawURL, "redis://"), strings.HasPrefix(rawURL, "rediss://"):
		o, err := goredis.ParseURL(rawURL)
		if err != nil {
			return cfg, errors.New("redis: malformed redis:// URL (want redis://host:port/DB)")
		}
		o.DialTimeout = opts.DialTimeout
		if opts.PoolSize > 0 {
			o.PoolSize = opts.PoolSize
		}
		cfg.single = o
	default:
		return cfg, errors.New("redis: the URL must start with redis://, rediss:// or redis-cluster://")
	}
	return cfg, nil
}

// splitPrefix removes the prefix parameter from a URL's query.
func splitPrefix(raw string) (string, string) {
	base, query, ok := strings.Cut(raw, "?")
	if !ok {
		return raw, ""
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return raw, ""
	}
	prefix := q.Get("prefix")
	q.Del("prefix")
	if len(q) == 0 {
		return base, prefix
	}
	return base + "?" + q.Encode(), prefix
}

// Close closes the client.
func (db *DB) Close() error {
	db.rotations.Close()
	return db.c.Close()
}

// Ping checks every node.
func (db *DB) Ping(ctx context.Context) error {
	var err error
	if cc, ok := db.c.(*goredis.ClusterClient); ok {
		err = cc.ForEachShard(ctx, func(ctx context.Context, s *goredis.Client) error { return s.Ping(ctx).Err() })
		if err != nil && ctx.Err() == nil {
			cc.ReloadState(ctx) // a dead node may have been replaced: see followFailover
		}
	} else {
		err = db.c.Ping(ctx).Err()
	}
	if err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Keys. The part in braces is the hash tag: everything one script touches
// shares it.
func (db *DB) userKey(id string) string    { return db.p + "user:{u:" + id + "}" }
func (db *DB) nameKey(n string) string     { return db.p + "name:{n:" + n + "}" }
func (db *DB) usersKey() string            { return db.p + "{users}" }
func (db *DB) sessionKey(id string) string { return db.p + "s:{s:" + id + "}" }
func (db *DB) userSessions(uid string) string {
	return db.p + "us:{u:" + uid + "}"
}
func (db *DB) feedKey() string               { return db.p + "{feed}" }
func (db *DB) feedSeqKey() string            { return db.p + "{feed}:seq" }
func (db *DB) feedDoneKey(sid string) string { return db.p + "{feed}:done:" + sid }
func (db *DB) keysKey() string               { return db.p + "{keys}" }
func (db *DB) keyKey(id string) string       { return db.p + "{keys}:" + id }
func (db *DB) clientsKey() string            { return db.p + "{clients}" }
func (db *DB) clientKey(id string) string    { return db.p + "{clients}:" + id }

func ms(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func fromMS(s string) time.Time {
	v, _ := strconv.ParseInt(s, 10, 64)
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// createUser claims the name, then the id; a taken id releases the name.
var createUser = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'username', ARGV[2], 'password_hash', ARGV[3], 'disabled', ARGV[4], 'created_at', ARGV[5])
return 1`)

// CreateUser inserts u.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	ok, err := db.c.SetNX(ctx, db.nameKey(u.Username), u.ID, 0).Result()
	if err != nil {
		return fmt.Errorf("redis: create user: %w", err)
	}
	if !ok {
		return store.ErrExists
	}
	n, err := createUser.Run(ctx, db.c, []string{db.userKey(u.ID)}, u.ID, u.Username, u.PasswordHash, boolStr(u.Disabled), ms(u.CreatedAt)).Int()
	if err == nil && n == 0 {
		db.c.Del(ctx, db.nameKey(u.Username))
		return store.ErrExists
	}
	if err == nil {
		err = db.c.SAdd(ctx, db.usersKey(), u.ID).Err()
	}
	if err != nil {
		return fmt.Errorf("redis: create user: %w", err)
	}
	return nil
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func toUser(m map[string]string) store.User {
	return store.User{ID: m["id"], Username: m["username"], PasswordHash: m["password_hash"], Disabled: m["disabled"] == "1", CreatedAt: fromMS(m["created_at"])}
}

// UserByID returns the user with this id.
func (db *DB) UserByID(ctx context.Context, id string) (store.User, error) {
	u, err := db.user(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("redis: user by id: %w", err)
	}
	return u, err
}

// user reads the user with this id, or store.ErrNotFound; the caller wraps
// other errors with its operation.
func (db *DB) user(ctx context.Context, id string) (store.User, error) {
	m, err := db.c.HGetAll(ctx, db.userKey(id)).Result()
	if err != nil {
		return store.User{}, err
	}
	if len(m) == 0 {
		return store.User{}, store.ErrNotFound
	}
	return toUser(m), nil
}

// UserByName returns the user with this username.
func (db *DB) UserByName(ctx context.Context, username string) (store.User, error) {
	id, err := db.c.Get(ctx, db.nameKey(username)).Result()
	if errors.Is(err, goredis.Nil) {
		return store.User{}, store.ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("redis: user by name: %w", err)
	}
	u, err := db.user(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("redis: user by name: %w", err)
	}
	return u, err
}

var updateUser = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[1], 'disabled', ARGV[2])
return 1`)

// UpdateUser replaces the password hash and the disabled flag.
func (db *DB) UpdateUser(ctx context.Context, u store.User) error {
	n, err := updateUser.Run(ctx, db.c, []string{db.userKey(u.ID)}, u.PasswordHash, boolStr(u.Disabled)).Int()
	if err != nil {
		return fmt.Errorf("redis: update user: %w", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListUsers returns every user by username.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	ids, err := db.c.SMembers(ctx, db.usersKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: list users: %w", err)
	}
	var us []store.User
	for _, id := range ids {
		u, err := db.user(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis: list users: %w", err)
		}
		us = append(us, u)
	}
	slices.SortFunc(us, func(a, b store.User) int { return strings.Compare(a.Username, b.Username) })
	return us, nil
}

// createSession writes a new session hash with its expiry.
var createSession = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1`)

func sessionFields(x store.Session) []any {
	return []any{
		"id", x.ID, "user_id", x.UserID, "generation", strconv.FormatUint(x.Generation, 10),
		"rotated_at", ms(x.RotatedAt), "created_at", ms(x.CreatedAt), "last_used_at", ms(x.LastUsedAt),
		"idle_expires_at", ms(x.IdleExpiresAt), "expires_at", ms(x.ExpiresAt), "revoked_at", ms(x.RevokedAt),
		"revoke_reason", x.RevokeReason, "user_agent", x.UserAgent, "ip", x.IP, "client_id", x.ClientID,
		"client_registration", x.ClientRegistration, "jkt", x.JKT,
	}
}

// unknownRegistration is the registration of an OAuth session written before
// sessions recorded one: it matches no registration, so the session never
// rotates again (its user signs in again). Never "", which would make it
// refreshable as a first-party session. The SQL backends use the same value
// for the sessions their migration cannot attribute.
const unknownRegistration = "-"

// sessionRegistration is the client registration of session hash m; the
// rotate script reads a missing field the same way.
func sessionRegistration(m map[string]string) string {
	if r, ok := m["client_registration"]; ok {
		return r
	}
	if m["client_id"] != "" {
		return unknownRegistration
	}
	return ""
}

func toSession(m map[string]string) store.Session {
	gen, _ := strconv.ParseUint(m["generation"], 10, 64)
	return store.Session{
		ID: m["id"], UserID: m["user_id"], Generation: gen,
		RotatedAt: fromMS(m["rotated_at"]), CreatedAt: fromMS(m["created_at"]), LastUsedAt: fromMS(m["last_used_at"]),
		IdleExpiresAt: fromMS(m["idle_expires_at"]), ExpiresAt: fromMS(m["expires_at"]), RevokedAt: fromMS(m["revoked_at"]),
		RevokeReason: m["revoke_reason"], UserAgent: m["user_agent"], IP: m["ip"], ClientID: m["client_id"],
		ClientRegistration: sessionRegistration(m), JKT: m["jkt"],
	}
}

func expiry(x store.Session) string {
	end := x.ExpiresAt
	if x.IdleExpiresAt.After(end) {
		end = x.IdleExpiresAt
	}
	return strconv.FormatInt(end.Add(keep).UnixMilli(), 10)
}

// CreateSession inserts x and indexes it under its user.
func (db *DB) CreateSession(ctx context.Context, x store.Session) error {
	if x.ClientID != "" && x.ClientRegistration == "" {
		return errors.New("redis: create session: an OAuth session needs a client registration")
	}
	args := append([]any{expiry(x)}, sessionFields(x)...)
	n, err := createSession.Run(ctx, db.c, []string{db.sessionKey(x.ID)}, args...).Int()
	if err != nil {
		return fmt.Errorf("redis: create session: %w", err)
	}
	if n == 0 {
		return store.ErrExists
	}
	if err := db.indexSession(ctx, x); err != nil {
		return fmt.Errorf("redis: create session: %w", err)
	}
	return nil
}

// Session returns the session with this id.
func (db *DB) Session(ctx context.Context, id string) (store.Session, error) {
	m, err := db.c.HGetAll(ctx, db.sessionKey(id)).Result()
	if err != nil {
		return store.Session{}, fmt.Errorf("redis: session: %w", err)
	}
	if len(m) == 0 {
		return store.Session{}, store.ErrNotFound
	}
	return toSession(m), nil
}

// rotate is the compare-and-swap: -1 missing, 0 conflict, else the new hash.
// The session must be at generation ARGV[1], issued to registration ARGV[4],
// bound to the DPoP key ARGV[5] ("" for none), and live at ARGV[2]
// (store.Session.Live).
var rotate = goredis.NewScript(`
local s = redis.call('HMGET', KEYS[1], 'generation', 'revoked_at', 'client_id', 'idle_expires_at', 'expires_at', 'client_registration', 'jkt')
if not s[1] then return -1 end
local at = tonumber(ARGV[2])
-- A missing field reads as toSession reads it: "" or 0; a missing
-- registration as sessionRegistration reads it.
local idle0, end0 = tonumber(s[4] or '0'), tonumber(s[5] or '0')
local reg = s[6]
if not reg then
	if (s[3] or '') ~= '' then reg = '` + unknownRegistration + `' else reg = '' end
end
if s[1] ~= ARGV[1] or reg ~= ARGV[4] or (s[7] or '') ~= ARGV[5] or (s[2] or '0') ~= '0' or idle0 <= at or end0 <= at then return 0 end
local idle = ARGV[3]
if idle == '0' then idle = s[4] elseif tonumber(idle) > end0 then idle = s[5] end
redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HSET', KEYS[1], 'rotated_at', ARGV[2], 'last_used_at', ARGV[2], 'idle_expires_at', idle)
return redis.call('HGETALL', KEYS[1])`)

// RotateSession advances the session one generation in one script that checks
// every condition of r. Rotations that arrive while the node's writers are
// busy are sent together in one pipeline (group commit): each script still
// runs on its own, atomically, and keeps its own result; none is answered
// before Redis has answered it.
func (db *DB) RotateSession(ctx context.Context, id string, r store.Rotation) (store.Session, error) {
	res, err := db.rotations.Do(ctx, rotation{key: db.sessionKey(id), r: r})
	if err != nil {
		return store.Session{}, fmt.Errorf("redis: rotate: %w", err)
	}
	if res.err != nil && !errors.Is(res.err, store.ErrNotFound) && !errors.Is(res.err, store.ErrConflict) {
		return store.Session{}, fmt.Errorf("redis: rotate: %w", res.err)
	}
	return res.s, res.err
}

// rotation is a RotateSession call waiting in a batch; rotated its answer.
type rotation struct {
	key string
	r   store.Rotation
}

type rotated struct {
	s   store.Session
	err error
}

// args are the rotate script's arguments for x.
func (x rotation) args() []any {
	return []any{strconv.FormatUint(x.r.From, 10), ms(x.r.At), ms(x.r.IdleExpiresAt), x.r.ClientRegistration, x.r.JKT}
}

// rotateBatch runs the rotate script for every rotation: one script on its
// own, several in one pipeline, each answered with its own result. A server that does not know the script yet
// (it restarted, or the batch went to a node that never ran it) is sent the
// script itself for those rotations.
func (db *DB) rotateBatch(ctx context.Context, rs []rotation) ([]rotated, error) {
	out := make([]rotated, len(rs))
	if len(rs) == 1 {
		out[0] = rotateReply(rotate.Run(ctx, db.c, []string{rs[0].key}, rs[0].args()...).Result())
		return out, nil
	}
	cmds := make([]*goredis.Cmd, len(rs))
	// A pipeline is not a transaction: each script ran, or did not, on its
	// own, so each rotation is answered with its own command's result (the
	// pipeline's error is only its first failed command's).
	_, _ = db.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, x := range rs {
			cmds[i] = rotate.EvalSha(ctx, p, []string{x.key}, x.args()...)
		}
		return nil
	})
	for i, c := range cmds {
		if goredis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			out[i] = rotateReply(rotate.Run(ctx, db.c, []string{rs[i].key}, rs[i].args()...).Result())
			continue
		}
		out[i] = rotateReply(c.Result())
	}
	return out, nil
}

// rotateReply reads the rotate script's answer.
func rotateReply(v any, err error) rotated {
	if err != nil {
		return rotated{err: err}
	}
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return rotated{err: store.ErrNotFound}
		}
		return rotated{err: store.ErrConflict}
	case []any:
		m := make(map[string]string, len(v)/2)
		for i := 0; i+1 < len(v); i += 2 {
			k, _ := v[i].(string)
			val, _ := v[i+1].(string)
			m[k] = val
		}
		return rotated{s: toSession(m)}
	}
	return rotated{err: fmt.Errorf("unexpected reply %T", v)}
}

// UserSessions returns every stored session of the user, newest first, ties
// in byte order of ID; ids
// whose session has expired out of Redis are dropped from the index.
func (db *DB) UserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	out, err := db.sessionsOf(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("redis: user sessions: %w", err)
	}
	slices.SortFunc(out, func(a, b store.Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// sessionsOf reads every stored session of the user, in no order, through
// the user's set of session IDs; IDs whose session has expired out of Redis
// are dropped from the user's indexes.
func (db *DB) sessionsOf(ctx context.Context, userID string) ([]store.Session, error) {
	ids, err := db.c.SMembers(ctx, db.userSessions(userID)).Result()
	if err != nil {
		return nil, err
	}
	cmds := make([]*goredis.MapStringStringCmd, len(ids))
	_, err = db.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, db.sessionKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []store.Session
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			db.unindexSession(ctx, userID, ids[i])
			continue
		}
		out = append(out, toSession(c.Val()))
	}
	return out, nil
}

// markRevoked: -1 missing, 0 already revoked, 1 revoked now.
var markRevoked = goredis.NewScript(`
local r = redis.call('HGET', KEYS[1], 'revoked_at')
if not r then return -1 end
if r ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1], 'revoke_reason', ARGV[2])
return 1`)

// appendFeed takes the next seq and adds the entry in one step; with a done
// key (KEYS[3]) it appends at most once for it.
var appendFeed = goredis.NewScript(`
if KEYS[3] and redis.call('SET', KEYS[3], '1', 'NX', 'PXAT', ARGV[2]) == false then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, string.format('%d|%s', seq, ARGV[1]))
return seq`)

// feedEntry is a feed member's JSON after "seq|".
type feedEntry struct {
	S string `json:"s,omitempty"`
	T string `json:"t,omitempty"`
	A int64  `json:"a"`
	U int64  `json:"u"`
}

func (db *DB) append(ctx context.Context, rev store.Revocation, once bool) error {
	b, _ := json.Marshal(feedEntry{S: rev.SessionID, T: rev.TokenID, A: rev.At.UnixMilli(), U: rev.Until.UnixMilli()})
	keys := []string{db.feedKey(), db.feedSeqKey()}
	if once {
		keys = append(keys, db.feedDoneKey(rev.SessionID))
	}
	if err := appendFeed.Run(ctx, db.c, keys, string(b), strconv.FormatInt(rev.Until.UnixMilli(), 10)).Err(); err != nil {
		return err
	}
	db.c.Publish(ctx, db.channel(), "") // best effort: nodes also poll
	return nil
}

func (db *DB) channel() string { return db.p + "revocations" }

var _ store.Notifier = (*DB)(nil)

// Subscribe announces feed appends through Redis pub/sub (which Redis Cluster
// broadcasts to every node).
func (db *DB) Subscribe(ctx context.Context) (<-chan struct{}, error) {
	sub := db.c.Subscribe(ctx, db.channel())
	if _, err := sub.Receive(ctx); err != nil {
		sub.Close()
		return nil, fmt.Errorf("redis: subscribe: %w", err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		defer sub.Close()
		msgs := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return
				}
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch, nil
}

// RevokeSession marks session rev.SessionID (its slot) and then appends to the feed
// (the feed's slot). Under Cluster these are two steps; the append is guarded by
// a per-session done key, so a retry after a failure between them appends
// exactly once: calling RevokeSession again on an already revoked session
// finishes an interrupted append.
func (db *DB) RevokeSession(ctx context.Context, rev store.Revocation, reason string) error {
	_, err := db.revoke(ctx, rev, reason)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("redis: revoke session: %w", err)
	}
	return err
}

// revoke is RevokeSession, reporting whether this call revoked the session
// (false if it was revoked already); the caller wraps errors other than
// store.ErrNotFound with its operation.
func (db *DB) revoke(ctx context.Context, rev store.Revocation, reason string) (bool, error) {
	id := rev.SessionID
	n, err := markRevoked.Run(ctx, db.c, []string{db.sessionKey(id)}, ms(rev.At), reason).Int()
	if err != nil {
		return false, err
	}
	if n < 0 {
		return false, store.ErrNotFound
	}
	if n == 0 {
		// Already revoked: make sure its feed entry exists (an earlier call may
		// have stopped between the two steps), using the revocation time stored.
		at, err := db.c.HGet(ctx, db.sessionKey(id), "revoked_at").Result()
		if errors.Is(err, goredis.Nil) {
			return false, store.ErrNotFound // purged in between
		}
		if err != nil {
			return false, err
		}
		rev.At = fromMS(at)
		if !rev.Until.After(rev.At) {
			return false, nil
		}
	}
	if err := db.append(ctx, rev, true); err != nil && !errors.Is(err, goredis.Nil) {
		return false, err
	}
	return n == 1, nil
}

// RevokeToken appends a single-token entry to the feed.
func (db *DB) RevokeToken(ctx context.Context, rev store.Revocation) error {
	if err := db.append(ctx, store.Revocation{TokenID: rev.TokenID, At: rev.At, Until: rev.Until}, false); err != nil {
		return fmt.Errorf("redis: revoke token: %w", err)
	}
	return nil
}

// RevocationsAfter returns the feed after seq.
func (db *DB) RevocationsAfter(ctx context.Context, after int64, now time.Time, limit int) ([]store.Revocation, error) {
	var out []store.Revocation
	min := after
	for len(out) < limit {
		ms, err := db.c.ZRangeByScore(ctx, db.feedKey(), &goredis.ZRangeBy{Min: "(" + strconv.FormatInt(min, 10), Max: "+inf", Count: int64(limit)}).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: revocations: %w", err)
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			seqStr, body, _ := strings.Cut(m, "|")
			seq, _ := strconv.ParseInt(seqStr, 10, 64)
			min = seq
			var e feedEntry
			if json.Unmarshal([]byte(body), &e) != nil {
				continue
			}
			if e.U <= now.UnixMilli() {
				continue
			}
			until := time.UnixMilli(e.U)
			out = append(out, store.Revocation{Seq: seq, SessionID: e.S, TokenID: e.T, At: time.UnixMilli(e.A), Until: until})
			if len(out) == limit {
				break
			}
		}
		if len(ms) < limit {
			break
		}
	}
	return out, nil
}

// PutKey inserts or replaces a key.
func (db *DB) PutKey(ctx context.Context, k store.Key) error {
	_, err := db.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, db.keyKey(k.ID), "id", k.ID, "algorithm", k.Algorithm, "sealed", k.Sealed,
			"created_at", ms(k.CreatedAt), "activated_at", ms(k.ActivatedAt), "retired_at", ms(k.RetiredAt))
		p.SAdd(ctx, db.keysKey(), k.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: put key: %w", err)
	}
	return nil
}

// ListKeys returns every key, oldest first.
func (db *DB) ListKeys(ctx context.Context) ([]store.Key, error) {
	ids, err := db.c.SMembers(ctx, db.keysKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: list keys: %w", err)
	}
	var ks []store.Key
	for _, id := range ids {
		m, err := db.c.HGetAll(ctx, db.keyKey(id)).Result()
		if err != nil {
			return nil, fmt.Errorf("redis: list keys: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		ks = append(ks, store.Key{ID: m["id"], Algorithm: m["algorithm"], Sealed: []byte(m["sealed"]),
			CreatedAt: fromMS(m["created_at"]), ActivatedAt: fromMS(m["activated_at"]), RetiredAt: fromMS(m["retired_at"])})
	}
	slices.SortFunc(ks, func(a, b store.Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return ks, nil
}

// DeleteKey removes a key.
func (db *DB) DeleteKey(ctx context.Context, id string) error {
	_, err := db.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, db.keyKey(id))
		p.SRem(ctx, db.keysKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: delete key: %w", err)
	}
	return nil
}

// createClient inserts a client hash and its index entry unless it exists;
// both keys share the {clients} slot.
var createClient = goredis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
redis.call("HSET", KEYS[1], "id", ARGV[1], "secret_hash", ARGV[2], "name", ARGV[3], "created_at", ARGV[4], "registration", ARGV[5],
	"origins", ARGV[6], "dpop_required", ARGV[7])
redis.call("SADD", KEYS[2], ARGV[1])
return 1`)

// deleteClient removes a client and its index entry, returning how many it removed.
var deleteClient = goredis.NewScript(`
redis.call("SREM", KEYS[2], ARGV[1])
return redis.call("DEL", KEYS[1])`)

// CreateClient inserts c; store.ErrExists if its ID is taken.
func (db *DB) CreateClient(ctx context.Context, c store.Client) error {
	n, err := createClient.Run(ctx, db.c, []string{db.clientKey(c.ID), db.clientsKey()}, c.ID, c.SecretHash, c.Name, ms(c.CreatedAt), c.Registration,
		strings.Join(c.Origins, " "), strconv.FormatBool(c.DPoPRequired)).Int()
	if err != nil {
		return fmt.Errorf("redis: create client: %w", err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

// Client returns the client with this ID, or store.ErrNotFound.
func (db *DB) Client(ctx context.Context, id string) (store.Client, error) {
	c, err := db.client(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Client{}, fmt.Errorf("redis: client: %w", err)
	}
	return c, err
}

// client reads the client with this ID, or store.ErrNotFound; the caller
// wraps other errors with its operation.
func (db *DB) client(ctx context.Context, id string) (store.Client, error) {
	m, err := db.c.HGetAll(ctx, db.clientKey(id)).Result()
	if err != nil {
		return store.Client{}, err
	}
	if len(m) == 0 {
		return store.Client{}, store.ErrNotFound
	}
	reg, ok := m["registration"]
	if !ok {
		// Written before clients had registrations: the value the SQL
		// backends' migration gives such a client.
		reg = m["id"] + "@" + m["created_at"]
	}
	// Origins are separated by spaces, which an origin never contains; a
	// client written before clients had origins or DPoP has neither.
	return store.Client{ID: m["id"], Registration: reg, SecretHash: m["secret_hash"], Name: m["name"], CreatedAt: fromMS(m["created_at"]),
		Origins: strings.Fields(m["origins"]), DPoPRequired: m["dpop_required"] == "true"}, nil
}

// ListClients returns every client, ordered by ID.
func (db *DB) ListClients(ctx context.Context) ([]store.Client, error) {
	ids, err := db.c.SMembers(ctx, db.clientsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: list clients: %w", err)
	}
	slices.Sort(ids)
	var cs []store.Client
	for _, id := range ids {
		c, err := db.client(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis: list clients: %w", err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// DeleteClient removes the client with this ID; store.ErrNotFound if there is none.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	n, err := deleteClient.Run(ctx, db.c, []string{db.clientKey(id), db.clientsKey()}, id).Int()
	if err != nil {
		return fmt.Errorf("redis: delete client: %w", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Purge deletes sessions whose EndedAt is before now-retain, feed entries
// whose Until has passed and markers that have ended (which Redis' own
// expiry, on its clock, forgets too), scanning in small batches; and the
// pending identities of creations that never finished (see identities.go).
// Limiter buckets need no sweep: each expires when it has refilled
// (buckets.go).
func (db *DB) Purge(ctx context.Context, now time.Time, retain time.Duration) (int, error) {
	cut := time.UnixMilli(now.Add(-retain).UnixMilli()) // compare at the stored precision
	var deleted atomic.Int64                            // ForEachMaster scans the masters in parallel
	nowMS := strconv.FormatInt(now.UnixMilli(), 10)
	scan := func(ctx context.Context, c goredis.UniversalClient) error {
		markers := c.Scan(ctx, 0, db.p+"m:{m:*", 500).Iterator()
		for markers.Next(ctx) {
			purgeMarker.Run(ctx, c, []string{markers.Val()}, nowMS)
		}
		if err := markers.Err(); err != nil {
			return err
		}
		iter := c.Scan(ctx, 0, db.p+"s:{s:*", 500).Iterator()
		for iter.Next(ctx) {
			m, err := c.HGetAll(ctx, iter.Val()).Result()
			if err != nil || len(m) == 0 {
				continue
			}
			x := toSession(m)
			if !x.EndedAt().Before(cut) {
				continue
			}
			if n, err := c.Del(ctx, iter.Val()).Result(); err == nil && n == 1 {
				deleted.Add(1)
				db.unindexSession(ctx, x.UserID, x.ID)
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := db.c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, db.c)
	}
	if err == nil {
		err = db.purgePending(ctx, now.Add(-pendingFor))
	}
	if err != nil {
		return int(deleted.Load()), fmt.Errorf("redis: purge: %w", err)
	}
	// Feed entries: walk the sorted set from the oldest in batches.
	for start := int64(0); ; start += 500 {
		ms, err := db.c.ZRange(ctx, db.feedKey(), start, start+499).Result()
		if err != nil {
			return int(deleted.Load()), fmt.Errorf("redis: purge: %w", err)
		}
		var old []any
		for _, m := range ms {
			_, body, _ := strings.Cut(m, "|")
			var e feedEntry
			if json.Unmarshal([]byte(body), &e) == nil && e.U < now.UnixMilli() {
				old = append(old, m)
			}
		}
		if len(old) > 0 {
			db.c.ZRem(ctx, db.feedKey(), old...)
			start -= int64(len(old))
		}
		if len(ms) < 500 {
			return int(deleted.Load()), nil
		}
	}
}

package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey/latchkey/store"
)

// Identities live in one hash slot, {identities}, as clients live in
// {clients}: the hash of each identity, the key of each (provider, subject)
// naming its identity, and the sorted set of each user's identities. Every
// write of the role that must be atomic — a link that checks (provider,
// subject) and the ID together, an unlink with keepOne that counts the user's
// identities and deletes in one step — is then a single script on one slot,
// which Redis Cluster allows. Putting the index by subject under each user's
// hash tag instead would split those checks across slots. Identities are
// read at sign-in and written rarely, so one slot carries them easily.
//
// A user's own keys are in the user's slot ({u:ID}) and the username's in the
// name's ({n:name}), as CreateUser writes them, so CreateUserWithIdentity
// cannot be one script under Cluster. It is a sequence that readers never see
// half done: it claims the username, writes the identity marked pending
// (which IdentityBySubject and UserIdentities do not return, but which holds
// its (provider, subject) and ID against other links), writes the user, and
// last commits the identity with a script that clears the mark only if it is
// still there. When a step fails, the steps before it are undone, the
// pending identity first and conditionally, so an identity that did commit
// is never undone under its user. A process that dies mid-way (or loses
// Redis at the wrong moment) can leave a user without its identity, as
// CreateUser can leave a claimed username; its pending identity is removed
// by Purge an hour after its CreatedAt, and a creation whose pending identity
// was removed fails its commit and undoes its user.

func (db *DB) identityKey(id string) string     { return db.p + "{identities}:i:" + id }
func (db *DB) userIdentities(uid string) string { return db.p + "{identities}:u:" + uid }
func (db *DB) pendingKey() string               { return db.p + "{identities}:pending" }

// subjectKey is the key naming the identity of (provider, subject). The
// provider's length comes first, so no two pairs share a key however either
// part is spelt (":" included).
func (db *DB) subjectKey(provider, subject string) string {
	return db.p + "{identities}:s:" + strconv.Itoa(len(provider)) + ":" + provider + ":" + subject
}

// pendingFor is how long after its CreatedAt a pending identity is left to
// its creator before Purge removes it.
const pendingFor = time.Hour

// linkIdentity writes identity hash KEYS[1] and its subject key KEYS[2] unless
// either exists, and adds the ID to the sorted set KEYS[3] (the user's, or
// with ARGV[7] == "1" the pending set, the hash then marked pending).
var linkIdentity = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'user_id', ARGV[2], 'provider', ARGV[3], 'subject', ARGV[4], 'email', ARGV[5], 'created_at', ARGV[6])
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'pending', '1') end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
return 1`)

// commitIdentity moves pending identity ARGV[1] (hash KEYS[1]) from the
// pending set KEYS[2] to its user's set KEYS[3]; 0 if it is not pending.
var commitIdentity = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'pending') ~= '1' then return 0 end
redis.call('HDEL', KEYS[1], 'pending')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'created_at'), ARGV[1])
return 1`)

// abortPending removes pending identity ARGV[1]: its hash KEYS[1], its
// subject key KEYS[2] if that still names it, and its entry in the pending set
// KEYS[3]; 0 if it is not pending.
var abortPending = goredis.NewScript(`
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[1], 'pending') ~= '1' then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1`)

// unlinkIdentity removes identity ARGV[1] of user ARGV[2]: its hash KEYS[1],
// its subject key KEYS[2] and its entry in the user's set KEYS[3]. -1 if the
// user has no such (committed) identity, -2 if the hash is not of provider
// ARGV[4] and subject ARGV[5] (the caller read it before an unlink and a new
// link of the same ID), 0 if ARGV[3] == "1" (keepOne) and it is the user's
// last identity.
var unlinkIdentity = goredis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'user_id', 'pending', 'provider', 'subject')
if h[1] ~= ARGV[2] or h[2] then return -1 end
if h[3] ~= ARGV[4] or h[4] ~= ARGV[5] then return -2 end
if ARGV[3] == '1' and redis.call('ZCARD', KEYS[3]) < 2 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1`)

// releaseClaim deletes the username claim KEYS[1] if it still names user ARGV[1].
var releaseClaim = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// linkArgs are the arguments of linkIdentity.
func (db *DB) linkArgs(id store.Identity, pending bool) ([]string, []any) {
	set := db.userIdentities(id.UserID)
	if pending {
		set = db.pendingKey()
	}
	return []string{db.identityKey(id.ID), db.subjectKey(id.Provider, id.Subject), set},
		[]any{id.ID, id.UserID, id.Provider, id.Subject, id.Email, ms(id.CreatedAt), boolStr(pending)}
}

// LinkIdentity inserts id for the existing user id.UserID; store.ErrExists if
// (Provider, Subject) is linked already or the ID is taken, store.ErrNotFound
// if there is no such user. The user is looked up first, in its own slot:
// users are never deleted, so it cannot vanish before the link.
func (db *DB) LinkIdentity(ctx context.Context, id store.Identity) error {
	n, err := db.c.Exists(ctx, db.userKey(id.UserID)).Result()
	if err != nil {
		return fmt.Errorf("redis: link identity: %w", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	keys, args := db.linkArgs(id, false)
	ok, err := linkIdentity.Run(ctx, db.c, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("redis: link identity: %w", err)
	}
	if ok == 0 {
		return store.ErrExists
	}
	return nil
}

// CreateUserWithIdentity inserts u and id, both or neither, in the steps the
// comment at the top of this file describes.
func (db *DB) CreateUserWithIdentity(ctx context.Context, u store.User, id store.Identity) error {
	if id.UserID != u.ID {
		return fmt.Errorf("redis: create user with identity: the identity is for user %q, not %q", id.UserID, u.ID)
	}
	err := db.createUserWithIdentity(ctx, u, id)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("redis: create user with identity: %w", err)
	}
	return err
}

func (db *DB) createUserWithIdentity(ctx context.Context, u store.User, id store.Identity) error {
	// Undoing runs whatever the caller's context has become: a canceled
	// request must not leave its claims behind.
	undo := context.WithoutCancel(ctx)
	ok, err := db.c.SetNX(ctx, db.nameKey(u.Username), u.ID, 0).Result()
	if err != nil {
		db.releaseName(undo, u) // in case it was set
		return err
	}
	if !ok {
		return store.ErrExists
	}
	keys, args := db.linkArgs(id, true)
	n, err := linkIdentity.Run(ctx, db.c, keys, args...).Int()
	if err != nil || n == 0 {
		if err != nil {
			db.abortIdentity(undo, id) // in case it was written
		} else {
			err = store.ErrExists
		}
		db.releaseName(undo, u)
		return err
	}
	n, err = createUser.Run(ctx, db.c, []string{db.userKey(u.ID)}, u.ID, u.Username, u.PasswordHash, boolStr(u.Disabled), ms(u.CreatedAt)).Int()
	if err == nil && n == 0 {
		// Another user has the ID: nothing of ours to remove but the claims.
		db.abortIdentity(undo, id)
		db.releaseName(undo, u)
		return store.ErrExists
	}
	if err == nil {
		err = db.c.SAdd(ctx, db.usersKey(), u.ID).Err()
	}
	if err == nil {
		n, err = commitIdentity.Run(ctx, db.c, []string{db.identityKey(id.ID), db.pendingKey(), db.userIdentities(u.ID)}, id.ID).Int()
		if err == nil && n == 0 {
			err = errors.New("the pending identity was removed before it was committed")
		}
	}
	if err == nil {
		return nil
	}
	return db.undoCreate(undo, u, id, err)
}

// undoCreate settles a CreateUserWithIdentity that failed with cause after it
// may have written the user. If it can remove the pending identity, nothing
// was committed and it removes the user and the username claim too. If the
// identity is committed after all (only the answer was lost), the creation
// succeeded. If it cannot tell, it leaves everything: Purge removes the
// pending identity in time, and the user remains without it.
func (db *DB) undoCreate(ctx context.Context, u store.User, id store.Identity, cause error) error {
	n, err := db.abortIdentity(ctx, id)
	if err != nil {
		return cause
	}
	if n == 0 {
		owner, err := db.c.HGet(ctx, db.identityKey(id.ID), "user_id").Result()
		if err == nil && owner == u.ID {
			return nil
		}
		if err != nil && !errors.Is(err, goredis.Nil) {
			return cause
		}
	}
	deleteUser.Run(ctx, db.c, []string{db.userKey(u.ID)}, u.Username)
	db.c.SRem(ctx, db.usersKey(), u.ID)
	db.releaseName(ctx, u)
	return cause
}

// deleteUser deletes user hash KEYS[1] if its username is ARGV[1]: the one
// this creation claimed, so the hash is its own.
var deleteUser = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'username') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// releaseName gives up u's claim on its username, if it holds it.
func (db *DB) releaseName(ctx context.Context, u store.User) {
	releaseClaim.Run(ctx, db.c, []string{db.nameKey(u.Username)}, u.ID)
}

// abortIdentity removes id if it is pending: 1 if it did, 0 if it is not.
func (db *DB) abortIdentity(ctx context.Context, id store.Identity) (int, error) {
	return abortPending.Run(ctx, db.c, []string{db.identityKey(id.ID), db.subjectKey(id.Provider, id.Subject), db.pendingKey()}, id.ID).Int()
}

func toIdentity(m map[string]string) store.Identity {
	return store.Identity{ID: m["id"], UserID: m["user_id"], Provider: m["provider"], Subject: m["subject"], Email: m["email"], CreatedAt: fromMS(m["created_at"])}
}

// IdentityBySubject returns the identity with exactly this provider and
// subject, or store.ErrNotFound; a pending one is not returned.
func (db *DB) IdentityBySubject(ctx context.Context, provider, subject string) (store.Identity, error) {
	id, err := db.c.Get(ctx, db.subjectKey(provider, subject)).Result()
	if errors.Is(err, goredis.Nil) {
		return store.Identity{}, store.ErrNotFound
	}
	if err != nil {
		return store.Identity{}, fmt.Errorf("redis: identity by subject: %w", err)
	}
	m, err := db.c.HGetAll(ctx, db.identityKey(id)).Result()
	if err != nil {
		return store.Identity{}, fmt.Errorf("redis: identity by subject: %w", err)
	}
	if len(m) == 0 || m["pending"] != "" || m["provider"] != provider || m["subject"] != subject {
		return store.Identity{}, store.ErrNotFound // unlinked in between, or not yet created
	}
	return toIdentity(m), nil
}

// UserIdentities returns the identities of the user, oldest first, ties in
// byte order of ID.
func (db *DB) UserIdentities(ctx context.Context, userID string) ([]store.Identity, error) {
	ids, err := db.c.ZRange(ctx, db.userIdentities(userID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: user identities: %w", err)
	}
	cmds := make([]*goredis.MapStringStringCmd, len(ids))
	_, err = db.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, db.identityKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis: user identities: %w", err)
	}
	var out []store.Identity
	for _, c := range cmds {
		if m := c.Val(); len(m) > 0 && m["pending"] == "" && m["user_id"] == userID {
			out = append(out, toIdentity(m))
		}
	}
	slices.SortFunc(out, func(a, b store.Identity) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// UnlinkIdentity removes identity id of user userID with one script that,
// with keepOne, counts the user's identities and deletes in one step. The
// identity's provider and subject, which name its subject key, are read
// first; the script checks them.
func (db *DB) UnlinkIdentity(ctx context.Context, userID, id string, keepOne bool) error {
	for range 3 {
		h, err := db.c.HMGet(ctx, db.identityKey(id), "provider", "subject").Result()
		if err != nil {
			return fmt.Errorf("redis: unlink identity: %w", err)
		}
		provider, ok1 := h[0].(string)
		subject, ok2 := h[1].(string)
		if !ok1 || !ok2 {
			return store.ErrNotFound
		}
		keys := []string{db.identityKey(id), db.subjectKey(provider, subject), db.userIdentities(userID)}
		n, err := unlinkIdentity.Run(ctx, db.c, keys, id, userID, boolStr(keepOne), provider, subject).Int()
		if err != nil {
			return fmt.Errorf("redis: unlink identity: %w", err)
		}
		switch n {
		case 1:
			return nil
		case 0:
			return store.ErrConflict
		case -1:
			return store.ErrNotFound
		}
		// -2: the ID was unlinked and linked again in between; read it again.
	}
	return errors.New("redis: unlink identity: the identity keeps changing")
}

// purgePending removes the pending identities whose CreatedAt is before cut:
// left by a CreateUserWithIdentity that never finished.
func (db *DB) purgePending(ctx context.Context, cut time.Time) error {
	ids, err := db.c.ZRangeByScore(ctx, db.pendingKey(), &goredis.ZRangeBy{Min: "-inf", Max: "(" + ms(cut)}).Result()
	if err != nil {
		return err
	}
	for _, id := range ids {
		h, err := db.c.HMGet(ctx, db.identityKey(id), "provider", "subject").Result()
		if err != nil {
			return err
		}
		provider, _ := h[0].(string)
		subject, _ := h[1].(string)
		if _, err := db.abortIdentity(ctx, store.Identity{ID: id, Provider: provider, Subject: subject}); err != nil {
			return err
		}
	}
	return nil
}

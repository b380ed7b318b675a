package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
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

// Two clients (two nodes) on one Redis behave as one store.
func TestShared(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
				u := b.url(t)
				return open(t, u), open(t, u)
			})
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

// rawClient is a plain go-redis client on the Redis of u, and the key prefix
// the store under test uses there.
func rawClient(t *testing.T, u string) (*goredis.Client, string) {
	t.Helper()
	base, query, _ := strings.Cut(u, "?")
	q, _ := url.ParseQuery(query)
	opts, err := goredis.ParseURL(base)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c, q.Get("prefix")
}

// Hashes written before registrations existed: a session hash without
// client_registration reads as "" if it is first-party and as "-" (no
// registration at all) if it is an OAuth session, in Go and in the rotation
// script alike, so an old OAuth session is never refreshable as first-party;
// a client hash without registration reads as id@created_at, as the SQL
// backends migrate it.
func TestHashesWithoutRegistration(t *testing.T) {
	u := testenv.Redis(t)
	db := open(t, u)
	c, prefix := rawClient(t, u)
	ctx := t.Context()
	const created = int64(4102444800123)
	at := time.UnixMilli(created + 2)
	if err := c.HSet(ctx, prefix+"{clients}:web", "id", "web", "secret_hash", "", "name", "the web app", "created_at", fmt.Sprint(created)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.SAdd(ctx, prefix+"{clients}", "web").Err(); err != nil {
		t.Fatal(err)
	}
	old := func(id, client string) {
		t.Helper()
		ms := fmt.Sprint(created + 1)
		end := fmt.Sprint(created + 3_600_000)
		if err := c.HSet(ctx, prefix+"s:{s:"+id+"}", "id", id, "user_id", "u1", "generation", "0", "rotated_at", ms, "created_at", ms,
			"last_used_at", ms, "idle_expires_at", end, "expires_at", end, "revoked_at", "0", "revoke_reason", "",
			"user_agent", "", "ip", "", "client_id", client).Err(); err != nil {
			t.Fatal(err)
		}
	}
	old("first-party", "")
	old("oauth", "web")
	storetest.CheckUpgradedRegistrations(t, db, storetest.Upgraded{
		Client: "web", Registration: "web@4102444800123", At: at,
		Known:   map[string]string{"first-party": ""},
		Unknown: []string{"oauth"},
	})
	if x, err := db.Session(ctx, "oauth"); err != nil || x.ClientRegistration != "-" {
		t.Errorf(`Session("oauth") = %+v, %v; want registration "-"`, x, err)
	}
}

// A session hash missing fields (written by hand, or by something else) is
// refused by the rotation as the Go side reads it — "" and 0 — not answered
// with a script error.
func TestRotateHashWithMissingFields(t *testing.T) {
	u := testenv.Redis(t)
	db := open(t, u)
	c, prefix := rawClient(t, u)
	ctx := context.Background()
	key := prefix + "s:{s:partial}"
	if err := c.HSet(ctx, key, "id", "partial", "user_id", "u", "generation", "0").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := db.RotateSession(ctx, "partial", store.Rotation{From: 0, At: time.Now(), IdleExpiresAt: time.Now().Add(time.Hour)})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RotateSession of a partial hash = %v, want %v", err, store.ErrConflict)
	}
}

// A creation of a user with an identity that died after writing the pending
// identity leaves it invisible but holding its subject; Purge removes it an
// hour after its CreatedAt, and the subject can be linked again.
func TestPendingIdentityPurged(t *testing.T) {
	u := testenv.Redis(t)
	db := open(t, u)
	c, prefix := rawClient(t, u)
	ctx := t.Context()
	created := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := fmt.Sprint(created.UnixMilli())
	// What CreateUserWithIdentity writes before the user (identities.go).
	if err := c.HSet(ctx, prefix+"{identities}:i:i1", "id", "i1", "user_id", "u1", "provider", "google", "subject", "sub-1",
		"email", "", "created_at", ms, "pending", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, prefix+"{identities}:s:6:google:sub-1", "i1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ZAdd(ctx, prefix+"{identities}:pending", goredis.Z{Score: float64(created.UnixMilli()), Member: "i1"}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.IdentityBySubject(ctx, "google", "sub-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("IdentityBySubject(a pending identity) = %v, want %v", err, store.ErrNotFound)
	}
	if err := db.CreateUser(ctx, store.User{ID: "u2", Username: "bob", CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	link := store.Identity{ID: "i2", UserID: "u2", Provider: "google", Subject: "sub-1", CreatedAt: created}
	if err := db.LinkIdentity(ctx, link); !errors.Is(err, store.ErrExists) {
		t.Fatalf("LinkIdentity(the subject of a pending identity) = %v, want %v", err, store.ErrExists)
	}
	if _, err := db.Purge(ctx, created.Add(30*time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if err := db.LinkIdentity(ctx, link); !errors.Is(err, store.ErrExists) {
		t.Fatalf("LinkIdentity(the subject of a pending identity) after Purge 30 minutes on = %v, want %v", err, store.ErrExists)
	}
	if _, err := db.Purge(ctx, created.Add(2*time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	if err := db.LinkIdentity(ctx, link); err != nil {
		t.Fatalf("LinkIdentity(the subject of a pending identity) after Purge 2 hours on = %v, want nil", err)
	}
	if n, err := c.Exists(ctx, prefix+"{identities}:i:i1").Result(); err != nil || n != 0 {
		t.Fatalf("the pending identity's hash after Purge: %d, %v; want it gone", n, err)
	}
}

// A marker's Redis expiry is until-now, measured from the caller's now, not
// until on Redis' clock: a marker of the suite's year 2100 lasts its minute,
// and so would one whose caller's clock is behind Redis'.
func TestMarkerExpiresRelative(t *testing.T) {
	u := testenv.Redis(t)
	db := open(t, u)
	c, prefix := rawClient(t, u)
	ctx := t.Context()
	past := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // a caller far behind Redis
	for _, now := range []time.Time{past, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)} {
		key := fmt.Sprint("k", now.Year())
		if err := db.Mark(ctx, key, now, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		ttl, err := c.PTTL(ctx, prefix+"m:{m:"+key+"}").Result()
		if err != nil || ttl <= 50*time.Second || ttl > time.Minute {
			t.Fatalf("PTTL of a marker made at %v for a minute = %v, %v; want about a minute", now, ttl, err)
		}
	}
}

// A limiter bucket expires out of Redis when it has refilled: Burst*Every
// after its last spend, measured from the caller's now (so a spend as of an
// earlier time, from a node whose clock is behind, keeps it longer, until
// it has refilled from the later spend).
func TestBucketExpiresWhenRefilled(t *testing.T) {
	u := testenv.Redis(t)
	db := open(t, u)
	c, prefix := rawClient(t, u)
	ctx := t.Context()
	now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	b := []store.Bucket{{Key: "ip:192.0.2.1", Burst: 3, Every: time.Minute}}
	pttl := func() time.Duration {
		d, err := c.PTTL(ctx, prefix+"{rl}:ip:192.0.2.1").Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if err := db.Spend(ctx, b, now); err != nil {
		t.Fatal(err)
	}
	if d := pttl(); d <= 3*time.Minute-10*time.Second || d > 3*time.Minute {
		t.Fatalf("PTTL of a bucket of 3 tokens a minute = %v, want about 3 minutes", d)
	}
	if err := db.Spend(ctx, b, now.Add(-10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := pttl(); d <= 3*time.Minute || d > 3*time.Minute+10*time.Second {
		t.Fatalf("PTTL after a spend as of 10 s earlier = %v, want about 3 minutes 10 s", d)
	}
}

// Sessions stored before the per-user index of capped sessions existed (a
// hash and an entry in the user's set, as an older version wrote them) count
// against the cap from the first capped creation on.
func TestSessionCapCountsOlderSessions(t *testing.T) {
	u := testenv.Redis(t)
	db := open(t, u)
	c, prefix := rawClient(t, u)
	ctx := t.Context()
	now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"o3", "o1", "o2"} { // last used 3, 1 and 2 minutes ago
		at := fmt.Sprint(now.Add(-time.Duration([]int{3, 1, 2}[i]) * time.Minute).UnixMilli())
		end := fmt.Sprint(now.Add(time.Hour).UnixMilli())
		if err := c.HSet(ctx, prefix+"s:{s:"+id+"}", "id", id, "user_id", "u1", "generation", "0", "rotated_at", at, "created_at", at,
			"last_used_at", at, "idle_expires_at", end, "expires_at", end, "revoked_at", "0", "revoke_reason", "",
			"user_agent", "", "ip", "", "client_id", "", "client_registration", "").Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.SAdd(ctx, prefix+"us:{u:u1}", id).Err(); err != nil {
			t.Fatal(err)
		}
	}
	revoked, err := db.CreateSessionCapped(ctx, store.Session{ID: "new", UserID: "u1", RotatedAt: now, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}, 2, "session_limit", now.Add(time.Hour))
	if err != nil || fmt.Sprint(revoked) != "[o3 o2]" {
		t.Fatalf("CreateSessionCapped(under a cap of 2, beside 3 older sessions) = %q, %v; want [o3 o2]", revoked, err)
	}
	for _, id := range []string{"o1", "new"} {
		if x, err := db.Session(ctx, id); err != nil || !x.Live(now) {
			t.Fatalf("Session(%s) = %+v, %v; want it live", id, x, err)
		}
	}
}

// A session that a concurrent capped creation has popped from the user's
// index (and is revoking) is not counted again by a creation that read it
// as live before the pop: that one only refreshes sessions still indexed,
// so it revokes nothing more.
func TestSessionCapPoppedNotCountedAgain(t *testing.T) {
	u := testenv.Redis(t)
	db := open(t, u)
	c, prefix := rawClient(t, u)
	ctx := t.Context()
	now := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	create := func(id string, limit int) []string {
		t.Helper()
		at := now.Add(time.Duration(len(id)) * time.Second)
		revoked, err := db.CreateSessionCapped(ctx, store.Session{ID: id, UserID: "u1", RotatedAt: at, CreatedAt: at, LastUsedAt: at,
			IdleExpiresAt: at.Add(time.Hour), ExpiresAt: at.Add(time.Hour)}, limit, "session_limit", at.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return revoked
	}
	create("s", 10)
	create("ss", 10)
	// As if another creation had just popped s, and not yet revoked it.
	if err := c.ZRem(ctx, prefix+"ul:{u:u1}", "s").Err(); err != nil {
		t.Fatal(err)
	}
	if revoked := create("sss", 2); len(revoked) != 0 {
		t.Fatalf("CreateSessionCapped(under a cap of 2, beside a popped session and one other) revoked %q, want none", revoked)
	}
}

package providers_test

import (
	"crypto/rand"
	"testing"

	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/redis"
)

// An ID token signs in once across every node of a shared store: a replay
// on another node is refused.
func TestReplayAcrossNodes(t *testing.T) {
	stores := []struct {
		name string
		dsn  func(t testing.TB) string
		open func(t testing.TB, dsn string) servertest.Store
	}{
		{"PostgreSQL", testenv.Postgres, func(t testing.TB, dsn string) servertest.Store {
			db, err := postgres.Open(t.Context(), dsn, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}},
		{"Redis", testenv.Redis, openRedis},
		{"RedisCluster", testenv.RedisCluster, openRedis},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			dsn := st.dsn(t)
			op := startOP(t)
			secret := make([]byte, 32)
			rand.Read(secret)
			node := rigOptions{op: op, secret: secret, store: func(t testing.TB) servertest.Store { return st.open(t, dsn) }}
			a, b := newRig(t, node), newRig(t, node)
			tok := a.token(t, alice, "")
			first := a.login(t, tok, "")
			wantOK(t, first)
			wantError(t, b.login(t, tok, ""), 401, "invalid_token", "used already")
			// The account made on node A is the one node B signs in to.
			second := b.login(t, b.token(t, alice, ""), "")
			wantOK(t, second)
			if userOf(second) != userOf(first) {
				t.Fatalf("node B signed the identity in to %q, node A to %q", userOf(second), userOf(first))
			}
		})
	}
}

func openRedis(t testing.TB, dsn string) servertest.Store {
	db, err := redis.Open(t.Context(), dsn, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

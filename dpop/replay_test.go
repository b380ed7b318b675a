package dpop_test

import (
	"context"
	"testing"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/redis"
)

// Replay across two nodes on PostgreSQL (LATCHKEY_TEST_POSTGRES).
func TestReplayRefusedPostgres(t *testing.T) {
	dsn := testenv.Postgres(t)
	open := func() *postgres.DB {
		db, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatalf("%s is set but PostgreSQL is unreachable: %v", testenv.PostgresEnv, err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	testReplay(t, open(), open())
}

// Replay across two nodes on Redis (LATCHKEY_TEST_REDIS) and Redis Cluster
// (LATCHKEY_TEST_REDIS_CLUSTER).
func TestReplayRefusedRedis(t *testing.T) {
	for name, env := range map[string]func(testing.TB) string{"redis": testenv.Redis, "cluster": testenv.RedisCluster} {
		t.Run(name, func(t *testing.T) {
			u := env(t)
			open := func() *redis.DB {
				db, err := redis.Open(context.Background(), u, redis.Options{})
				if err != nil {
					t.Fatalf("the Redis under test is unreachable: %v", err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
			testReplay(t, open(), open())
		})
	}
}

// Package testenv gives tests the shared servers they run against —
// PostgreSQL, Redis, Redis Cluster — each isolated for one test and cleaned up
// after it, a log buffer safe to share with a server, and the API's error
// codes that fuzzed answers are checked against. A server is named
// by an environment variable; unset, the test is
// skipped with a line saying which variable; set but unreachable, the test fails.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey/latchkey"
	goredis "github.com/redis/go-redis/v9"
)

// Environment variables naming the servers under test.
const (
	PostgresEnv     = "LATCHKEY_TEST_POSTGRES"      // postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	RedisEnv        = "LATCHKEY_TEST_REDIS"         // redis://127.0.0.1:6379/0
	RedisClusterEnv = "LATCHKEY_TEST_REDIS_CLUSTER" // 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
)

func unique(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Postgres returns a connection URL whose search_path is a new, empty schema
// dropped after the test.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(PostgresEnv + " not set: skipping the PostgreSQL tests")
	}
	ctx := context.Background()
	schema := unique("lk_test_")
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("%s is set but PostgreSQL is unreachable: %v", PostgresEnv, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// Redis returns a redis:// URL with a fresh key prefix (`?prefix=`), whose
// keys are deleted after the test.
func Redis(t testing.TB) string { return redisURL(t, RedisEnv, "") }

// RedisCluster is Redis for the cluster, as a redis-cluster:// URL.
func RedisCluster(t testing.TB) string { return redisURL(t, RedisClusterEnv, "redis-cluster://") }

func redisURL(t testing.TB, env, scheme string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Skip(env + " not set: skipping the tests on this Redis")
	}
	base := scheme + v
	prefix := unique("lkt:") + ":"
	t.Cleanup(func() { deletePrefix(base, prefix) })
	return base + "?prefix=" + prefix
}

// deletePrefix removes every key starting with prefix, on every master.
func deletePrefix(u, prefix string) {
	ctx := context.Background()
	var c goredis.UniversalClient
	if rest, ok := strings.CutPrefix(u, "redis-cluster://"); ok {
		c = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: strings.Split(rest, ",")})
	} else if o, err := goredis.ParseURL(u); err == nil {
		c = goredis.NewClient(o)
	} else {
		return
	}
	defer c.Close()
	del := func(ctx context.Context, n goredis.UniversalClient) error {
		iter := n.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			n.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	if cc, ok := c.(*goredis.ClusterClient); ok {
		cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return del(ctx, n) })
	} else {
		del(ctx, c)
	}
}

// Buffer is a bytes.Buffer that several goroutines may write while a test
// reads it: a server's logger, a recorder's writer goroutine.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// APICodes are the first-party API's error codes below 500 (PRODUCT.md): the
// only codes a request, however malformed, may be answered with. The fuzz
// targets of the server and of the OpenAPI routes check answers against it.
var APICodes = []latchkey.Code{
	latchkey.CodeMissingToken, latchkey.CodeInvalidToken, latchkey.CodeTokenExpired, latchkey.CodeTokenRevoked,
	latchkey.CodeWrongTokenType, latchkey.CodeRefreshReused, latchkey.CodeSessionExpired, latchkey.CodeInvalidCredentials,
	latchkey.CodeFreshTokenRequired, latchkey.CodeCSRFFailed, latchkey.CodeRateLimited, latchkey.CodeInvalidRequest,
	latchkey.CodeWeakPassword, latchkey.CodeUsernameTaken, latchkey.CodeRegistrationClosed, latchkey.CodeNotFound,
	latchkey.CodeMethodNotAllowed,
}

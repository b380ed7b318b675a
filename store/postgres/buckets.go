package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/tokenbucket"
)

// spendSQL spends one token from each bucket of its arrays ($1 keys, $2
// bursts, $3 intervals in milliseconds, $4 lifetimes in milliseconds) at $5,
// in one statement. A new key is inserted full and spent from; a stored one
// is refilled and spent from by the ON CONFLICT update, which PostgreSQL runs
// on the row as it stands once the row lock is held, so concurrent spends
// queue on the row and none is lost. The arithmetic is
// tokenbucket.Spend's, operation for operation, on float8 as in Go.
const spendSQL = `WITH input AS (
		SELECT * FROM unnest($1::TEXT[], $2::FLOAT8[], $3::FLOAT8[], $4::BIGINT[]) AS i (key, burst, every, ttl)
	)
	INSERT INTO latchkey_buckets AS b (key, tokens, updated_at, expires_at)
	SELECT key, burst - 1, $5::BIGINT, $5::BIGINT + ttl FROM input
	ON CONFLICT (key) DO UPDATE SET
		tokens = (SELECT GREATEST(LEAST(i.burst, b.tokens + GREATEST($5::BIGINT - b.updated_at, 0) / i.every) - 1, 0)
			FROM input i WHERE i.key = b.key),
		updated_at = GREATEST(b.updated_at, $5::BIGINT),
		expires_at = GREATEST(b.updated_at, $5::BIGINT) + (SELECT i.ttl FROM input i WHERE i.key = b.key)`

// Spend takes a token from each of bs with one statement (spendSQL). The
// buckets go in byte order of key, so that two spends of the same keys lock
// their rows in the same order and never deadlock.
func (db *DB) Spend(ctx context.Context, bs []store.Bucket, now time.Time) error {
	tbs, err := tokenbucket.Check(bs)
	if err != nil {
		return fmt.Errorf("postgres: spend: %w", err)
	}
	if len(tbs) == 0 {
		return nil
	}
	slices.SortFunc(tbs, func(a, b tokenbucket.Bucket) int { return strings.Compare(a.Key, b.Key) })
	keys, bursts, everys, ttls := make([]string, len(tbs)), make([]float64, len(tbs)), make([]float64, len(tbs)), make([]int64, len(tbs))
	for i, b := range tbs {
		keys[i], bursts[i], everys[i], ttls[i] = b.Key, b.Burst, b.EveryMS, b.TTLMS
	}
	if _, err := db.pool.Exec(ctx, spendSQL, keys, bursts, everys, ttls, now.UnixMilli()); err != nil {
		return fmt.Errorf("postgres: spend: %w", err)
	}
	return nil
}

// Wait reads the buckets of bs and returns the longest wait among them.
func (db *DB) Wait(ctx context.Context, bs []store.Bucket, now time.Time) (time.Duration, error) {
	tbs, err := tokenbucket.Check(bs)
	if err != nil {
		return 0, fmt.Errorf("postgres: wait: %w", err)
	}
	keys := make([]string, len(tbs))
	for i, b := range tbs {
		keys[i] = b.Key
	}
	type stored struct {
		tokens  float64
		updated int64
	}
	rows, err := db.pool.Query(ctx, `SELECT key, tokens, updated_at FROM latchkey_buckets WHERE key = ANY($1)`, keys)
	if err != nil {
		return 0, fmt.Errorf("postgres: wait: %w", err)
	}
	found := map[string]stored{}
	var key string
	var s stored
	if _, err := pgx.ForEachRow(rows, []any{&key, &s.tokens, &s.updated}, func() error {
		found[key] = s
		return nil
	}); err != nil {
		return 0, fmt.Errorf("postgres: wait: %w", err)
	}
	var wait time.Duration
	for _, b := range tbs {
		if s, ok := found[b.Key]; ok {
			wait = max(wait, tokenbucket.Wait(b, tokenbucket.Refill(b, s.tokens, s.updated, now.UnixMilli())))
		}
	}
	return wait, nil
}

// Forget deletes the bucket with this key.
func (db *DB) Forget(ctx context.Context, key string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM latchkey_buckets WHERE key = $1`, key); err != nil {
		return fmt.Errorf("postgres: forget: %w", err)
	}
	return nil
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/tokenbucket"
)

// Spend takes a token from each of bs in one IMMEDIATE transaction: it reads
// each bucket and writes it back under the write lock, which every process
// on the file takes in turn, so no spend is lost.
func (d *DB) Spend(ctx context.Context, bs []store.Bucket, now time.Time) error {
	tbs, err := tokenbucket.Check(bs)
	if err != nil {
		return fmt.Errorf("sqlite: spend: %w", err)
	}
	if len(tbs) == 0 {
		return nil
	}
	if err := d.spend(ctx, tbs, now.UnixMilli()); err != nil {
		return fmt.Errorf("sqlite: spend: %w", err)
	}
	return nil
}

func (d *DB) spend(ctx context.Context, bs []tokenbucket.Bucket, now int64) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, b := range bs {
		tokens, updated := b.Burst, now // never seen, or dropped: full
		err := tx.QueryRowContext(ctx, `SELECT tokens, updated_at FROM buckets WHERE key = ?`, b.Key).Scan(&tokens, &updated)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		tokens, updated = tokenbucket.Spend(b, tokens, updated, now)
		if _, err := tx.ExecContext(ctx, `INSERT INTO buckets (key, tokens, updated_at, expires_at) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (key) DO UPDATE SET tokens = ?2, updated_at = ?3, expires_at = ?4`,
			b.Key, tokens, updated, updated+b.TTLMS); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Wait reads the buckets of bs and returns the longest wait among them.
func (d *DB) Wait(ctx context.Context, bs []store.Bucket, now time.Time) (time.Duration, error) {
	tbs, err := tokenbucket.Check(bs)
	if err != nil {
		return 0, fmt.Errorf("sqlite: wait: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: wait: %w", err)
	}
	if len(tbs) == 0 {
		return 0, nil
	}
	keys := make([]any, len(tbs))
	for i, b := range tbs {
		keys[i] = b.Key
	}
	type stored struct {
		tokens  float64
		updated int64
	}
	// A placeholder per key, so that keys are compared as the bytes given.
	rows, err := d.r.QueryContext(ctx, `SELECT key, tokens, updated_at FROM buckets WHERE key IN (?`+strings.Repeat(`, ?`, len(keys)-1)+`)`, keys...)
	if err != nil {
		return 0, fmt.Errorf("sqlite: wait: %w", err)
	}
	found := map[string]stored{}
	defer rows.Close()
	for rows.Next() {
		var key string
		var s stored
		if err := rows.Scan(&key, &s.tokens, &s.updated); err != nil {
			return 0, fmt.Errorf("sqlite: wait: %w", err)
		}
		found[key] = s
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: wait: %w", err)
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
func (d *DB) Forget(ctx context.Context, key string) error {
	if _, err := d.w.ExecContext(ctx, `DELETE FROM buckets WHERE key = ?`, key); err != nil {
		return fmt.Errorf("sqlite: forget: %w", err)
	}
	return nil
}

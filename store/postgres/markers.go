package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// Mark records key until until with one upsert that replaces only an ended
// marker; no row changed means a live one holds the key. Concurrent upserts
// of one key wait for each other's row lock, and the later one checks the
// condition against the row the earlier one wrote.
func (db *DB) Mark(ctx context.Context, key string, now, until time.Time) error {
	tag, err := db.pool.Exec(ctx, `INSERT INTO latchkey_markers (key, until) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET until = EXCLUDED.until WHERE latchkey_markers.until <= $3`,
		key, sqlrow.Millis(until), sqlrow.Millis(now))
	if err != nil {
		return fmt.Errorf("postgres: mark: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrExists
	}
	return nil
}

package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// Mark records key until until with one upsert that replaces only an ended
// marker; no row changed means a live one holds the key.
func (d *DB) Mark(ctx context.Context, key string, now, until time.Time) error {
	res, err := d.w.ExecContext(ctx, `INSERT INTO markers (key, until) VALUES (?1, ?2)
		ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE markers.until <= ?3`,
		key, sqlrow.Millis(until), sqlrow.Millis(now))
	if err != nil {
		return fmt.Errorf("sqlite: mark: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: mark: %w", err)
	}
	if n == 0 {
		return store.ErrExists
	}
	return nil
}

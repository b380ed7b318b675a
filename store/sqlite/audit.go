package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/eventlog"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// AppendEvents inserts es in one IMMEDIATE transaction: all or none;
// store.ErrExists if an ID is taken.
func (d *DB) AppendEvents(ctx context.Context, es []store.Event) error {
	if err := eventlog.Check(es); err != nil {
		if errors.Is(err, store.ErrExists) {
			return err
		}
		return fmt.Errorf("sqlite: append events: %w", err)
	}
	if len(es) == 0 {
		return nil
	}
	err := d.appendEvents(ctx, es)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("sqlite: append events: %w", err)
	}
	return err
}

func (d *DB) appendEvents(ctx context.Context, es []store.Event) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO events (`+sqlrow.EventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, e := range es {
		if _, err := st.ExecContext(ctx, sqlrow.EventValues(e)...); isUnique(err) {
			return store.ErrExists
		} else if err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Events returns the events f selects, newest first, ties in descending byte
// order of ID (BINARY collation).
func (d *DB) Events(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	where := `at >= ?1`
	if f.UserID != "" {
		where += ` AND user_id = ?2`
	}
	rows, err := d.r.QueryContext(ctx, `SELECT `+sqlrow.EventColumns+` FROM events WHERE `+where+` ORDER BY at DESC, id DESC LIMIT ?3`,
		eventlog.Since(f), f.UserID, eventlog.Limit(f))
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	out, err := collect(rows, sqlrow.Event)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	return out, nil
}

// PurgeEvents deletes the events before before, in short writes of
// purgeBatch rows.
func (d *DB) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	n, err := d.deleteBatches(ctx, `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ?1 LIMIT ?2)`, sqlrow.Millis(before))
	if err != nil {
		return n, fmt.Errorf("sqlite: purge events: %w", err)
	}
	return n, nil
}

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// CreateSessionCapped inserts x and revokes the user's least recently used
// live sessions beyond limit, all in one IMMEDIATE transaction: it holds the
// file's write lock from the insert to the last revocation, so concurrent
// calls from any process count each other's sessions.
func (d *DB) CreateSessionCapped(ctx context.Context, x store.Session, limit int, reason string, until time.Time) ([]string, error) {
	if limit < 1 {
		return nil, fmt.Errorf("sqlite: create session capped: a cap of %d sessions", limit)
	}
	if err := sqlrow.CheckRegistration(x); err != nil {
		return nil, fmt.Errorf("sqlite: create session capped: %w", err)
	}
	vals, err := sqlrow.SessionValues(x)
	if err != nil {
		return nil, fmt.Errorf("sqlite: create session capped: %w", err)
	}
	revoked, err := d.createSessionCapped(ctx, x, vals, limit, reason, until)
	if err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, err
		}
		return nil, fmt.Errorf("sqlite: create session capped: %w", err)
	}
	return revoked, nil
}

func (d *DB) createSessionCapped(ctx context.Context, x store.Session, vals []any, limit int, reason string, until time.Time) ([]string, error) {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, insertSession, vals...); isUnique(err) {
		return nil, store.ErrExists
	} else if err != nil {
		return nil, err
	}
	// The others live at x.CreatedAt, least recently used first: all but
	// the last limit-1 go.
	rows, err := tx.QueryContext(ctx, `SELECT id FROM sessions WHERE user_id = ?2 AND id <> ?3 AND `+sqlrow.LiveAt("?1")+`
		ORDER BY last_used_at, id`, sqlrow.Millis(x.CreatedAt), x.UserID, x.ID)
	if err != nil {
		return nil, err
	}
	live, err := collect(rows, func(row sqlrow.Scanner) (id string, err error) { return id, row.Scan(&id) })
	if err != nil {
		return nil, err
	}
	var revoked []string
	rev := store.Revocation{At: x.CreatedAt, Until: until}
	for _, id := range live[:len(live)-min(len(live), limit-1)] {
		if did, err := revokeIn(ctx, tx, id, reason, rev); err != nil {
			return nil, err
		} else if did {
			revoked = append(revoked, id)
		}
	}
	return revoked, tx.Commit()
}

package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// capLock is the first key of the advisory locks, one per user (the second
// key is a hash of the user's ID), that serialise the capped creations of a
// user. Two-key advisory locks never collide with the one-key locks of
// migrationLock and feedLock.
const capLock = 0x6c6b6361 // "lkca"

// CreateSessionCapped inserts x and revokes the user's least recently used
// live sessions beyond limit in one transaction. It first takes the user's
// advisory lock, held to commit: the capped creations of one user, from any
// node, run one after the other, and each counts the sessions the ones
// before it committed (under READ COMMITTED every statement sees them).
// Locking the user's session rows instead would not do: a row another
// creation is about to insert cannot be locked. Two users hashing alike
// only wait for each other.
func (db *DB) CreateSessionCapped(ctx context.Context, x store.Session, limit int, reason string, until time.Time) ([]string, error) {
	if limit < 1 {
		return nil, fmt.Errorf("postgres: create session capped: a cap of %d sessions", limit)
	}
	if err := sqlrow.CheckRegistration(x); err != nil {
		return nil, fmt.Errorf("postgres: create session capped: %w", err)
	}
	vals, err := sqlrow.SessionValues(x)
	if err != nil {
		return nil, fmt.Errorf("postgres: create session capped: %w", err)
	}
	var revoked []string
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		revoked = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(capLock), x.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertSession, vals...); isUnique(err) {
			return store.ErrExists
		} else if err != nil {
			return err
		}
		// The others live at x.CreatedAt, least recently used first: all
		// but the last limit-1 go.
		rows, err := tx.Query(ctx, `SELECT id FROM latchkey_sessions WHERE user_id = $2 AND id <> $3 AND `+sqlrow.LiveAt("$1::BIGINT")+`
			ORDER BY last_used_at, id COLLATE "C"`, sqlrow.Millis(x.CreatedAt), x.UserID, x.ID)
		if err != nil {
			return err
		}
		live, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		over := live[:len(live)-min(len(live), limit-1)]
		if len(over) == 0 {
			return nil
		}
		// Mark them with one UPDATE, then append their feed entries as
		// RevokeSession does: row locks first and the feed's lock last, the
		// order RevokeSession takes them in, so the two never deadlock (one
		// revoking as it goes could hold the feed's lock while it waits for
		// the row a RevokeSession holds, waiting for the feed's lock). A
		// session RevokeSession revoked in between (it takes no lock of
		// the user's) is not marked again: its revocation stands.
		rows, err = tx.Query(ctx, `UPDATE latchkey_sessions SET revoked_at = $1, revoke_reason = $2
			WHERE id = ANY($3) AND revoked_at = 0 RETURNING id`, sqlrow.Millis(x.CreatedAt), reason, over)
		if err != nil {
			return err
		}
		marked, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range over { // in LRU order
			if !slices.Contains(marked, id) {
				continue
			}
			if err := appendFeed(ctx, tx, store.Revocation{SessionID: id, At: x.CreatedAt, Until: until}); err != nil {
				return err
			}
			revoked = append(revoked, id)
		}
		return nil
	})
	if err != nil {
		if sentinel(err) {
			return nil, err
		}
		return nil, fmt.Errorf("postgres: create session capped: %w", err)
	}
	return revoked, nil
}

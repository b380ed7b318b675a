package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/eventlog"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// AppendEvents inserts es with one INSERT of their columns as arrays: one
// statement, so all or none; store.ErrExists if an ID is taken.
func (db *DB) AppendEvents(ctx context.Context, es []store.Event) error {
	if err := eventlog.Check(es); err != nil {
		if errors.Is(err, store.ErrExists) {
			return err
		}
		return fmt.Errorf("postgres: append events: %w", err)
	}
	if len(es) == 0 {
		return nil
	}
	n := len(es)
	ids, kinds, actors, users := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	sessions, ips, agents, details := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ats := make([]int64, n)
	for i, e := range es {
		ids[i], ats[i], kinds[i], actors[i], users[i] = e.ID, sqlrow.Millis(e.At), e.Kind, e.Actor, e.UserID
		sessions[i], ips[i], agents[i], details[i] = e.SessionID, e.IP, e.UserAgent, e.Detail
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO latchkey_events (`+sqlrow.EventColumns+`)
		SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[])`,
		ids, ats, kinds, actors, users, sessions, ips, agents, details)
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: append events: %w", err)
	}
	return nil
}

// Events returns the events f selects, newest first, ties in descending byte
// order of ID (COLLATE "C").
func (db *DB) Events(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	where := `at >= $1`
	args := []any{eventlog.Since(f), eventlog.Limit(f)}
	if f.UserID != "" {
		where += ` AND user_id = $3`
		args = append(args, f.UserID)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.EventColumns+` FROM latchkey_events WHERE `+where+`
		ORDER BY at DESC, id COLLATE "C" DESC LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Event, error) { return sqlrow.Event(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	return es, nil
}

// PurgeEvents deletes the events before before, purgeBatch rows a statement.
func (db *DB) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	n, err := db.deleteBatches(ctx, `DELETE FROM latchkey_events WHERE id IN (SELECT id FROM latchkey_events WHERE at < $1 LIMIT $2)`, sqlrow.Millis(before))
	if err != nil {
		return n, fmt.Errorf("postgres: purge events: %w", err)
	}
	return n, nil
}

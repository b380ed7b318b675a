package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// insertIdentity inserts the values of sqlrow.IdentityValues, or nothing when
// there is no user $2.
const insertIdentity = `INSERT INTO latchkey_identities (` + sqlrow.IdentityColumns + `)
	SELECT $1::TEXT, $2::TEXT, $3::TEXT, $4::TEXT, $5::TEXT, $6::BIGINT
	WHERE EXISTS (SELECT 1 FROM latchkey_users WHERE id = $2::TEXT)`

// inserted translates the outcome of an insertIdentity: store.ErrExists for a
// taken key, store.ErrNotFound if no row went in.
func inserted(tag pgconn.CommandTag, err error) error {
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// sentinel reports whether err is one of the contract's sentinels, which
// the methods return unwrapped.
func sentinel(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict)
}

// LinkIdentity inserts id for the existing user id.UserID; store.ErrExists if
// (Provider, Subject) is linked already or the ID is taken, store.ErrNotFound
// if there is no such user.
func (db *DB) LinkIdentity(ctx context.Context, id store.Identity) error {
	err := inserted(db.pool.Exec(ctx, insertIdentity, sqlrow.IdentityValues(id)...))
	if err != nil && !sentinel(err) {
		return fmt.Errorf("postgres: link identity: %w", err)
	}
	return err
}

// CreateUserWithIdentity inserts u and id in one transaction: both or neither.
func (db *DB) CreateUserWithIdentity(ctx context.Context, u store.User, id store.Identity) error {
	if id.UserID != u.ID {
		return fmt.Errorf("postgres: create user with identity: the identity is for user %q, not %q", id.UserID, u.ID)
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertUser, userValues(u)...); isUnique(err) {
			return store.ErrExists
		} else if err != nil {
			return err
		}
		return inserted(tx.Exec(ctx, insertIdentity, sqlrow.IdentityValues(id)...)) // never ErrNotFound: the user is there
	})
	if err != nil && !sentinel(err) {
		return fmt.Errorf("postgres: create user with identity: %w", err)
	}
	return err
}

// IdentityBySubject returns the identity with exactly this provider and
// subject, or store.ErrNotFound.
func (db *DB) IdentityBySubject(ctx context.Context, provider, subject string) (store.Identity, error) {
	id, err := sqlrow.Identity(db.pool.QueryRow(ctx, `SELECT `+sqlrow.IdentityColumns+` FROM latchkey_identities WHERE provider = $1 AND subject = $2`, provider, subject))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Identity{}, store.ErrNotFound
	}
	if err != nil {
		return store.Identity{}, fmt.Errorf("postgres: identity by subject: %w", err)
	}
	return id, nil
}

// UserIdentities returns the identities of the user, oldest first, ties in
// byte order of ID (COLLATE "C").
func (db *DB) UserIdentities(ctx context.Context, userID string) ([]store.Identity, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.IdentityColumns+` FROM latchkey_identities WHERE user_id = $1 ORDER BY created_at, id COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: user identities: %w", err)
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Identity, error) { return sqlrow.Identity(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: user identities: %w", err)
	}
	return ids, nil
}

// UnlinkIdentity removes identity id of user userID. Without keepOne it is one
// DELETE. With keepOne, a transaction first locks every identity row of the
// user (SELECT … FOR UPDATE, in ID order so that two unlinks never deadlock),
// counts them and deletes only if another remains. A single DELETE with a
// count subquery would not do here: under READ COMMITTED two of them, each
// deleting a different row, both count two and leave none. A second unlink
// waits for the first's locks and then reads the rows that remain.
func (db *DB) UnlinkIdentity(ctx context.Context, userID, id string, keepOne bool) error {
	var err error
	if keepOne {
		err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT id FROM latchkey_identities WHERE user_id = $1 ORDER BY id COLLATE "C" FOR UPDATE`, userID)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			if !slices.Contains(ids, id) {
				return store.ErrNotFound
			}
			if len(ids) < 2 {
				return store.ErrConflict
			}
			_, err = tx.Exec(ctx, `DELETE FROM latchkey_identities WHERE id = $1 AND user_id = $2`, id, userID)
			return err
		})
	} else {
		var tag pgconn.CommandTag
		tag, err = db.pool.Exec(ctx, `DELETE FROM latchkey_identities WHERE id = $1 AND user_id = $2`, id, userID)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil && !sentinel(err) {
		return fmt.Errorf("postgres: unlink identity: %w", err)
	}
	return err
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/sqlrow"
)

// insertIdentity inserts the values of sqlrow.IdentityValues, or nothing when
// there is no user ?2.
const insertIdentity = `INSERT INTO identities (` + sqlrow.IdentityColumns + `)
	SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2)`

// LinkIdentity inserts id for the existing user id.UserID; store.ErrExists if
// (Provider, Subject) is linked already or the ID is taken, store.ErrNotFound
// if there is no such user.
func (d *DB) LinkIdentity(ctx context.Context, id store.Identity) error {
	res, err := d.w.ExecContext(ctx, insertIdentity, sqlrow.IdentityValues(id)...)
	if err := inserted(res, err); err != nil {
		if errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("sqlite: link identity: %w", err)
	}
	return nil
}

// inserted translates the result of an insertIdentity: store.ErrExists for a
// taken key, store.ErrNotFound if no row went in.
func inserted(res sql.Result, err error) error {
	if isUnique(err) {
		return store.ErrExists
	}
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// CreateUserWithIdentity inserts u and id in one IMMEDIATE transaction: both
// or neither.
func (d *DB) CreateUserWithIdentity(ctx context.Context, u store.User, id store.Identity) error {
	if id.UserID != u.ID {
		return fmt.Errorf("sqlite: create user with identity: the identity is for user %q, not %q", id.UserID, u.ID)
	}
	err := d.createUserWithIdentity(ctx, u, id)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("sqlite: create user with identity: %w", err)
	}
	return err
}

func (d *DB) createUserWithIdentity(ctx context.Context, u store.User, id store.Identity) error {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, insertUser, userValues(u)...); isUnique(err) {
		return store.ErrExists
	} else if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, insertIdentity, sqlrow.IdentityValues(id)...)
	if err := inserted(res, err); err != nil {
		return err // never ErrNotFound: the user is there
	}
	return tx.Commit()
}

// IdentityBySubject returns the identity with exactly this provider and
// subject (BINARY collation: byte for byte), or store.ErrNotFound.
func (d *DB) IdentityBySubject(ctx context.Context, provider, subject string) (store.Identity, error) {
	id, err := sqlrow.Identity(d.r.QueryRowContext(ctx, `SELECT `+sqlrow.IdentityColumns+` FROM identities WHERE provider = ? AND subject = ?`, provider, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Identity{}, store.ErrNotFound
	}
	if err != nil {
		return store.Identity{}, fmt.Errorf("sqlite: identity by subject: %w", err)
	}
	return id, nil
}

// UserIdentities returns the identities of the user, oldest first, ties in
// byte order of ID.
func (d *DB) UserIdentities(ctx context.Context, userID string) ([]store.Identity, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT `+sqlrow.IdentityColumns+` FROM identities WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user identities: %w", err)
	}
	out, err := collect(rows, sqlrow.Identity)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user identities: %w", err)
	}
	return out, nil
}

// UnlinkIdentity removes identity id of user userID with one conditional
// DELETE. With keepOne it counts the user's identities in the same statement,
// under the write lock, so two unlinks (from any process) never both see two.
// If nothing was deleted, a second look tells a refusal from a missing identity.
func (d *DB) UnlinkIdentity(ctx context.Context, userID, id string, keepOne bool) error {
	res, err := d.w.ExecContext(ctx, `DELETE FROM identities WHERE id = ?1 AND user_id = ?2
		AND (NOT ?3 OR (SELECT count(*) FROM identities WHERE user_id = ?2) > 1)`, id, userID, keepOne)
	if err != nil {
		return fmt.Errorf("sqlite: unlink identity: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: unlink identity: %w", err)
	}
	if n == 1 {
		return nil
	}
	if !keepOne {
		return store.ErrNotFound
	}
	var exists bool
	if err := d.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM identities WHERE id = ? AND user_id = ?)`, id, userID).Scan(&exists); err != nil {
		return fmt.Errorf("sqlite: unlink identity: %w", err)
	}
	if !exists {
		return store.ErrNotFound
	}
	return store.ErrConflict
}

package users

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store"
)

// Outside is an identity at another provider, as a verified ID token names
// it.
type Outside struct {
	// Issuer is the provider's issuer URL: with Subject, what names the
	// identity. Stored as the identity's Provider, so that renaming a
	// provider keeps its links and a name given to another issuer inherits
	// none.
	Issuer   string
	Provider string // the operator's name for the provider, for usernames of sign-ups
	Subject  string // the provider's "sub"
	Email    string // shown to the user; never used to find or link an account
}

// KeepsIdentities reports whether the store offers store.Identities.
func (s *Service) KeepsIdentities() bool { return s.ids != nil }

// ErrNoIdentities is returned by the identity methods of a Service whose
// store does not offer the Identities role.
var ErrNoIdentities = latchkey.ErrNotFound.WithMessage("This server keeps no linked identities.")

func (s *Service) identities() (store.Identities, error) {
	if s.ids == nil {
		return nil, ErrNoIdentities
	}
	return s.ids, nil
}

// SignInWith returns the account linked to o. When none is and signup
// allows it, it creates an account without a password, linked to o, in one
// step. An account is never found by e-mail address: a provider's address
// proves nothing about an account here, and linking by it would hand the
// account to whoever controls that address at any provider.
func (s *Service) SignInWith(ctx context.Context, o Outside, signup bool) (u store.User, created bool, err error) {
	ids, err := s.identities()
	if err != nil {
		return store.User{}, false, err
	}
	id, err := ids.IdentityBySubject(ctx, o.Issuer, o.Subject)
	switch {
	case err == nil:
		u, err := s.ByID(ctx, id.UserID)
		if errors.Is(err, latchkey.ErrNotFound) || (err == nil && u.Disabled) {
			return store.User{}, false, latchkey.ErrInvalidCredentials.WithMessage("The account linked to this identity is disabled or gone.")
		}
		return u, false, err
	case !errors.Is(err, store.ErrNotFound):
		return store.User{}, false, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: identity: %w", err))
	case !signup:
		return store.User{}, false, latchkey.ErrRegistrationClosed.WithMessage("No account is linked to this identity, and sign-up with a provider is closed.")
	}
	for attempt := range 3 {
		u = store.User{ID: uuid.NewString(), Username: signupName(o, attempt), CreatedAt: s.now()}
		link := store.Identity{ID: newID(), UserID: u.ID, Provider: o.Issuer, Subject: o.Subject, Email: o.Email, CreatedAt: s.now()}
		err = ids.CreateUserWithIdentity(ctx, u, link)
		if err == nil {
			return u, true, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return store.User{}, false, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: sign up: %w", err))
		}
		// Either the name is taken, or another request signed this identity
		// up a moment ago: then that account is the answer.
		if id, err := ids.IdentityBySubject(ctx, o.Issuer, o.Subject); err == nil {
			u, err := s.ByID(ctx, id.UserID)
			return u, false, err
		}
	}
	return store.User{}, false, latchkey.ErrUnavailable.WithCause(errors.New("users: sign up: no free username"))
}

// signupName is the username of an account created by a provider sign-in:
// the provider's name and a digest of the subject (not the subject itself,
// which some providers make an e-mail address), random after a collision.
func signupName(o Outside, attempt int) string {
	sum := sha256.Sum256([]byte(o.Issuer + "\x00" + o.Subject))
	tail := hex.EncodeToString(sum[:6])
	if attempt > 0 {
		tail = newID()[:12]
	}
	return o.Provider + "-" + tail
}

// identityID is the shape of newID's values; anything else names no identity.
var identityID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// newID is 128 random bits, hex.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Link links o to the account userID. Linking an identity that is linked to
// this account already changes nothing; one linked to another account is
// refused.
func (s *Service) Link(ctx context.Context, userID string, o Outside) (store.Identity, error) {
	ids, err := s.identities()
	if err != nil {
		return store.Identity{}, err
	}
	link := store.Identity{ID: newID(), UserID: userID, Provider: o.Issuer, Subject: o.Subject, Email: o.Email, CreatedAt: s.now()}
	err = ids.LinkIdentity(ctx, link)
	if errors.Is(err, store.ErrExists) {
		have, err := ids.IdentityBySubject(ctx, o.Issuer, o.Subject)
		if err == nil && have.UserID == userID {
			return have, nil
		}
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return store.Identity{}, latchkey.ErrInvalidRequest.WithMessage("This identity is linked to another account; unlink it there first.")
		}
	}
	if err != nil {
		return store.Identity{}, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: link: %w", err))
	}
	return link, nil
}

// Identities lists the identities linked to userID, oldest first.
func (s *Service) Identities(ctx context.Context, userID string) ([]store.Identity, error) {
	ids, err := s.identities()
	if err != nil {
		return nil, err
	}
	out, err := ids.UserIdentities(ctx, userID)
	if err != nil {
		return nil, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: identities: %w", err))
	}
	return out, nil
}

// Unlink removes the identity id of userID. An account without a password
// keeps its last identity: without it, nobody could sign in to it again.
func (s *Service) Unlink(ctx context.Context, userID, id string) error {
	ids, err := s.identities()
	if err != nil {
		return err
	}
	if !identityID.MatchString(id) {
		return latchkey.ErrNotFound.WithMessage("No such identity on this account.")
	}
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return err
	}
	err = ids.UnlinkIdentity(ctx, userID, id, !u.HasPassword())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return latchkey.ErrNotFound.WithMessage("No such identity on this account.")
	case errors.Is(err, store.ErrConflict):
		return latchkey.ErrInvalidRequest.WithMessage("This is the account's last way to sign in: link another identity first.")
	case err != nil:
		return latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: unlink: %w", err))
	}
	return nil
}

// Package users is the account logic of the token server and the CLI:
// registration with a password policy, login that costs the same whether or
// not the account exists, password changes and disabling.
package users

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/password"
	"github.com/latchkey/latchkey/store"
)

// Policy limits.
const (
	MinPasswordRunes = 8
	MaxPasswordBytes = 1024
	MaxUsernameBytes = 64
)

// Config configures a Service.
type Config struct {
	// Store keeps the accounts. Required. When it also offers
	// store.Identities, accounts can be linked to other providers.
	Store store.Users
	// Params are the argon2id parameters of new hashes; zero means password.Default().
	Params password.Params
	// MaxConcurrentHashes caps simultaneous argon2id computations (each takes
	// Params.Memory); zero means the number of CPUs.
	MaxConcurrentHashes int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service manages accounts. It is safe for concurrent use.
type Service struct {
	st     store.Users
	params password.Params
	sem    chan struct{}
	now    func() time.Time
	dummy  string           // a hash to verify against when the user does not exist
	ids    store.Identities // nil when the store does not offer the role

	namesMu sync.RWMutex
	names   map[string]string // user id → username, see Username
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("users: Config.Store is required")
	}
	if cfg.Params == (password.Params{}) {
		cfg.Params = password.Default()
	}
	if cfg.MaxConcurrentHashes <= 0 {
		cfg.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dummy, err := password.Hash("latchkey dummy password", cfg.Params)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	s := &Service{st: cfg.Store, params: cfg.Params, sem: make(chan struct{}, cfg.MaxConcurrentHashes), now: cfg.Now, dummy: dummy, names: map[string]string{}}
	s.ids, _ = cfg.Store.(store.Identities)
	return s, nil
}

// NormalizeUsername returns the canonical form of a username (case-folded), or
// ErrInvalidRequest if it is empty, too long, or has control characters or
// surrounding spaces.
func NormalizeUsername(name string) (string, error) {
	switch {
	case name == "":
		return "", latchkey.ErrInvalidRequest.WithMessage("A username is required.")
	case len(name) > MaxUsernameBytes:
		return "", latchkey.ErrInvalidRequest.WithMessage("The username is longer than 64 bytes.")
	case !utf8.ValidString(name) || strings.TrimSpace(name) != name || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", latchkey.ErrInvalidRequest.WithMessage("The username has control characters or surrounding spaces.")
	}
	return strings.ToLower(name), nil
}

func checkPassword(pw string) error {
	switch {
	case pw == "":
		return latchkey.ErrInvalidRequest.WithMessage("A password is required.")
	case len(pw) > MaxPasswordBytes:
		return latchkey.ErrInvalidRequest.WithMessage("The password is longer than 1024 bytes.")
	case utf8.RuneCountInString(pw) < MinPasswordRunes:
		return latchkey.ErrWeakPassword
	}
	return nil
}

// hash and verify run argon2id under the concurrency cap.
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return latchkey.ErrUnavailable.WithMessage("The request was cancelled.").WithCause(ctx.Err())
	}
}

func (s *Service) hash(ctx context.Context, pw string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-s.sem }()
	return password.Hash(pw, s.params)
}

// verifications counts argon2id verifications; tests use it to prove every
// login path does exactly one.
var verifications func()

func (s *Service) verify(ctx context.Context, encoded, pw string) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer func() { <-s.sem }()
	if verifications != nil {
		verifications()
	}
	ok, err := password.Verify(encoded, pw)
	if errors.Is(err, password.ErrMalformedHash) {
		return false, nil // an unreadable stored hash never authenticates
	}
	return ok, err
}

// Register creates an account.
func (s *Service) Register(ctx context.Context, username, pw string) (store.User, error) {
	name, err := NormalizeUsername(username)
	if err != nil {
		return store.User{}, err
	}
	if err := checkPassword(pw); err != nil {
		return store.User{}, err
	}
	return s.create(ctx, name, pw)
}

func (s *Service) create(ctx context.Context, name, pw string) (store.User, error) {
	h, err := s.hash(ctx, pw)
	if err != nil {
		return store.User{}, err
	}
	u := store.User{ID: uuid.NewString(), Username: name, PasswordHash: h, CreatedAt: s.now()}
	err = s.st.CreateUser(ctx, u)
	if errors.Is(err, store.ErrExists) {
		return store.User{}, latchkey.ErrUsernameTaken
	}
	if err != nil {
		return store.User{}, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: create: %w", err))
	}
	return u, nil
}

// Authenticate returns the account for username and password. An unknown
// user, a wrong password and a disabled account all fail with
// ErrInvalidCredentials after exactly one argon2id verification of the same
// cost, so neither the answer nor its timing tells them apart.
func (s *Service) Authenticate(ctx context.Context, username, pw string) (store.User, error) {
	if len(pw) > MaxPasswordBytes {
		return store.User{}, latchkey.ErrInvalidRequest.WithMessage("The password is longer than 1024 bytes.")
	}
	name, nameErr := NormalizeUsername(username)
	var u store.User
	var err error
	if nameErr == nil {
		u, err = s.st.UserByName(ctx, name)
	} else {
		err = store.ErrNotFound
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: lookup: %w", err))
	}
	found := err == nil
	encoded := s.dummy
	if found && u.HasPassword() {
		encoded = u.PasswordHash
	}
	// An account without a password (made by a provider sign-in) costs the
	// same verification as one with, and never matches.
	ok, verr := s.verify(ctx, encoded, pw)
	if verr != nil {
		return store.User{}, verr
	}
	if !found || !u.HasPassword() || !ok || u.Disabled {
		return store.User{}, latchkey.ErrInvalidCredentials
	}
	if password.NeedsRehash(u.PasswordHash, s.params) {
		if h, err := s.hash(ctx, pw); err == nil {
			u.PasswordHash = h
			_ = s.st.UpdateUser(ctx, u) // best effort: the login succeeds either way
		}
	}
	return u, nil
}

// ChangePassword replaces the password of userID after checking the old one.
func (s *Service) ChangePassword(ctx context.Context, userID, oldPw, newPw string) error {
	if err := checkPassword(newPw); err != nil {
		return err
	}
	u, err := s.ByID(ctx, userID)
	if err != nil {
		return err
	}
	ok, err := s.verify(ctx, u.PasswordHash, oldPw)
	if err != nil {
		return err
	}
	if !ok || u.Disabled {
		return latchkey.ErrInvalidCredentials.WithMessage("The current password is wrong.")
	}
	if u.PasswordHash, err = s.hash(ctx, newPw); err != nil {
		return err
	}
	if err := s.st.UpdateUser(ctx, u); err != nil {
		return latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: update: %w", err))
	}
	return nil
}

// SetDisabled disables or enables an account by username.
func (s *Service) SetDisabled(ctx context.Context, username string, disabled bool) (store.User, error) {
	u, err := s.ByName(ctx, username)
	if err != nil {
		return store.User{}, err
	}
	u.Disabled = disabled
	if err := s.st.UpdateUser(ctx, u); err != nil {
		return store.User{}, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: update: %w", err))
	}
	return u, nil
}

// Ensure creates username with password if it does not exist, without the
// password policy (it exists for `latchkey serve --demo`). Several processes
// may race on one store: exactly one creates it, the others return it.
func (s *Service) Ensure(ctx context.Context, username, pw string) (store.User, bool, error) {
	name, err := NormalizeUsername(username)
	if err != nil {
		return store.User{}, false, err
	}
	if u, err := s.st.UserByName(ctx, name); err == nil {
		return u, false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, latchkey.ErrUnavailable.WithCause(err)
	}
	u, err := s.create(ctx, name, pw)
	if errors.Is(err, latchkey.ErrUsernameTaken) {
		u, err := s.ByName(ctx, name)
		return u, false, err
	}
	return u, err == nil, err
}

// List returns every account, by username.
func (s *Service) List(ctx context.Context) ([]store.User, error) {
	us, err := s.st.ListUsers(ctx)
	if err != nil {
		return nil, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: list: %w", err))
	}
	return us, nil
}

// ByID returns the account with this id, or ErrNotFound.
func (s *Service) ByID(ctx context.Context, id string) (store.User, error) {
	u, err := s.st.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, latchkey.ErrNotFound.WithMessage("No such user.")
	}
	if err != nil {
		return store.User{}, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: by id: %w", err))
	}
	return u, nil
}

// maxCachedNames bounds the username cache; when it is full it starts over.
const maxCachedNames = 100_000

// Username returns the username of account id, or ErrNotFound. Usernames never
// change, so answers are remembered: a refresh names its user without a store
// read.
func (s *Service) Username(ctx context.Context, id string) (string, error) {
	s.namesMu.RLock()
	name, ok := s.names[id]
	s.namesMu.RUnlock()
	if ok {
		return name, nil
	}
	u, err := s.ByID(ctx, id)
	if err != nil {
		return "", err
	}
	s.namesMu.Lock()
	if len(s.names) >= maxCachedNames {
		clear(s.names)
	}
	s.names[id] = u.Username
	s.namesMu.Unlock()
	return u.Username, nil
}

// ByName returns the account with this username, or ErrNotFound.
func (s *Service) ByName(ctx context.Context, username string) (store.User, error) {
	name, err := NormalizeUsername(username)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.st.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, latchkey.ErrNotFound.WithMessage("No such user.")
	}
	if err != nil {
		return store.User{}, latchkey.ErrUnavailable.WithCause(fmt.Errorf("users: by name: %w", err))
	}
	return u, nil
}

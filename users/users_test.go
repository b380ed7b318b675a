package users_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/password"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newService(t *testing.T) *users.Service {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := users.New(users.Config{Store: db, Params: cheap})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRegisterPolicy(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, user, pw string
		want           error
	}{
		{"ok", "Alice", "long enough", nil},
		{"taken case-insensitively", "alice", "long enough", latchkey.ErrUsernameTaken},
		{"short password", "bob", "1234567", latchkey.ErrWeakPassword},
		{"eight runes of multibyte", "carol", "ééééééé", latchkey.ErrWeakPassword},
		{"empty user", "", "long enough", latchkey.ErrInvalidRequest},
		{"empty password", "dave", "", latchkey.ErrInvalidRequest},
		{"control char", "e\x00ve", "long enough", latchkey.ErrInvalidRequest},
		{"surrounding space", " frank", "long enough", latchkey.ErrInvalidRequest},
		{"long name", string(make([]byte, 65)), "long enough", latchkey.ErrInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Register(ctx, tc.user, tc.pw)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("Register(%q) = %v, want %v", tc.user, err, tc.want)
			}
		})
	}
	u, err := s.Authenticate(ctx, "ALICE", "long enough")
	if err != nil || u.Username != "alice" {
		t.Fatalf("Authenticate = %+v, %v", u, err)
	}
}

// Every failing path costs exactly one argon2id verification, like success:
// removing the dummy hash for unknown users would make this fail.
func TestAuthenticateCostsTheSame(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	if _, err := s.Register(ctx, "alice", "long enough"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register(ctx, "bob", "long enough"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetDisabled(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	users.SetVerifyHook(func() { n.Add(1) })
	defer users.SetVerifyHook(nil)
	for _, tc := range []struct{ user, pw string }{
		{"alice", "long enough"}, {"alice", "wrong password"}, {"nobody", "long enough"}, {"bob", "long enough"}, {"\x00", "x"},
	} {
		before := n.Load()
		_, err := s.Authenticate(ctx, tc.user, tc.pw)
		if got := n.Load() - before; got != 1 {
			t.Errorf("Authenticate(%q) did %d verifications, want 1", tc.user, got)
		}
		if tc.user != "alice" || tc.pw != "long enough" {
			if !errors.Is(err, latchkey.ErrInvalidCredentials) {
				t.Errorf("Authenticate(%q, %q) = %v, want invalid_credentials", tc.user, tc.pw, err)
			}
		}
	}
}

func TestChangePassword(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	u, _ := s.Register(ctx, "alice", "first password")
	if err := s.ChangePassword(ctx, u.ID, "wrong", "second password"); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Fatalf("wrong old password = %v", err)
	}
	if err := s.ChangePassword(ctx, u.ID, "first password", "short"); !errors.Is(err, latchkey.ErrWeakPassword) {
		t.Fatalf("short new password = %v", err)
	}
	if err := s.ChangePassword(ctx, u.ID, "first password", "second password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "alice", "first password"); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Fatal("the old password still works")
	}
	if _, err := s.Authenticate(ctx, "alice", "second password"); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureRaces(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	var created atomic.Int64
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			u, c, err := s.Ensure(ctx, "test", "test")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = u.ID
			if c {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d goroutines created the user, want 1", created.Load())
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatal("Ensure returned different users")
		}
	}
	if _, err := s.Authenticate(ctx, "test", "test"); err != nil {
		t.Fatalf("demo login: %v", err)
	}
}

func TestRehashOnLogin(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	old, _ := users.New(users.Config{Store: db, Params: cheap})
	if _, err := old.Register(ctx, "alice", "long enough"); err != nil {
		t.Fatal(err)
	}
	stronger := cheap
	stronger.Time = 2
	s, _ := users.New(users.Config{Store: db, Params: stronger})
	if _, err := s.Authenticate(ctx, "alice", "long enough"); err != nil {
		t.Fatal(err)
	}
	u, _ := db.UserByName(ctx, "alice")
	if password.NeedsRehash(u.PasswordHash, stronger) {
		t.Fatal("the hash was not upgraded on login")
	}
}

// Username answers from memory after the first read: the store is asked once.
func TestUsernameIsRemembered(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "names.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counted := &countingUsers{Users: st}
	s, err := users.New(users.Config{Store: counted, Params: cheap})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Register(t.Context(), "Alice", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		name, err := s.Username(t.Context(), u.ID)
		if err != nil || name != "alice" {
			t.Fatalf("Username = %q, %v", name, err)
		}
	}
	if counted.byID != 1 {
		t.Fatalf("%d store reads for three lookups, want 1", counted.byID)
	}
	if _, err := s.Username(t.Context(), "no-such-id"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

type countingUsers struct {
	store.Users
	byID int
}

func (c *countingUsers) UserByID(ctx context.Context, id string) (store.User, error) {
	c.byID++
	return c.Users.UserByID(ctx, id)
}

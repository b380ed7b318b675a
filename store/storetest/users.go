package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/latchkey/latchkey/store"
)

func createUserRoundTrip(t *testing.T, s store.Users) {
	ctx := t.Context()
	u := user("u1", "alice")
	must(t, s.CreateUser(ctx, u))
	got, err := s.UserByName(ctx, "alice")
	must(t, err)
	if d := diffUser(got, u); d != "" {
		t.Fatalf(`UserByName("alice"): %s`, d)
	}
	got, err = s.UserByID(ctx, "u1")
	must(t, err)
	if d := diffUser(got, u); d != "" {
		t.Fatalf(`UserByID("u1"): %s`, d)
	}
}

func createUserDuplicateName(t *testing.T, s store.Users) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	wantErr(t, `CreateUser(u2, "alice")`, s.CreateUser(ctx, user("u2", "alice")), store.ErrExists)
	if _, err := s.UserByID(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf(`UserByID("u2") after a refused create = %v, want %v`, err, store.ErrNotFound)
	}
}

func createUserDuplicateID(t *testing.T, s store.Users) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	wantErr(t, `CreateUser(u1, "bob")`, s.CreateUser(ctx, user("u1", "bob")), store.ErrExists)
	if _, err := s.UserByName(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf(`UserByName("bob") after a refused create = %v, want %v`, err, store.ErrNotFound)
	}
}

// userByNameMissing also checks that the match is exact: callers normalise
// usernames, the store does not.
func userByNameMissing(t *testing.T, s store.Users) {
	ctx := t.Context()
	_, err := s.UserByName(ctx, "nobody")
	wantErr(t, `UserByName("nobody")`, err, store.ErrNotFound)
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	for _, name := range []string{"Alice", "alice ", "alic", ""} {
		_, err := s.UserByName(ctx, name)
		wantErr(t, fmt.Sprintf("UserByName(%q)", name), err, store.ErrNotFound)
	}
}

func userByIDMissing(t *testing.T, s store.Users) {
	_, err := s.UserByID(t.Context(), "nobody")
	wantErr(t, `UserByID("nobody")`, err, store.ErrNotFound)
}

func updateUser(t *testing.T, s store.Users) {
	ctx := t.Context()
	u := user("u1", "alice")
	must(t, s.CreateUser(ctx, u))
	must(t, s.CreateUser(ctx, user("u2", "bob")))
	u.PasswordHash, u.Disabled = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$new", true
	must(t, s.UpdateUser(ctx, u))
	got, err := s.UserByID(ctx, "u1")
	must(t, err)
	if d := diffUser(got, u); d != "" {
		t.Fatalf(`UserByID("u1") after UpdateUser: %s`, d)
	}
	other, err := s.UserByID(ctx, "u2")
	must(t, err)
	if d := diffUser(other, user("u2", "bob")); d != "" {
		t.Fatalf(`UserByID("u2") after updating u1: %s`, d)
	}
	u.Disabled = false
	must(t, s.UpdateUser(ctx, u))
	if got, err := s.UserByName(ctx, "alice"); err != nil || got.Disabled {
		t.Fatalf(`UserByName("alice") after re-enabling = %+v, %v; want enabled`, got, err)
	}
}

func updateUserMissing(t *testing.T, s store.Users) {
	wantErr(t, `UpdateUser("nobody")`, s.UpdateUser(t.Context(), user("nobody", "x")), store.ErrNotFound)
}

func listUsersOrdered(t *testing.T, s store.Users) {
	ctx := t.Context()
	us, err := s.ListUsers(ctx)
	must(t, err)
	if len(us) != 0 {
		t.Fatalf("ListUsers on an empty store = %v, want none", us)
	}
	for i, name := range []string{"carol", "alice", "dave", "bob"} {
		must(t, s.CreateUser(ctx, user(fmt.Sprint("u", i), name)))
	}
	us, err = s.ListUsers(ctx)
	must(t, err)
	var names []string
	for _, u := range us {
		names = append(names, u.Username)
	}
	if want := []string{"alice", "bob", "carol", "dave"}; !slices.Equal(names, want) {
		t.Fatalf("ListUsers = %v, want %v", names, want)
	}
	if d := diffUser(us[0], user("u1", "alice")); d != "" {
		t.Fatalf("ListUsers()[0]: %s", d)
	}
}

// usersCanceledContext: every method of the role passes its context on, as
// canceledContext checks for the core.
func usersCanceledContext(t *testing.T, s store.Users) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, user("u1", "alice")))
	failCanceled(t, []call{
		{"CreateUser", func(c context.Context) error { return s.CreateUser(c, user("u2", "bob")) }},
		{"UserByName", func(c context.Context) error { _, err := s.UserByName(c, "alice"); return err }},
		{"UserByID", func(c context.Context) error { _, err := s.UserByID(c, "u1"); return err }},
		{"UpdateUser", func(c context.Context) error {
			u := user("u1", "alice")
			u.Disabled = true
			return s.UpdateUser(c, u)
		}},
		{"ListUsers", func(c context.Context) error { _, err := s.ListUsers(c); return err }},
	})
	// Nothing happened.
	if _, err := s.UserByID(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf(`UserByID("u2") after CreateUser(canceled context) = %v, want %v`, err, store.ErrNotFound)
	}
	got, err := s.UserByID(ctx, "u1")
	must(t, err)
	if d := diffUser(got, user("u1", "alice")); d != "" {
		t.Errorf(`UserByID("u1") after UpdateUser(canceled context): %s`, d)
	}
}

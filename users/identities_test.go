package users_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/users"
)

// A provider sign-up makes an account without a password: a password login
// to it fails after the same one verification as any other failure, even
// with an empty password hash's "match" of nothing.
func TestProviderAccountHasNoPassword(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	u, created, err := s.SignInWith(ctx, users.Outside{Issuer: "https://example.test", Provider: "example", Subject: "sub-1", Email: "a@example.com"}, true)
	if err != nil || !created || u.HasPassword() || !strings.HasPrefix(u.Username, "example-") {
		t.Fatalf("SignInWith = %+v, %v, %v", u, created, err)
	}
	var n atomic.Int64
	users.SetVerifyHook(func() { n.Add(1) })
	defer users.SetVerifyHook(nil)
	for _, pw := range []string{"", "x", "latchkey dummy password"} {
		before := n.Load()
		_, err := s.Authenticate(ctx, u.Username, pw)
		if !errors.Is(err, latchkey.ErrInvalidCredentials) || n.Load()-before != 1 {
			t.Fatalf("password %q for a provider account: %v after %d verifications", pw, err, n.Load()-before)
		}
	}
	again, created, err := s.SignInWith(ctx, users.Outside{Issuer: "https://example.test", Provider: "example", Subject: "sub-1"}, false)
	if err != nil || created || again.ID != u.ID {
		t.Fatalf("the second sign-in = %+v, %v, %v", again, created, err)
	}
}

// Sign-up closed, a disabled account, and identities compared exactly.
func TestSignInWithRefusals(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	if _, _, err := s.SignInWith(ctx, users.Outside{Issuer: "https://example.test", Provider: "example", Subject: "sub-1"}, false); !errors.Is(err, latchkey.ErrRegistrationClosed) {
		t.Fatalf("closed sign-up: %v", err)
	}
	u, _, err := s.SignInWith(ctx, users.Outside{Issuer: "https://example.test", Provider: "example", Subject: "sub-1"}, true)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.SignInWith(ctx, users.Outside{Issuer: "https://example.test", Provider: "example", Subject: "SUB-1"}, true)
	if err != nil || other.ID == u.ID {
		t.Fatalf("subjects differing in case share an account: %v", err)
	}
	if _, err := s.SetDisabled(ctx, u.Username, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SignInWith(ctx, users.Outside{Issuer: "https://example.test", Provider: "example", Subject: "sub-1"}, true); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Fatalf("a disabled account signed in: %v", err)
	}
}

// Unlinking refuses an account's last way in, names nothing for a malformed
// id, and never reaches another user's identity.
func TestUnlink(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	u, _, _ := s.SignInWith(ctx, users.Outside{Issuer: "https://example.test", Provider: "example", Subject: "sub-1"}, true)
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Identities = %v, %v", ids, err)
	}
	if err := s.Unlink(ctx, u.ID, ids[0].ID); !errors.Is(err, latchkey.ErrInvalidRequest) {
		t.Fatalf("unlinking the last way in: %v", err)
	}
	pwUser, err := s.Register(ctx, "alice", "long enough")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ids[0].ID, "../x", "", strings.Repeat("a", 32)} {
		if err := s.Unlink(ctx, pwUser.ID, id); !errors.Is(err, latchkey.ErrNotFound) {
			t.Fatalf("alice unlinking %q: %v", id, err)
		}
	}
	if _, err := s.Link(ctx, pwUser.ID, users.Outside{Issuer: "https://example.test", Provider: "example", Subject: "sub-1"}); !errors.Is(err, latchkey.ErrInvalidRequest) {
		t.Fatalf("linking another account's identity: %v", err)
	}
	l, err := s.Link(ctx, pwUser.ID, users.Outside{Issuer: "https://second.test", Provider: "second", Subject: "sub-1"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.Link(ctx, pwUser.ID, users.Outside{Issuer: "https://second.test", Provider: "second", Subject: "sub-1"}); err != nil || again.ID != l.ID {
		t.Fatalf("linking twice = %+v, %v", again, err)
	}
	if err := s.Unlink(ctx, pwUser.ID, l.ID); err != nil {
		t.Fatalf("an account with a password unlinking its only identity: %v", err)
	}
}

package latchkey_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

// Thumbprints of two DPoP keys; the core compares them and nothing else
// (the proofs are checked by the caller: package dpop).
const (
	ownerKey = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	thiefKey = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

// A session started with a DPoP key is bound to it for its whole lineage:
// its tokens are DPoP tokens carrying cnf.jkt, every refresh must come with
// that key, and a refresh without it (or with another) is refused without
// being taken as reuse, so a thief holding an old refresh token but not the
// key cannot end the owner's session. With the key, replaying an old token
// is reuse as always.
func TestDPoPBindingHoldsForTheLineage(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	first, err := f.auth.Login(ctx, "user-1", latchkey.LoginOptions{JKT: ownerKey})
	if err != nil {
		t.Fatal(err)
	}
	if first.TokenType != "DPoP" {
		t.Fatalf("token_type %q, want DPoP", first.TokenType)
	}
	p, err := f.auth.Verify(ctx, first.AccessToken)
	if err != nil || p.JKT != ownerKey || p.SenderConstrained {
		t.Fatalf("Verify = %+v, %v; want cnf.jkt of the owner's key, not yet sender-constrained", p, err)
	}
	if c, _ := base64.RawURLEncoding.DecodeString(strings.Split(first.AccessToken, ".")[1]); !strings.Contains(string(c), `"cnf":{"jkt":"`+ownerKey+`"}`) {
		t.Fatalf("access token claims %s: want cnf.jkt", c)
	}

	second, err := f.auth.Refresh(ctx, first.RefreshToken, latchkey.RefreshOptions{JKT: ownerKey})
	if err != nil || second.TokenType != "DPoP" {
		t.Fatalf("refresh with the key = %+v, %v", second, err)
	}
	f.clock.Add(time.Hour) // past the grace window: first is now a replayed token
	for name, jkt := range map[string]string{"no key": "", "another key": thiefKey} {
		for _, tok := range []string{first.RefreshToken, second.RefreshToken} {
			if _, err := f.auth.Refresh(ctx, tok, latchkey.RefreshOptions{JKT: jkt}); !errors.Is(err, latchkey.ErrInvalidDPoPProof) {
				t.Fatalf("refresh with %s = %v, want invalid_dpop_proof", name, err)
			}
		}
	}
	third, err := f.auth.Refresh(ctx, second.RefreshToken, latchkey.RefreshOptions{JKT: ownerKey})
	if err != nil {
		t.Fatalf("the owner's refresh after the thief's attempts = %v: the session must be intact", err)
	}
	if _, err := f.auth.Refresh(ctx, first.RefreshToken, latchkey.RefreshOptions{JKT: ownerKey}); !errors.Is(err, latchkey.ErrRefreshReused) {
		t.Fatalf("replay of an old token with the key = %v, want refresh_reused", err)
	}
	if _, err := f.auth.Refresh(ctx, third.RefreshToken, latchkey.RefreshOptions{JKT: ownerKey}); err == nil {
		t.Fatal("the session survived a proved replay")
	}
}

// A session started without a key stays a Bearer session: a proof sent with
// a refresh later binds nothing.
func TestDPoPUnboundSessionStaysBearer(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	first := f.login(t)
	if first.TokenType != "Bearer" {
		t.Fatalf("token_type %q", first.TokenType)
	}
	next, err := f.auth.Refresh(ctx, first.RefreshToken, latchkey.RefreshOptions{JKT: ownerKey})
	if err != nil || next.TokenType != "Bearer" {
		t.Fatalf("refresh of an unbound session with a proof = %+v, %v; want Bearer tokens", next, err)
	}
	if p, err := f.auth.Verify(ctx, next.AccessToken); err != nil || p.JKT != "" {
		t.Fatalf("Verify = %+v, %v; want no cnf", p, err)
	}
	if _, err := f.auth.Refresh(ctx, next.RefreshToken, latchkey.RefreshOptions{}); err != nil {
		t.Fatalf("refresh without a proof = %v", err)
	}
}

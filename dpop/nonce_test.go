package dpop_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/dpop"
)

// Server nonces: a proof without one, with an expired one, a forged one or
// one made with another secret gets use_dpop_nonce; the current nonce, and the
// previous step's, are accepted on every node that shares the secret.
func TestNonces(t *testing.T) {
	db := openSQLite(t, "")
	f := newFixture(t, dpop.Config{Markers: db, NonceKey: nonceKey, NonceStep: time.Minute})
	node2, err := dpop.New(dpop.Config{Markers: db, NonceKey: nonceKey, NonceStep: time.Minute, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := dpop.New(dpop.Config{Markers: db, NonceKey: []byte(strings.Repeat("x", 32)), NonceStep: time.Minute, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	verify := func(v *dpop.Verifier, nonce string) error {
		r := request(f.proof(t, func(p *dpop.Params) { p.Nonce = nonce; p.IssuedAt = f.clock.Now() }))
		r.RequireNonce = true
		_, err := v.Verify(ctx, r)
		return err
	}
	wantNonce := func(err error, msg string) {
		t.Helper()
		var e *dpop.Error
		if !errors.As(err, &e) || e.Code != dpop.CodeUseNonce || !strings.Contains(e.Message, msg) || !errors.Is(err, dpop.ErrUseNonce) {
			t.Fatalf("Verify = %v, want use_dpop_nonce (%s)", err, msg)
		}
	}

	n := f.v.Nonce()
	if n == "" || n != node2.Nonce() {
		t.Fatalf("Nonce() = %q on node 1, %q on node 2; want one non-empty nonce", n, node2.Nonce())
	}
	if n == stranger.Nonce() {
		t.Fatal("two secrets give the same nonce")
	}
	if err := verify(f.v, n); err != nil {
		t.Fatalf("Verify(current nonce) = %v", err)
	}
	if err := verify(node2, n); err != nil {
		t.Fatalf("Verify(node 1's nonce) on node 2 = %v", err)
	}
	wantNonce(verify(f.v, ""), "must carry")
	wantNonce(verify(f.v, stranger.Nonce()), "expired or not ours")
	wantNonce(verify(stranger, n), "expired or not ours")

	// Forgeries: garbage, a tampered MAC, the step changed.
	wantNonce(verify(f.v, "forged"), "expired or not ours")
	wantNonce(verify(f.v, strings.Repeat("A", len(n))), "expired or not ours")
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	wantNonce(verify(f.v, flip(n, len(n)-2)), "expired or not ours")
	wantNonce(verify(f.v, flip(n, 9)), "expired or not ours")
	wantNonce(verify(f.v, n+"A"), "expired or not ours")

	// One step later the nonce is the previous one: still good. Two: expired.
	f.clock.Add(time.Minute)
	if f.v.Nonce() == n {
		t.Fatal("the nonce did not change with the step")
	}
	if err := verify(f.v, n); err != nil {
		t.Fatalf("Verify(previous step's nonce) = %v", err)
	}
	f.clock.Add(time.Minute)
	wantNonce(verify(f.v, n), "expired or not ours")
	if err := verify(node2, f.v.Nonce()); err != nil {
		t.Fatalf("Verify(new nonce) = %v", err)
	}

	// A nonce from a node whose clock is ahead, within the leeway, is
	// accepted; one from further ahead is not.
	ahead, err := dpop.New(dpop.Config{Markers: db, NonceKey: nonceKey, NonceStep: time.Minute, Now: func() time.Time {
		return f.clock.Now().Truncate(time.Minute).Add(time.Minute)
	}})
	if err != nil {
		t.Fatal(err)
	}
	next := ahead.Nonce()
	f.clock.Add(time.Minute - f.clock.Now().Sub(f.clock.Now().Truncate(time.Minute)) - 2*time.Second)
	if err := verify(f.v, next); err != nil {
		t.Fatalf("Verify(next step's nonce, 2s before it) = %v", err)
	}
	f.clock.Add(-30 * time.Second)
	wantNonce(verify(f.v, next), "expired or not ours")

	// A nonce is ignored where none is required, and requiring one without a
	// key is a configuration error, not a refusal the client could fix.
	plain := newFixture(t, dpop.Config{})
	if plain.v.Nonce() != "" {
		t.Fatal("Nonce() without a key is not empty")
	}
	r := request(plain.proof(t, nil))
	r.RequireNonce = true
	if _, err := plain.v.Verify(ctx, r); err == nil || errors.Is(err, dpop.ErrUseNonce) {
		t.Fatalf("Verify(RequireNonce, no key) = %v, want a configuration error", err)
	}
}

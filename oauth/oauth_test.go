package oauth_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/store/sqlite"
)

func newClients(t *testing.T) (*oauth.Clients, *sqlite.DB) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "clients.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return oauth.New(st, nil), st
}

func TestSecretsAreHashedAndChecked(t *testing.T) {
	c, st := newClients(t)
	ctx := t.Context()
	cl, secret, err := c.Add(ctx, "billing", oauth.Options{Name: "billing backend", Confidential: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "lk_cs_") || len(secret) != len("lk_cs_")+43 {
		t.Fatalf("secret %q: want lk_cs_ and 256 bits", secret)
	}
	stored, err := st.Client(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if stored.SecretHash == "" || strings.Contains(stored.SecretHash, secret) || stored.SecretHash != cl.SecretHash {
		t.Fatalf("stored %q: want a hash, never the secret", stored.SecretHash)
	}
	if _, err := c.Authenticate(ctx, "billing", secret); err != nil {
		t.Fatalf("the right secret: %v", err)
	}
	_, other, _ := c.Add(ctx, "other", oauth.Options{Confidential: true})
	last := "A" // one character off: anything but the secret's own last one
	if strings.HasSuffix(secret, last) {
		last = "B"
	}
	for name, tc := range map[string][2]string{
		"no secret":              {"billing", ""},
		"another client's":       {"billing", other},
		"one character off":      {"billing", secret[:len(secret)-1] + last},
		"the stored hash itself": {"billing", stored.SecretHash},
		"unknown client":         {"nobody", secret},
		"malformed id":           {"bill ing", secret},
	} {
		if _, err := c.Authenticate(ctx, tc[0], tc[1]); !errors.Is(err, latchkey.ErrInvalidClient) {
			t.Errorf("%s: %v, want invalid_client", name, err)
		}
	}
}

func TestPublicClients(t *testing.T) {
	c, _ := newClients(t)
	ctx := t.Context()
	if _, secret, err := c.Add(ctx, "spa", oauth.Options{}); err != nil || secret != "" {
		t.Fatalf("public client: secret %q, %v", secret, err)
	}
	if _, err := c.Authenticate(ctx, "spa", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, "spa", "anything"); !errors.Is(err, latchkey.ErrInvalidClient) {
		t.Fatalf("a public client with a secret: %v", err)
	}
	if created, err := c.Ensure(ctx, "spa", ""); err != nil || created {
		t.Fatalf("Ensure of an existing client = %v, %v", created, err)
	}
	if created, err := c.Ensure(ctx, "demo", ""); err != nil || !created {
		t.Fatalf("Ensure of a new client = %v, %v", created, err)
	}
	if err := c.Remove(ctx, "spa"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, "spa", ""); !errors.Is(err, latchkey.ErrInvalidClient) {
		t.Fatalf("a removed client: %v", err)
	}
	if err := c.Remove(ctx, "spa"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"web": true, "my-app.v2_x~y": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "a b": false, "a:b": false, "a%20": false, "é": false, "a/b": false,
	} {
		if got := oauth.ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

// Package oauth keeps the OAuth 2.0 clients of the token server: registering
// them, listing and removing them, and authenticating them with the client
// secret (RFC 6749 §2.3.1).
//
// A client is public (a browser or mobile app that cannot keep a secret; it
// names itself with client_id and proves nothing) or confidential (a server
// that holds a secret). Secrets are 256 random bits generated here, shown once,
// and kept only as a SHA-256 hash: a fast hash is enough for a secret with that
// much entropy, and keeps client authentication cheap on every token request.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/origin"
	"github.com/latchkey/latchkey/store"
)

// MaxIDBytes is the longest client_id accepted.
const MaxIDBytes = 64

// secretPrefix marks latchkey client secrets, so secret scanners can find leaked ones.
const secretPrefix = "lk_cs_"

// hashPrefix names the hash scheme of a stored secret.
const hashPrefix = "sha256:"

// Clients manages OAuth clients. It is safe for concurrent use.
type Clients struct {
	st  store.Clients
	now func() time.Time
}

// New returns Clients kept in st; now is the clock (nil means time.Now).
func New(st store.Clients, now func() time.Time) *Clients {
	if now == nil {
		now = time.Now
	}
	return &Clients{st: st, now: now}
}

// ValidID reports whether id can name a client: 1 to MaxIDBytes characters
// from RFC 3986's unreserved set (letters, digits, "-", ".", "_", "~"), so it
// needs no escaping in a form, a URL or an HTTP Basic header.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDBytes {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return false
		}
	}
	return true
}

// Options are the settings of a client being registered.
type Options struct {
	Name string // a description for operators
	// Confidential gives the client a secret (a server-side application);
	// without it the client is public (a browser or mobile app).
	Confidential bool
	// Origins are the browser origins whose pages may call the OAuth
	// endpoints as this client, each exactly as a browser sends it in the
	// Origin header ("https://app.example.com", "http://localhost:5173").
	Origins []string
	// DPoPRequired refuses the client's token requests without a DPoP proof.
	DPoPRequired bool
}

// Add registers a client. A confidential client gets a new secret, returned
// here and never again; a public client gets none (""). ErrInvalidRequest for
// a malformed id or origin, and for a taken id.
func (c *Clients) Add(ctx context.Context, id string, o Options) (store.Client, string, error) {
	if !ValidID(id) {
		return store.Client{}, "", latchkey.ErrInvalidRequest.WithMessage(fmt.Sprintf(
			"A client id is 1 to %d characters from A-Z a-z 0-9 - . _ ~.", MaxIDBytes))
	}
	for _, or := range o.Origins {
		if err := origin.Check(or); err != nil {
			return store.Client{}, "", latchkey.ErrInvalidRequest.WithMessage(err.Error())
		}
	}
	cl := store.Client{ID: id, Registration: newRegistration(), Name: o.Name, CreatedAt: c.now(),
		Origins: slices.Compact(slices.Clone(o.Origins)), DPoPRequired: o.DPoPRequired}
	var secret string
	if o.Confidential {
		b := make([]byte, 32)
		rand.Read(b)
		secret = secretPrefix + base64.RawURLEncoding.EncodeToString(b)
		cl.SecretHash = hashSecret(secret)
	}
	err := c.st.CreateClient(ctx, cl)
	if errors.Is(err, store.ErrExists) {
		return store.Client{}, "", latchkey.ErrInvalidRequest.WithMessage("A client with this id exists already.")
	}
	if err != nil {
		return store.Client{}, "", latchkey.ErrUnavailable.WithCause(err)
	}
	return cl, secret, nil
}

// Ensure registers the public client id unless a client of that id exists
// (public or not); it reports whether it registered one.
func (c *Clients) Ensure(ctx context.Context, id, name string) (bool, error) {
	_, _, err := c.Add(ctx, id, Options{Name: name})
	if errors.Is(err, latchkey.ErrInvalidRequest) && ValidID(id) {
		return false, nil
	}
	return err == nil, err
}

// List returns every client, ordered by id.
func (c *Clients) List(ctx context.Context) ([]store.Client, error) {
	cs, err := c.st.ListClients(ctx)
	if err != nil {
		return nil, latchkey.ErrUnavailable.WithCause(err)
	}
	return cs, nil
}

// Remove deletes a client: from then on it cannot authenticate, so its refresh
// tokens stop working and introspection shows its tokens inactive; its access
// tokens expire on their own. A client registered later under the same id is
// a new client: sessions begun before its registration are not its own.
// ErrNotFound if there is no such client.
func (c *Clients) Remove(ctx context.Context, id string) error {
	if !ValidID(id) {
		return latchkey.ErrNotFound.WithMessage("No such client.")
	}
	err := c.st.DeleteClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return latchkey.ErrNotFound.WithMessage("No such client.")
	}
	if err != nil {
		return latchkey.ErrUnavailable.WithCause(err)
	}
	return nil
}

// Registration returns the client id as registered now, or ErrNotFound.
func (c *Clients) Registration(ctx context.Context, id string) (store.Client, error) {
	if !ValidID(id) {
		return store.Client{}, latchkey.ErrNotFound.WithMessage("No such client.")
	}
	cl, err := c.st.Client(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Client{}, latchkey.ErrNotFound.WithMessage("No such client.")
	}
	if err != nil {
		return store.Client{}, latchkey.ErrUnavailable.WithCause(err)
	}
	return cl, nil
}

// Authenticate returns the client id, proven by secret. A public client
// proves nothing and must present no secret; a confidential client must
// present its own. Anything else, an unknown id included, is
// ErrInvalidClient; secrets are compared in constant time.
func (c *Clients) Authenticate(ctx context.Context, id, secret string) (store.Client, error) {
	if !ValidID(id) {
		return store.Client{}, latchkey.ErrInvalidClient
	}
	cl, err := c.st.Client(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Client{}, latchkey.ErrInvalidClient
	}
	if err != nil {
		return store.Client{}, latchkey.ErrUnavailable.WithCause(err)
	}
	if cl.Public() {
		if secret != "" {
			return store.Client{}, latchkey.ErrInvalidClient.WithMessage("A public client has no secret.")
		}
		return cl, nil
	}
	if secret == "" {
		return store.Client{}, latchkey.ErrInvalidClient.WithMessage("This client must authenticate with its secret (HTTP Basic).")
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(cl.SecretHash)) != 1 {
		return store.Client{}, latchkey.ErrInvalidClient
	}
	return cl, nil
}

// newRegistration is the opaque identity of one registration of a client:
// 128 random bits, so a client removed and added again under the same id,
// even within the same millisecond, is another client to its old sessions.
func newRegistration() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is the stored form of a client secret.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hashPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

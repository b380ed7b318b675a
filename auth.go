package latchkey

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/refreshtoken"
	"github.com/latchkey/latchkey/store"
)

// Auth issues, refreshes, verifies and revokes tokens. It is safe for concurrent
// use; create one per process with New and Close it on shutdown.
//
// Its methods are grouped by concern, one file each: issuing (Login),
// refreshing (Refresh), verifying (Verify, Inspect), ending sessions (Revoke,
// Logout, RevokeToken), and the background work that follows the store
// (revocations.go).
type Auth struct {
	cfg     Config
	secret  []byte
	st      store.Store
	ring    *keys.Ring
	codec   *refreshtoken.Codec
	revoked *revocations
	cache   *verified

	reloadMu   sync.Mutex
	lastReload time.Time

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// The HKDF labels of the keys latchkey derives from the deployment secret for
// itself. DeriveKey refuses them, so no application key can equal one.
const (
	labelSealing = "key sealing v1"
	labelMAC     = "refresh token mac v1"
)

// New checks cfg, loads (or creates) the signing keys and starts following the
// revocation feed. It fails on a configuration mistake or an unreachable store.
func New(ctx context.Context, cfg Config) (*Auth, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	sealKey, err := derive(cfg.Secret, labelSealing)
	if err != nil {
		return nil, err
	}
	macKey, err := derive(cfg.Secret, labelMAC)
	if err != nil {
		return nil, err
	}
	codec, err := refreshtoken.New(macKey)
	if err != nil {
		return nil, err
	}
	ring, err := keys.Open(ctx, keys.Config{
		Store:         cfg.Store,
		EncryptionKey: sealKey,
		Algorithm:     cfg.SigningAlg,
		// A node may sign with a just-retired key until it next reloads the
		// ring, so the key stays published that much longer.
		Retain:   retain(cfg),
		Now:      cfg.Now,
		ReadOnly: cfg.AdminTool,
	})
	if err != nil {
		return nil, fmt.Errorf("latchkey: signing keys: %w", err)
	}
	a := &Auth{
		cfg:     cfg,
		secret:  cfg.Secret,
		st:      cfg.Store,
		ring:    ring,
		codec:   codec,
		revoked: newRevocations(),
		cache:   newVerified(),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	a.cfg.Secret = nil // Config() hands cfg out; only DeriveKey uses the secret
	if cfg.Observer != nil {
		a.st = observedStore{Store: cfg.Store, a: a}
	}
	if err := a.syncRevocations(ctx); err != nil {
		return nil, fmt.Errorf("latchkey: revocation feed: %w", err)
	}
	go a.follow()
	return a, nil
}

// retain is how long a retired signing key stays published: until the last
// access token it signed has expired, allowing for nodes that still sign with
// it until their next reload — and with binding, for as long as such a token
// may be presented with the session's next refresh.
func retain(cfg Config) time.Duration {
	d := cfg.AccessTTL + cfg.Leeway + keyReloadInterval + time.Minute
	if cfg.BindAccess {
		d = max(d, cfg.RefreshTTL+cfg.AccessTTL+cfg.Leeway)
	}
	return d
}

// derive is the one place a key comes from the deployment secret: HKDF-SHA256
// with a label per purpose.
func derive(secret []byte, label string) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, "latchkey "+label, 32)
}

// DeriveKey returns a 32-byte key for purpose, derived from the deployment
// secret (HKDF-SHA256), so that every node of a deployment derives the same
// one and a different purpose gets an independent key. httpauth derives its
// CSRF key this way. The purposes latchkey keeps for itself (sealing signing
// keys, authenticating refresh tokens) are refused.
func (a *Auth) DeriveKey(purpose string) ([]byte, error) {
	if purpose == "" || purpose == labelSealing || purpose == labelMAC {
		return nil, errors.New("latchkey: DeriveKey: purpose is empty or reserved")
	}
	return derive(a.secret, purpose)
}

// Close stops the background work. It does not close the store.
func (a *Auth) Close() error {
	a.once.Do(func() { close(a.stop) })
	<-a.done
	return nil
}

// Config returns the configuration in effect, defaults filled in, without the
// secret.
func (a *Auth) Config() Config { return a.cfg }

// Keys returns the signing key ring (JWKS, rotation, key listing).
func (a *Auth) Keys() *keys.Ring { return a.ring }

// JWKS returns the public signing keys as a JSON Web Key Set.
func (a *Auth) JWKS() []byte { return a.ring.JWKS() }

// Ping reports whether the store is reachable.
func (a *Auth) Ping(ctx context.Context) error { return a.st.Ping(ctx) }

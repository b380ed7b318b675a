package latchkey

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/store"
)

// Defaults of the Config durations.
const (
	DefaultAccessTTL       = 15 * time.Minute
	DefaultRefreshTTL      = 30 * 24 * time.Hour
	DefaultSessionLifetime = 90 * 24 * time.Hour
	DefaultReuseGrace      = 10 * time.Second
	DefaultRevocationDelay = time.Second
	// DefaultMaxSessions is the number of live sessions a user may have;
	// a login beyond it ends the least recently used.
	DefaultMaxSessions = 100
	// ExpiredRetention is how long expired and revoked sessions are remembered,
	// so that their tokens are answered "expired" or "revoked", not "invalid".
	ExpiredRetention = 24 * time.Hour
)

// Config configures an Auth. The zero value of every field but Store and Secret
// is a safe default.
type Config struct {
	// Store keeps sessions, revocations and signing keys: the core contract
	// only (accounts and OAuth clients are the server's, not the library's).
	// Required.
	Store store.Store
	// Secret is the deployment secret: at least 32 random bytes (see ParseSecret).
	// Signing keys are sealed and refresh tokens authenticated under keys derived
	// from it, so every node of a deployment must share it. Required.
	Secret []byte

	// Issuer is the "iss" of access tokens; default "latchkey".
	Issuer string
	// Audience is the "aud" of access tokens; default "latchkey".
	Audience string
	// SigningAlg is one of keys.Algorithms(): EdDSA (default), ES256, RS256 or HS256.
	SigningAlg string

	// AccessTTL is the access token lifetime; default 15 minutes.
	AccessTTL time.Duration
	// RefreshTTL is the refresh idle timeout, sliding with each refresh unless
	// LockedExpiry is set; default 30 days.
	RefreshTTL time.Duration
	// SessionLifetime is the absolute session lifetime, which never slides;
	// default 90 days.
	SessionLifetime time.Duration
	// LockedExpiry fixes the refresh expiry at login instead of sliding it.
	LockedExpiry bool
	// ReuseGrace is the window in which the token just rotated away still yields
	// the same successor (two tabs, a lost response); default 10 s. Negative
	// disables it.
	ReuseGrace time.Duration
	// BindAccess makes a refresh also require the session's access token.
	BindAccess bool
	// RevocationDelay bounds how long a revoked session's access tokens are
	// still accepted by Verify on any node sharing the store; default 1 s.
	RevocationDelay time.Duration
	// Leeway is the clock skew tolerated on exp/nbf; default 0.
	Leeway time.Duration

	// AdminTool marks an Auth opened by an administrative command rather than
	// a server: it uses the stored signing keys as they are (its flags may not
	// match the servers'), and creates, promotes or deletes none at start.
	AdminTool bool

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational messages; nil discards them. Nothing secret
	// is ever logged.
	Logger *slog.Logger
	// MaxSessions caps the live sessions of one user: the login beyond it ends
	// the user's least recently used session (reason session_limit). Zero
	// means DefaultMaxSessions; negative means no cap. With a store that
	// offers store.SessionCap the cap holds atomically under concurrent
	// logins on every node; otherwise it is enforced just after each login.
	MaxSessions int
	// Observer is told of every login, refresh, verification, revocation,
	// detected reuse and store call, for metrics and audit trails (see
	// package metrics and package audit); nil tells nobody.
	Observer Observer
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("latchkey: Config.Store is required")
	}
	if err := checkSecret(c.Secret); err != nil {
		return err
	}
	if c.Issuer == "" {
		c.Issuer = "latchkey"
	}
	if c.Audience == "" {
		c.Audience = "latchkey"
	}
	algs := keys.Algorithms()
	if c.SigningAlg == "" {
		c.SigningAlg = algs[0]
	}
	if !slices.Contains(algs, c.SigningAlg) {
		return fmt.Errorf("latchkey: signing algorithm %q is not one of %s", c.SigningAlg, strings.Join(algs, ", "))
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d == 0 {
			*d = v
		}
		if *d < 0 {
			return fmt.Errorf("latchkey: %s must be positive, got %v", name, *d)
		}
		return nil
	}
	for _, f := range []struct {
		d    *time.Duration
		v    time.Duration
		name string
	}{
		{&c.AccessTTL, DefaultAccessTTL, "AccessTTL"},
		{&c.RefreshTTL, DefaultRefreshTTL, "RefreshTTL"},
		{&c.SessionLifetime, DefaultSessionLifetime, "SessionLifetime"},
		{&c.RevocationDelay, DefaultRevocationDelay, "RevocationDelay"},
	} {
		if err := def(f.d, f.v, f.name); err != nil {
			return err
		}
	}
	if c.AccessTTL < time.Second {
		return fmt.Errorf("latchkey: AccessTTL %v is shorter than a second", c.AccessTTL)
	}
	if c.RevocationDelay < 10*time.Millisecond {
		return fmt.Errorf("latchkey: RevocationDelay %v is shorter than 10ms", c.RevocationDelay)
	}
	switch {
	case c.ReuseGrace == 0:
		c.ReuseGrace = DefaultReuseGrace
	case c.ReuseGrace < 0:
		c.ReuseGrace = 0
	}
	if c.ReuseGrace > time.Minute {
		return fmt.Errorf("latchkey: ReuseGrace %v is longer than a minute; a long window weakens reuse detection", c.ReuseGrace)
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		return fmt.Errorf("latchkey: Leeway %v is outside 0..5m", c.Leeway)
	}
	switch {
	case c.MaxSessions == 0:
		c.MaxSessions = DefaultMaxSessions
	case c.MaxSessions < 0:
		c.MaxSessions = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// MinSecretLen is the least number of bytes a deployment secret must have.
const MinSecretLen = 32

// ParseSecret decodes a deployment secret given as base64 (standard or URL
// alphabet, padded or not) of at least 32 random bytes, e.g. the output of
// `openssl rand -base64 32`. Anything shorter, or so repetitive that it cannot be
// random, is refused.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, checkSecret(b)
		}
	}
	return nil, errors.New("latchkey: the secret must be base64 of at least 32 random bytes (e.g. `openssl rand -base64 32`)")
}

func checkSecret(b []byte) error {
	if len(b) < MinSecretLen {
		return fmt.Errorf("latchkey: the secret has %d bytes; at least %d random bytes are required", len(b), MinSecretLen)
	}
	// 32 random bytes almost always have more than 20 distinct values; a
	// repeated character or a short word typed over and over does not.
	var seen [256]bool
	distinct := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
	}
	if distinct < 16 {
		return errors.New("latchkey: the secret is too repetitive to be random")
	}
	return nil
}

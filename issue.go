package latchkey

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
	"github.com/latchkey/latchkey/internal/text"
	"github.com/latchkey/latchkey/refreshtoken"
	"github.com/latchkey/latchkey/store"
)

// Tokens is a token pair as the HTTP API returns it; times are Unix seconds.
type Tokens struct {
	UserID           string `json:"uuid"`
	SessionID        string `json:"session_id"`
	TokenType        string `json:"token_type"`
	AccessToken      string `json:"access_token"`
	ExpiresIn        int64  `json:"expires_in"`
	ExpiresAt        int64  `json:"expires_at"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresAt int64  `json:"refresh_expires_at"`
}

// Client is the OAuth 2.0 client a session is issued to. The zero value is
// first-party: the application's own login.
type Client struct {
	// ID is the client_id, carried in the session's access tokens.
	ID string
	// Registration is the opaque identity of the client's current
	// registration (store.Client.Registration). A session refreshes, and is
	// revoked, only for the registration it was issued to: it is compared for
	// equality and nothing else.
	Registration string
}

// LoginOptions describes a new session.
type LoginOptions struct {
	// Fresh marks the access token as coming straight from a sign-in (a
	// password, a provider's ID token, any grant),
	// which RequireFresh guards demand.
	Fresh bool
	// UserAgent and IP are recorded for the session list.
	UserAgent, IP string
	// Client is the OAuth client the session is issued to; zero for
	// first-party. ID and Registration are both set or both empty.
	Client Client
	// JKT binds the session to a DPoP key (RFC 9449): the RFC 7638 SHA-256
	// thumbprint of the key whose proof the caller has verified. Every
	// refresh of the session must then prove that same key, and its access
	// tokens are DPoP tokens (cnf.jkt). Empty: Bearer tokens.
	JKT string
}

// maxUserIDBytes bounds a user id: it is carried in every access token.
const maxUserIDBytes = 255

// OAuthScope is the one scope latchkey grants an OAuth client: the whole
// account, as first-party access tokens have it. The access tokens of an OAuth
// client's session carry it in their scope claim (RFC 9068 §2.2.3).
const OAuthScope = "account"

// Login starts a new session for userID and returns its first token pair. The
// caller has authenticated the user.
func (a *Auth) Login(ctx context.Context, userID string, opt LoginOptions) (*Tokens, error) {
	if userID == "" || len(userID) > maxUserIDBytes || text.Clean(userID, maxUserIDBytes) != userID {
		return nil, ErrInvalidRequest.WithMessage("A user id is 1 to 255 bytes of UTF-8 text without NUL.")
	}
	if (opt.Client.ID == "") != (opt.Client.Registration == "") {
		return nil, ErrInvalidRequest.WithMessage("An OAuth client needs both its id and its registration.")
	}
	now := a.cfg.Now()
	expires := now.Add(a.cfg.SessionLifetime)
	s := store.Session{
		ID:                 refreshtoken.NewSessionID().String(),
		UserID:             userID,
		RotatedAt:          now,
		CreatedAt:          now,
		LastUsedAt:         now,
		IdleExpiresAt:      earliest(now.Add(a.cfg.RefreshTTL), expires),
		ExpiresAt:          expires,
		UserAgent:          text.Clean(opt.UserAgent, 256),
		IP:                 text.Clean(opt.IP, 64),
		ClientID:           opt.Client.ID,
		ClientRegistration: opt.Client.Registration,
		JKT:                opt.JKT,
	}
	if err := a.createSession(ctx, s); err != nil {
		return nil, unavailable(err)
	}
	a.observe(ctx, Event{Kind: EventLogin, At: now, UserID: userID, SessionID: s.ID, ClientID: s.ClientID, IP: s.IP, UserAgent: s.UserAgent})
	return a.issue(s, opt.Fresh, now)
}

// issue mints an access token and the refresh token of the session's current
// generation.
func (a *Auth) issue(s store.Session, fresh bool, now time.Time) (*Tokens, error) {
	sid, err := refreshtoken.ParseSessionID(s.ID)
	if err != nil {
		return nil, ErrInvalidToken.WithCause(err)
	}
	// exp is in whole seconds on the wire; round up so a token lives at least
	// AccessTTL (truncating would shorten it by up to a second).
	exp := earliest(ceilSecond(now.Add(a.cfg.AccessTTL)), s.ExpiresAt)
	key := a.ring.SigningKey()
	if key == nil {
		return nil, ErrUnavailable.WithMessage("No signing key is available yet.")
	}
	at, err := accesstoken.Sign(key, accesstoken.Claims{
		Issuer:    a.cfg.Issuer,
		Subject:   s.UserID,
		Audience:  a.cfg.Audience,
		ExpiresAt: exp,
		IssuedAt:  now,
		ID:        randomID(),
		SessionID: s.ID,
		Fresh:     fresh,
		ClientID:  s.ClientID,
		Scope:     clientScope(s.ClientID),
		JKT:       s.JKT,
	})
	if err != nil {
		return nil, ErrInternal.WithCause(err)
	}
	typ := "Bearer"
	if s.JKT != "" {
		typ = "DPoP" // RFC 9449 §5
	}
	return &Tokens{
		UserID:           s.UserID,
		SessionID:        s.ID,
		TokenType:        typ,
		AccessToken:      at,
		ExpiresIn:        int64(exp.Sub(now) / time.Second),
		ExpiresAt:        exp.Unix(),
		RefreshToken:     a.codec.Encode(refreshtoken.Token{Session: sid, Generation: s.Generation}),
		RefreshExpiresAt: s.IdleExpiresAt.Unix(),
	}, nil
}

// clientScope is the scope claim of a session of clientID: none for
// first-party sessions, which are not OAuth grants.
func clientScope(clientID string) string {
	if clientID == "" {
		return ""
	}
	return OAuthScope
}

func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// createSession stores s under the per-user cap: atomically with a store
// that offers store.SessionCap, otherwise by ending the least recently used
// sessions just after.
func (a *Auth) createSession(ctx context.Context, s store.Session) error {
	max := a.cfg.MaxSessions
	if max <= 0 {
		return a.st.CreateSession(ctx, s)
	}
	var ended []string
	if capper, ok := a.cfg.Store.(store.SessionCap); ok {
		var err error
		if ended, err = capper.CreateSessionCapped(ctx, s, max, string(ReasonSessionLimit), a.revocationUntil(s.CreatedAt)); err != nil {
			return err
		}
		for _, sid := range ended {
			a.revoked.add(store.Revocation{SessionID: sid, At: s.CreatedAt, Until: a.revocationUntil(s.CreatedAt)})
		}
	} else {
		if err := a.st.CreateSession(ctx, s); err != nil {
			return err
		}
		ss, err := a.st.UserSessions(ctx, s.UserID)
		if err != nil {
			return nil // the session exists; the cap is enforced at the next login
		}
		ended = leastRecentlyUsed(ss, max, s.ID, s.CreatedAt)
		for _, sid := range ended {
			if err := a.revokeSession(ctx, s.UserID, sid, ReasonSessionLimit, s.CreatedAt); err != nil && !errors.Is(err, store.ErrNotFound) {
				a.cfg.Logger.Warn("ending a session beyond the cap failed", "session", sid, "err", err)
			}
		}
		return nil
	}
	for _, sid := range ended {
		a.observe(ctx, Event{Kind: EventRevoke, At: s.CreatedAt, Reason: ReasonSessionLimit, Actor: ReasonSessionLimit.actor(), UserID: s.UserID, SessionID: sid})
	}
	return nil
}

// leastRecentlyUsed lists the live sessions of ss but keep beyond the
// max-1 most recently used (keep, the new one, makes max), at now. Only
// sessions created before now are candidates: two concurrent logins must not
// end each other's new sessions (the cap then catches up at a later login).
func leastRecentlyUsed(ss []store.Session, max int, keep string, now time.Time) []string {
	var live []store.Session
	for _, s := range ss {
		if s.ID != keep && s.Live(now) && s.CreatedAt.Before(now) {
			live = append(live, s)
		}
	}
	if len(live) <= max-1 {
		return nil
	}
	slices.SortFunc(live, func(x, y store.Session) int {
		if c := x.LastUsedAt.Compare(y.LastUsedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	var out []string
	for _, s := range live[:len(live)-(max-1)] {
		out = append(out, s.ID)
	}
	return out
}

package latchkey

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
	"github.com/latchkey/latchkey/refreshtoken"
)

// Principal is the verified caller of a request: who, in which session, with
// which access token.
type Principal struct {
	UserID    string // "sub"
	SessionID string // "sid"
	TokenID   string // "jti"
	Fresh     bool   // issued straight after a password login
	ClientID  string // "client_id": the OAuth client of the session; empty for first-party
	// JKT is "cnf.jkt": the thumbprint of the DPoP key the token is bound to
	// (RFC 9449); empty for a Bearer token. Verify checks the token, not the
	// proof: httpauth's guards check the proof and set SenderConstrained.
	JKT string
	// SenderConstrained reports that the request proved possession of the
	// token's DPoP key (set by httpauth, never by Verify).
	SenderConstrained bool
	IssuedAt          time.Time
	ExpiresAt         time.Time
}

// Verify checks an access token: signature under a published key with the
// algorithm pinned to that key, type at+jwt, issuer, audience, expiry, and that
// neither the token nor its session has been revoked.
func (a *Auth) Verify(ctx context.Context, token string) (Principal, error) {
	p, err := a.verify(ctx, token)
	if a.cfg.Observer != nil {
		a.observe(ctx, Event{Kind: EventVerify, Outcome: outcome(err), UserID: p.UserID, SessionID: p.SessionID, ClientID: p.ClientID})
	}
	return p, err
}

func (a *Auth) verify(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrMissingToken
	}
	if refreshtoken.Looks(token) {
		return Principal{}, errRefreshForAccess
	}
	c, hit := a.cache.get(token, a.cfg.Now(), a.cfg.Leeway)
	if !hit {
		var err error
		if c, err = a.verifyJWT(ctx, token); err != nil {
			if errors.Is(err, accesstoken.ErrUnknownKey) && a.expiredUnverified(token) {
				// Its key has retired since: still "expired", so clients refresh
				// rather than sign in again.
				return Principal{}, errAccessExpired.WithCause(err)
			}
			return Principal{}, a.accessError(err)
		}
		a.cache.put(token, c)
	}
	if a.revoked.has(c.SessionID, c.ID) {
		return Principal{}, ErrTokenRevoked
	}
	return Principal{
		UserID:    c.Subject,
		SessionID: c.SessionID,
		TokenID:   c.ID,
		Fresh:     c.Fresh,
		ClientID:  c.ClientID,
		JKT:       c.JKT,
		IssuedAt:  c.IssuedAt,
		ExpiresAt: c.ExpiresAt,
	}, nil
}

func (a *Auth) verifyJWT(ctx context.Context, token string) (accesstoken.Claims, error) {
	v := accesstoken.Validation{Issuer: a.cfg.Issuer, Audience: a.cfg.Audience, Now: a.cfg.Now(), Leeway: a.cfg.Leeway}
	c, err := accesstoken.Verify(token, a.ring, v)
	if errors.Is(err, accesstoken.ErrUnknownKey) && a.reloadKeys(ctx) {
		c, err = accesstoken.Verify(token, a.ring, v)
	}
	return c, err
}

// reloadKeys re-reads the key ring when a token names a key this node has not
// seen (another node rotated), at most once a second.
func (a *Auth) reloadKeys(ctx context.Context) bool {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if now := time.Now(); now.Sub(a.lastReload) >= time.Second {
		a.lastReload = now
		if err := a.ring.Reload(ctx); err != nil {
			a.cfg.Logger.Warn("reloading signing keys failed", "err", err)
			return false
		}
		return true
	}
	return false
}

// expiredUnverified reports whether token's unverified exp has passed.
func (a *Auth) expiredUnverified(token string) bool {
	exp, ok := accesstoken.UnverifiedExpiry(token)
	return ok && !a.cfg.Now().Before(exp.Add(a.cfg.Leeway))
}

// accessError is the public error for an access token that failed to verify.
func (a *Auth) accessError(err error) *Error {
	switch {
	case errors.Is(err, accesstoken.ErrExpired):
		return errAccessExpired.WithCause(err)
	case errors.Is(err, accesstoken.ErrWrongType):
		return errNotAccess.WithCause(err)
	default:
		return errAccessInvalid.WithCause(err)
	}
}

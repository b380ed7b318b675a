package latchkey

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/refreshtoken"
	"github.com/latchkey/latchkey/store"
)

// Token types that Inspect tells apart, named as RFC 7009 and RFC 7662 name them.
const (
	AccessTokenType  = "access_token"
	RefreshTokenType = "refresh_token"
)

// TokenInfo is what Inspect learns of an active token.
type TokenInfo struct {
	Type      string // AccessTokenType or RefreshTokenType
	UserID    string
	SessionID string
	ClientID  string // the OAuth client of the session; empty for first-party
	Scope     string // OAuthScope for an OAuth client's token; empty for first-party
	TokenID   string // "jti" of an access token; empty for a refresh token
	Fresh     bool   // an access token issued straight after a password login
	// IssuedAt is when the access token was signed, or when the session reached
	// the refresh token's generation.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// SessionCreatedAt is when the session began: a client registered after
	// it (removed and added again) must not be shown it.
	SessionCreatedAt time.Time
}

// Inspect reports whether token is active now and what it names, for token
// introspection (RFC 7662). An access token is active when Verify accepts it
// and its session is live in the store at this moment; a refresh token when it
// is its session's current generation and the session is live. Inspect changes
// nothing: an old refresh token shown here is answered, not treated as reuse.
//
// A token that is not active returns an *Error saying why (invalid_token,
// token_expired, token_revoked or session_expired); a store failure returns
// unavailable.
func (a *Auth) Inspect(ctx context.Context, token string) (TokenInfo, error) {
	if token == "" {
		return TokenInfo{}, ErrMissingToken
	}
	if refreshtoken.Looks(token) {
		return a.inspectRefresh(ctx, token)
	}
	p, err := a.Verify(ctx, token)
	if err != nil {
		return TokenInfo{}, err
	}
	s, err := a.st.Session(ctx, p.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return TokenInfo{}, ErrTokenRevoked
	}
	if err != nil {
		return TokenInfo{}, unavailable(err)
	}
	if s.Revoked() {
		return TokenInfo{}, ErrTokenRevoked
	}
	return TokenInfo{Type: AccessTokenType, UserID: p.UserID, SessionID: p.SessionID, ClientID: p.ClientID,
		Scope: clientScope(p.ClientID), TokenID: p.TokenID, Fresh: p.Fresh, IssuedAt: p.IssuedAt, ExpiresAt: p.ExpiresAt, SessionCreatedAt: s.CreatedAt}, nil
}

func (a *Auth) inspectRefresh(ctx context.Context, token string) (TokenInfo, error) {
	tok, err := a.codec.Decode(token)
	if err != nil {
		return TokenInfo{}, ErrInvalidToken.WithCause(err)
	}
	s, err := a.st.Session(ctx, tok.Session.String())
	if errors.Is(err, store.ErrNotFound) {
		return TokenInfo{}, ErrInvalidToken.WithMessage("The refresh token's session is unknown.")
	}
	if err != nil {
		return TokenInfo{}, unavailable(err)
	}
	switch now := a.cfg.Now(); {
	case s.Revoked():
		return TokenInfo{}, ErrTokenRevoked
	case !live(s, now):
		return TokenInfo{}, ErrSessionExpired
	case tok.Generation != s.Generation:
		return TokenInfo{}, ErrInvalidToken.WithMessage("The refresh token has been rotated.")
	}
	return TokenInfo{Type: RefreshTokenType, UserID: s.UserID, SessionID: s.ID, ClientID: s.ClientID,
		Scope: clientScope(s.ClientID), IssuedAt: s.RotatedAt, ExpiresAt: earliest(s.IdleExpiresAt, s.ExpiresAt), SessionCreatedAt: s.CreatedAt}, nil
}

// RevokeToken revokes token on behalf of OAuth client clientID, registered at
// since (RFC 7009): a refresh token, of any generation, revokes its whole
// session (its refresh token at once, its access tokens within the revocation
// delay); an access token is refused from then on. A token that is malformed,
// forged, unknown, expired or already revoked is not an error: there is
// nothing left to revoke. A token of a session that belongs to another client
// (or to no client, or to an earlier registration of this one) is refused with
// ErrUnauthorizedClient and stays valid.
func (a *Auth) RevokeToken(ctx context.Context, token, clientID string, since time.Time) error {
	var sid string
	var access *store.Revocation
	if refreshtoken.Looks(token) {
		tok, err := a.codec.Decode(token)
		if err != nil {
			return nil
		}
		sid = tok.Session.String()
	} else {
		c, err := a.verifyJWT(ctx, token)
		if err != nil {
			return nil // forged, malformed, or expired: nothing to revoke
		}
		sid = c.SessionID
		access = &store.Revocation{TokenID: c.ID, At: a.cfg.Now(), Until: c.ExpiresAt.Add(a.cfg.Leeway + time.Second)}
	}
	s, err := a.st.Session(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return unavailable(err)
	}
	if !belongs(s, clientID, since) {
		return ErrUnauthorizedClient
	}
	if s.Revoked() {
		return nil
	}
	if access == nil {
		err = a.revokeSession(ctx, s.ID, ReasonLogout, a.cfg.Now())
	} else if err = a.st.RevokeToken(ctx, *access); err == nil {
		a.revoked.add(*access)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return unavailable(err)
	}
	return nil
}

package latchkey

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
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
	Fresh     bool   // an access token issued straight after a sign-in
	// IssuedAt is when the access token was signed, or when the session reached
	// the refresh token's generation.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// ClientRegistration is the registration of the client the session was
	// issued to (Client.Registration): a token of an earlier registration of
	// the same client id (removed and added again) is not the client's.
	ClientRegistration string
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
		Scope: clientScope(p.ClientID), TokenID: p.TokenID, Fresh: p.Fresh, IssuedAt: p.IssuedAt, ExpiresAt: p.ExpiresAt,
		ClientRegistration: s.ClientRegistration}, nil
}

func (a *Auth) inspectRefresh(ctx context.Context, token string) (TokenInfo, error) {
	tok, err := a.codec.Decode(token)
	if err != nil {
		return TokenInfo{}, errRefreshMalformed.WithCause(err)
	}
	s, err := a.st.Session(ctx, tok.Session.String())
	if err != nil {
		return TokenInfo{}, sessionStoreError(err)
	}
	switch now := a.cfg.Now(); {
	case s.Revoked():
		return TokenInfo{}, ErrTokenRevoked
	case !s.Live(now):
		return TokenInfo{}, ErrSessionExpired
	case tok.Generation != s.Generation:
		return TokenInfo{}, ErrInvalidToken.WithMessage("The refresh token has been rotated.")
	}
	return TokenInfo{Type: RefreshTokenType, UserID: s.UserID, SessionID: s.ID, ClientID: s.ClientID,
		Scope: clientScope(s.ClientID), IssuedAt: s.RotatedAt, ExpiresAt: s.EndedAt(), ClientRegistration: s.ClientRegistration}, nil
}

// RevokeToken revokes token on behalf of OAuth client (RFC 7009): a refresh
// token, of any generation, revokes its whole session (its refresh token at
// once, its access tokens within the revocation delay); an access token is
// refused from then on. A token that is malformed, forged, unknown, expired or
// already revoked is not an error: there is nothing left to revoke. A token of
// a session that belongs to another client (or to no client, or to an earlier
// registration of this one) is refused with ErrUnauthorizedClient and stays
// valid.
func (a *Auth) RevokeToken(ctx context.Context, token string, client Client) error {
	var sid string
	var access *accesstoken.Claims
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
		sid, access = c.SessionID, &c
	}
	s, err := a.st.Session(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return unavailable(err)
	}
	if client.Registration == "" || s.ClientRegistration != client.Registration {
		return ErrUnauthorizedClient
	}
	if s.Revoked() {
		return nil
	}
	if access == nil {
		err = a.revokeSession(ctx, s.UserID, s.ID, ReasonLogout, a.cfg.Now())
	} else {
		err = a.revokeAccess(ctx, *access, a.cfg.Now())
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return unavailable(err)
	}
	return nil
}

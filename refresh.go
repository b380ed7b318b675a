package latchkey

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
	"github.com/latchkey/latchkey/refreshtoken"
	"github.com/latchkey/latchkey/store"
)

// RefreshOptions carries what a refresh request presents besides the refresh token.
type RefreshOptions struct {
	// AccessToken is the session's access token (expired is fine). It is required
	// when Config.BindAccess is set; when present it must verify and belong to the
	// same session, and it is revoked once the new pair is issued.
	AccessToken string
	// Client is the OAuth client presenting the token; zero for first-party.
	// The session must have been issued to this very registration.
	Client Client
	// KeepAccessToken leaves the presented access token valid: a browser's
	// access cookie is shared by every request a page makes at once, and
	// revoking it would fail the others.
	KeepAccessToken bool
	// JKT is the thumbprint of the DPoP key whose proof, verified by the
	// caller, came with the refresh; empty without a proof. A session bound
	// to a key refreshes only with that key's; a refusal for want of it is
	// never taken as reuse, so a thief without the key cannot end the
	// owner's session by replaying an old token.
	JKT string
}

// Refresh exchanges a refresh token for a new pair.
//
// The token's checksum and MAC are checked before anything is read or written.
// The current generation is rotated with one compare-and-swap; the generation
// just rotated away, presented again within the grace window, gets the same new
// refresh token (and a new access token) without a second rotation; any older
// generation revokes the whole session and fails with ErrRefreshReused.
func (a *Auth) Refresh(ctx context.Context, refreshToken string, opt RefreshOptions) (*Tokens, error) {
	t, grace, err := a.refresh(ctx, refreshToken, opt)
	if a.cfg.Observer != nil {
		e := Event{Kind: EventRefresh, Outcome: outcome(err), ClientID: opt.Client.ID}
		if grace {
			e.Outcome = OutcomeGrace
		} else if err == nil {
			e.Outcome = OutcomeRotated
		}
		if t != nil {
			e.UserID, e.SessionID = t.UserID, t.SessionID
		}
		a.observe(ctx, e)
	}
	return t, err
}

// refresh is Refresh; grace reports an answer from the grace window.
func (a *Auth) refresh(ctx context.Context, refreshToken string, opt RefreshOptions) (t *Tokens, grace bool, err error) {
	tok, err := a.decodeRefresh(refreshToken)
	if err != nil {
		return nil, false, err
	}
	sid := tok.Session.String()
	bound, err := a.checkBinding(ctx, sid, opt.AccessToken)
	if err != nil {
		return nil, false, err
	}
	if opt.KeepAccessToken {
		bound = nil // checked, but not revoked
	}
	// The common case first: the token is its session's current generation.
	// One conditional write checks that (and the client, revocation and expiry)
	// and rotates; only when it refuses is the session read to say why.
	now := a.cfg.Now()
	next, err := a.st.RotateSession(ctx, sid, a.rotation(tok.Generation, opt.Client, opt.JKT, now))
	if err == nil {
		t, err := a.finishRefresh(ctx, next, bound, now)
		return t, false, err
	}
	if !errors.Is(err, store.ErrConflict) {
		return nil, false, sessionStoreError(err)
	}
	return a.settle(ctx, tok, opt, bound)
}

// decodeRefresh checks a presented refresh token's form, checksum and MAC.
func (a *Auth) decodeRefresh(token string) (refreshtoken.Token, error) {
	if token == "" {
		return refreshtoken.Token{}, errRefreshMissing
	}
	tok, err := a.codec.Decode(token)
	if err != nil {
		if looksLikeJWT(token) {
			return refreshtoken.Token{}, errAccessForRefresh
		}
		return refreshtoken.Token{}, errRefreshMalformed.WithCause(err)
	}
	return tok, nil
}

// settle answers a refresh whose swap was refused: it reads the session to
// say why, answers a grace refresh with the successor already made, ends the
// session on reuse, or rotates again if the session moved on in between.
func (a *Auth) settle(ctx context.Context, tok refreshtoken.Token, opt RefreshOptions, bound *accesstoken.Claims) (t *Tokens, grace bool, err error) {
	sid := tok.Session.String()
	for attempt := 0; ; attempt++ {
		now := a.cfg.Now()
		s, err := a.st.Session(ctx, sid)
		if err != nil {
			return nil, false, sessionStoreError(err)
		}
		if err := refusal(s, tok, opt, now); err != nil {
			return nil, false, err
		}
		switch refreshtoken.Classify(tok.Generation, s.Generation, s.RotatedAt, now, a.cfg.ReuseGrace) {
		case refreshtoken.Rotate:
			next, err := a.st.RotateSession(ctx, sid, a.rotation(s.Generation, opt.Client, s.JKT, now))
			if errors.Is(err, store.ErrConflict) && attempt < 3 {
				continue // someone rotated or revoked it first: look again
			}
			if err != nil {
				return nil, false, sessionStoreError(err)
			}
			t, err := a.finishRefresh(ctx, next, bound, now)
			return t, false, err
		case refreshtoken.Grace:
			t, err := a.finishRefresh(ctx, s, bound, now)
			return t, err == nil, err
		case refreshtoken.Reused:
			if err := a.revokeSession(ctx, s.UserID, sid, ReasonReused, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, false, unavailable(err)
			}
			a.cfg.Logger.Warn("refresh token reuse: session revoked", "session", sid, "user", s.UserID,
				"presented_generation", tok.Generation, "current_generation", s.Generation)
			a.observe(ctx, Event{Kind: EventReuse, At: now, Actor: "system", UserID: s.UserID, SessionID: sid, ClientID: s.ClientID,
				Generation: tok.Generation, Current: s.Generation})
			return nil, false, ErrRefreshReused
		default: // Ahead: the store lost a rotation; refuse without changing anything.
			a.cfg.Logger.Warn("refresh token ahead of its session", "session", sid,
				"presented_generation", tok.Generation, "current_generation", s.Generation)
			return nil, false, errRefreshAhead
		}
	}
}

// refusal is why session s cannot be refreshed at now with tok and opt, or
// nil if it can. The client and the DPoP key are checked before anything
// else, reuse included: a refresh without the bound key changes nothing.
func refusal(s store.Session, tok refreshtoken.Token, opt RefreshOptions, now time.Time) error {
	switch {
	case s.ClientRegistration != opt.Client.Registration:
		return errOtherClient
	case s.JKT != "" && opt.JKT == "":
		return errDPoPRequired
	case s.JKT != "" && subtle.ConstantTimeCompare([]byte(s.JKT), []byte(opt.JKT)) != 1:
		return errDPoPOtherKey
	case s.Revoked() && Reason(s.RevokeReason) == ReasonReused && tok.Generation >= s.Generation:
		return errEndedByReplay // the holder of the newest token: tell them why
	case s.Revoked() && Reason(s.RevokeReason) == ReasonReused:
		return ErrRefreshReused
	case s.Revoked():
		return errSessionRevoked
	case !s.Live(now):
		return ErrSessionExpired
	}
	return nil
}

// rotation is the swap of a refresh at now from generation from, for a
// session bound to the DPoP key jkt (or none): the idle expiry slides (capped
// by the store at the session's end) unless it is locked.
func (a *Auth) rotation(from uint64, client Client, jkt string, now time.Time) store.Rotation {
	r := store.Rotation{From: from, At: now, ClientRegistration: client.Registration, JKT: jkt}
	if !a.cfg.LockedExpiry {
		r.IdleExpiresAt = now.Add(a.cfg.RefreshTTL)
	}
	return r
}

// checkBinding verifies the access token presented with a refresh: required
// when binding is on, and when present it must be authentic (expiry aside) and of
// the same session. It returns the verified claims, if any.
func (a *Auth) checkBinding(ctx context.Context, sid, token string) (*accesstoken.Claims, error) {
	if token == "" {
		if a.cfg.BindAccess {
			return nil, errBindingMissing
		}
		return nil, nil
	}
	c, err := a.verifyJWT(ctx, token)
	if errors.Is(err, accesstoken.ErrUnknownKey) && !a.cfg.BindAccess && a.expiredUnverified(token) {
		return nil, nil // optional and long expired (its key is gone): nothing to revoke
	}
	if err != nil && !errors.Is(err, accesstoken.ErrExpired) {
		return nil, a.accessError(err).WithMessage("The access token presented with the refresh token is not valid.")
	}
	if c.SessionID != sid {
		return nil, errBindingOtherSession
	}
	return &c, nil
}

// finishRefresh issues the pair of session s and revokes the access token
// presented with the refresh, if any.
func (a *Auth) finishRefresh(ctx context.Context, s store.Session, bound *accesstoken.Claims, now time.Time) (*Tokens, error) {
	t, err := a.issue(s, false, now)
	if err != nil {
		return nil, err
	}
	if bound != nil && now.Before(bound.ExpiresAt.Add(a.cfg.Leeway)) {
		if err := a.revokeAccess(ctx, *bound, now); err != nil {
			// The new pair is valid and the old access token expires soon anyway;
			// failing the refresh here would strand the client.
			a.cfg.Logger.Warn("revoking the replaced access token failed", "session", s.ID, "err", err)
		}
	}
	return t, nil
}

// SessionOf returns the id of the session a refresh token names, after
// checking its checksum and MAC; it reads no state and changes nothing. Use
// it to bind a check (such as CSRF) to a refresh token before spending it.
func (a *Auth) SessionOf(refreshToken string) (string, error) {
	tok, err := a.codec.Decode(refreshToken)
	if err != nil {
		return "", errRefreshMalformed.WithCause(err)
	}
	return tok.Session.String(), nil
}

// looksLikeJWT reports whether s has the shape of a compact JWS.
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

package latchkey

import (
	"context"
	"errors"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
	"github.com/latchkey/latchkey/refreshtoken"
	"github.com/latchkey/latchkey/store"
)

// Reason is why a session was ended; it is recorded with the session
// (store.Session.RevokeReason) and, for reuse, decides the answer its tokens
// get from then on.
type Reason string

// The reasons latchkey records.
const (
	ReasonLogout          Reason = "logout"           // the user signed out (this session, all, or all others)
	ReasonReused          Reason = "reused"           // an older refresh token of the session was replayed
	ReasonPasswordChanged Reason = "password_changed" // the user changed the password from another session
	ReasonAdmin           Reason = "admin"            // an operator ended it (CLI, a disabled account)
	ReasonSessionLimit    Reason = "session_limit"    // the user's least recently used session, ended by a login beyond MaxSessions
)

// RevokeOptions selects the sessions Revoke ends, and says why.
type RevokeOptions struct {
	// SessionID ends this one session. Together with UserID it ends the
	// session only if it is a live session of that user, and is ErrNotFound
	// otherwise, so a user cannot probe other users' session ids.
	SessionID string
	// UserID, without SessionID, ends every live session of the user.
	UserID string
	// Except, with UserID alone, is a session to leave live (the caller's own).
	Except string
	// Reason is recorded with every session ended. Required.
	Reason Reason
}

// Revoke ends sessions: their refresh tokens stop working at once, and their
// access tokens are refused by Verify on every node within the revocation
// delay. It is the one way sessions end; Logout and RevokeToken build on it.
// Ending one session that does not exist is ErrNotFound; ending one that has
// ended already changes nothing.
func (a *Auth) Revoke(ctx context.Context, opt RevokeOptions) error {
	if opt.Reason == "" || (opt.SessionID == "" && opt.UserID == "") || (opt.SessionID != "" && opt.Except != "") {
		return ErrInvalidRequest.WithMessage("Revoke needs a reason and a session, a user, or both; Except goes with a user alone.")
	}
	if opt.SessionID != "" {
		if _, err := refreshtoken.ParseSessionID(opt.SessionID); err != nil {
			return errNoSuchSession // not the shape of a session id: no store is asked
		}
	}
	now := a.cfg.Now()
	if opt.SessionID == "" {
		return a.revokeUser(ctx, opt.UserID, opt.Except, opt.Reason, now)
	}
	userID := opt.UserID
	if opt.UserID != "" {
		s, err := a.st.Session(ctx, opt.SessionID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (s.UserID != opt.UserID || !s.Live(now))) {
			return errNoSuchSession
		}
		if err != nil {
			return unavailable(err)
		}
	} else if a.cfg.Observer != nil {
		// Only to name the user in the event; the revocation does not need it.
		if s, err := a.st.Session(ctx, opt.SessionID); err == nil {
			userID = s.UserID
		}
	}
	err := a.revokeSession(ctx, userID, opt.SessionID, opt.Reason, now)
	if errors.Is(err, store.ErrNotFound) {
		return errNoSuchSession
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// LogoutScope selects which of the caller's sessions Logout ends. It is not
// an OAuth scope.
type LogoutScope string

// Logout scopes, as POST /logout?scope= names them.
const (
	LogoutLocal  LogoutScope = "local"  // this session
	LogoutGlobal LogoutScope = "global" // every session of the user
	LogoutOthers LogoutScope = "others" // every session of the user but this one
)

// Logout ends sessions of the caller p: its own (LogoutLocal, also the zero
// value), every one of its user's (LogoutGlobal), or every one but its own
// (LogoutOthers). A session that has ended already is not an error.
func (a *Auth) Logout(ctx context.Context, p Principal, scope LogoutScope) error {
	opt := RevokeOptions{UserID: p.UserID, Reason: ReasonLogout}
	switch scope {
	case LogoutLocal, "":
		opt = RevokeOptions{SessionID: p.SessionID, Reason: ReasonLogout}
	case LogoutGlobal:
	case LogoutOthers:
		opt.Except = p.SessionID
	default:
		return ErrInvalidRequest.WithMessage("The logout scope must be local, global or others.")
	}
	if err := a.Revoke(ctx, opt); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// Sessions returns the live sessions of userID, newest first.
func (a *Auth) Sessions(ctx context.Context, userID string) ([]store.Session, error) {
	ss, err := a.st.UserSessions(ctx, userID)
	if err != nil {
		return nil, unavailable(err)
	}
	now := a.cfg.Now()
	out := ss[:0]
	for _, s := range ss {
		if s.Live(now) {
			out = append(out, s)
		}
	}
	return out, nil
}

// revokeUser ends every live session of userID but except.
func (a *Auth) revokeUser(ctx context.Context, userID, except string, reason Reason, now time.Time) error {
	ss, err := a.st.UserSessions(ctx, userID)
	if err != nil {
		return unavailable(err)
	}
	for _, s := range ss {
		if s.ID == except || s.Revoked() || !now.Before(s.ExpiresAt) {
			continue
		}
		if err := a.revokeSession(ctx, userID, s.ID, reason, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return unavailable(err)
		}
	}
	return nil
}

// revokeSession ends session sid of userID ("" if unknown) in the store and
// on this node at once.
func (a *Auth) revokeSession(ctx context.Context, userID, sid string, reason Reason, now time.Time) error {
	// Until covers the last access token minted for the session, with a margin
	// for a refresh racing the revocation.
	rev := store.Revocation{SessionID: sid, At: now, Until: a.revocationUntil(now)}
	if err := a.st.RevokeSession(ctx, rev, string(reason)); err != nil {
		return err
	}
	a.revoked.add(rev)
	a.observe(ctx, Event{Kind: EventRevoke, At: now, Reason: reason, Actor: reason.actor(), UserID: userID, SessionID: sid})
	return nil
}

// revocationUntil is how long the feed must carry a session revoked at now.
func (a *Auth) revocationUntil(now time.Time) time.Time {
	return now.Add(a.cfg.AccessTTL + a.cfg.Leeway + time.Minute)
}

// actor is who ends a session for reason r.
func (r Reason) actor() string {
	switch r {
	case ReasonAdmin:
		return "admin"
	case ReasonReused, ReasonSessionLimit:
		return "system"
	}
	return "user"
}

// revokeAccess refuses one access token from now on, on every node.
func (a *Auth) revokeAccess(ctx context.Context, c accesstoken.Claims, now time.Time) error {
	rev := store.Revocation{TokenID: c.ID, At: now, Until: c.ExpiresAt.Add(a.cfg.Leeway + time.Second)}
	if err := a.st.RevokeToken(ctx, rev); err != nil {
		return err
	}
	a.revoked.add(rev)
	return nil
}

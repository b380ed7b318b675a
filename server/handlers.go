package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/device"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/users"
)

// credentials is the body of /register.
type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// userJSON is a user as the API shows it.
type userJSON struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
}

// pairJSON is the token pair with its user.
type pairJSON struct {
	*latchkey.Tokens
	User userJSON `json:"user"`
}

// cookiePairJSON answers a login or refresh whose tokens went into cookies:
// everything but the tokens themselves.
type cookiePairJSON struct {
	UserID           string   `json:"uuid"`
	SessionID        string   `json:"session_id"`
	ExpiresIn        int64    `json:"expires_in"`
	ExpiresAt        int64    `json:"expires_at"`
	RefreshExpiresAt int64    `json:"refresh_expires_at"`
	User             userJSON `json:"user"`
	// CSRFToken is the CSRF cookie's value, for a page on a sibling origin
	// (Config.CORSOrigins), which cannot read that cookie.
	CSRFToken string `json:"csrf_token"`
}

// writePair answers with a token pair: in the body, or (cookie mode) in
// cookies already set, with the body naming only the session.
func (s *Server) writePair(w http.ResponseWriter, t *latchkey.Tokens, u userJSON, cookies bool) {
	if cookies {
		httpauth.WriteJSON(w, http.StatusOK, cookiePairJSON{UserID: t.UserID, SessionID: t.SessionID, ExpiresIn: t.ExpiresIn,
			ExpiresAt: t.ExpiresAt, RefreshExpiresAt: t.RefreshExpiresAt, User: u, CSRFToken: s.mw.CSRFToken(t.SessionID)})
		return
	}
	httpauth.WriteJSON(w, http.StatusOK, pairJSON{Tokens: t, User: u})
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if !s.reg {
		s.writeError(w, r, latchkey.ErrRegistrationClosed)
		return
	}
	var c credentials
	if err := httpauth.DecodeJSON(r, &c, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.createAccount(r, c.Username, c.Password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	httpauth.WriteJSON(w, http.StatusCreated, userJSON{UUID: u.ID, Username: u.Username})
}

// createAccount registers an account for POST /register and the account
// page's form alike: the same rules, log line and event.
func (s *Server) createAccount(r *http.Request, name, pw string) (store.User, error) {
	if !s.reg {
		return store.User{}, latchkey.ErrRegistrationClosed
	}
	u, err := s.users.Register(r.Context(), name, pw)
	if err != nil {
		return store.User{}, err
	}
	s.log.Info("user registered", "user", u.ID)
	s.event(r, latchkey.Event{Kind: latchkey.EventUserCreated, UserID: u.ID, Grant: grantPassword})
	return u, nil
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	t, cookies, err := s.mw.Refresh(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name, err := s.users.Username(r.Context(), t.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writePair(w, t, userJSON{UUID: t.UserID, Username: name}, cookies)
}

// protectedBody is /protected's answer, encoded once.
var protectedBody = []byte(`{"message":"You have access"}` + "\n")

func (s *Server) protected(w http.ResponseWriter, r *http.Request) {
	httpauth.WriteRawJSON(w, http.StatusOK, protectedBody)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	p, _ := latchkey.FromContext(r.Context())
	u, err := s.users.ByID(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body := map[string]string{"uuid": u.ID, "username": u.Username, "session_id": p.SessionID}
	if from, _ := httpauth.LocationFromContext(r.Context()); from == httpauth.Cookies {
		// A page on a sibling origin cannot read the CSRF cookie; after a
		// reload it takes the token from here.
		body[httpauth.CSRFField] = s.mw.CSRFToken(p.SessionID)
	}
	httpauth.WriteJSON(w, http.StatusOK, body)
}

func (s *Server) password(w http.ResponseWriter, r *http.Request) {
	p, _ := latchkey.FromContext(r.Context())
	var body struct {
		Old string `json:"old_password"`
		New string `json:"new_password"`
	}
	if err := httpauth.DecodeJSON(r, &body, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.changePassword(r, p, body.Old, body.New); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// errPasswordsRequired answers a password change without one of the two.
var errPasswordsRequired = latchkey.ErrInvalidRequest.WithMessage("Both old_password and new_password are required.")

// changePassword replaces p's user's password and revokes every other
// session of the user, for POST /password and the account page's form alike.
// The caller has checked that p is fresh. Wrong old passwords count against
// the login rate limit.
func (s *Server) changePassword(r *http.Request, p latchkey.Principal, oldPw, newPw string) error {
	if oldPw == "" || newPw == "" {
		return errPasswordsRequired
	}
	attempt, wait, ok := s.limit.Begin(p.UserID, s.trusted.ClientIP(r))
	if !ok {
		return rateLimited(wait)
	}
	err := s.users.ChangePassword(r.Context(), p.UserID, oldPw, newPw)
	switch {
	case err == nil:
		attempt.Succeed()
	case errors.Is(err, latchkey.ErrInvalidCredentials):
		attempt.Fail()
	default:
		attempt.Release() // a weak new password is not a guess, nor a success
	}
	if err != nil {
		return err
	}
	if err := s.auth.Revoke(r.Context(), latchkey.RevokeOptions{UserID: p.UserID, Except: p.SessionID, Reason: latchkey.ReasonPasswordChanged}); err != nil {
		return err
	}
	s.log.Info("password changed; other sessions revoked", "user", p.UserID)
	s.event(r, latchkey.Event{Kind: latchkey.EventPasswordChanged, UserID: p.UserID, SessionID: p.SessionID})
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := latchkey.FromContext(r.Context())
	scope := latchkey.LogoutScope(r.URL.Query().Get("scope"))
	if err := s.auth.Logout(r.Context(), p, scope); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("logout", "user", p.UserID, "session", p.SessionID, "scope", string(scope))
	s.mw.ClearCookies(w)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// sessionJSON is one entry of GET /sessions.
type sessionJSON struct {
	ID         string `json:"id"`
	CreatedAt  int64  `json:"created_at"`
	LastUsedAt int64  `json:"last_used_at"`
	ExpiresAt  int64  `json:"expires_at"`
	UserAgent  string `json:"user_agent"`
	// Device names UserAgent for people ("Chrome 156 on Linux", "curl").
	Device  string `json:"device"`
	IP      string `json:"ip"`
	Current bool   `json:"current"`
}

func (s *Server) sessions(w http.ResponseWriter, r *http.Request) {
	p, _ := latchkey.FromContext(r.Context())
	ss, err := s.auth.Sessions(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]sessionJSON, 0, len(ss))
	for _, x := range ss {
		out = append(out, sessionJSON{
			ID:         x.ID,
			CreatedAt:  x.CreatedAt.Unix(),
			LastUsedAt: x.LastUsedAt.Unix(),
			ExpiresAt:  x.IdleExpiresAt.Unix(),
			UserAgent:  x.UserAgent,
			Device:     device.Name(x.UserAgent),
			IP:         x.IP,
			Current:    x.ID == p.SessionID,
		})
	}
	httpauth.WriteJSON(w, http.StatusOK, map[string][]sessionJSON{"sessions": out})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	p, _ := latchkey.FromContext(r.Context())
	id := r.PathValue("id")
	if err := s.auth.Revoke(r.Context(), latchkey.RevokeOptions{SessionID: id, UserID: p.UserID, Reason: latchkey.ReasonLogout}); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("session revoked", "user", p.UserID, "session", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	// Short enough that a rotation (which pre-publishes the next key) is seen in time.
	h.Set("Cache-Control", "public, max-age=60")
	w.Write(s.auth.JWKS())
}

// healthTimeout bounds the store ping of /healthz: a store that does not
// answer within it is reported unreachable. Without it, a node cut off from
// its store (packets lost, not refused) kept the health check waiting for as
// long as the checker would wait, and never said so.
const healthTimeout = 2 * time.Second

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.auth.Ping(ctx); err != nil {
		s.log.Warn("health check: store unreachable", "err", err)
		httpauth.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "store": "unreachable"})
		return
	}
	httpauth.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "store": "ok"})
}

// accountKey is the rate-limit key of a login name: the normalised username, so
// that case variants share one bucket. A name that is no username has no
// account bucket (its attempts are limited by address).
func accountKey(name string) string {
	if n, err := users.NormalizeUsername(name); err == nil {
		return n
	}
	return ""
}

// rateLimited is the rate_limited error with its Retry-After.
func rateLimited(wait time.Duration) error {
	return &latchkey.Error{Code: latchkey.CodeRateLimited, Message: latchkey.ErrRateLimited.Message, RetryAfter: wait}
}

package server

import (
	"embed"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
)

//go:embed pages/account.html
var pageFS embed.FS

var accountPage = template.Must(template.ParseFS(pageFS, "pages/account.html"))

// accountView is what the account page shows.
type accountView struct {
	User     string
	CSRF     string
	Message  string
	Sessions []sessionView
	// Sign-in form
	Error    string
	Username string
}

type sessionView struct {
	ID, UserAgent, IP         string
	Created, LastUsed         string // RFC 3339, for <time datetime>
	CreatedText, LastUsedText string
	Current                   bool
}

// renderPage writes the account page with headers that keep it from being
// framed, cached or leaking its URL, and allow no script at all.
func renderPage(w http.ResponseWriter, status int, v accountView) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = accountPage.Execute(w, v)
}

// account shows the signed-in user's sessions, or the sign-in form.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	p, err := s.mw.AuthenticateOrRefresh(w, r)
	if err != nil {
		if !errors.Is(err, latchkey.ErrMissingToken) && !errors.Is(err, latchkey.ErrUnavailable) {
			s.mw.ClearCookies(w)
		}
		renderPage(w, http.StatusOK, accountView{})
		return
	}
	u, err := s.users.ByID(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ss, err := s.auth.Sessions(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := accountView{User: u.Username, CSRF: s.mw.CSRFToken(p.SessionID), Message: r.URL.Query().Get("done")}
	switch v.Message {
	case "revoked":
		v.Message = "The session was signed out."
	default:
		v.Message = ""
	}
	for _, x := range ss {
		v.Sessions = append(v.Sessions, sessionView{
			ID: x.ID, UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == p.SessionID,
			Created: x.CreatedAt.UTC().Format(time.RFC3339), CreatedText: x.CreatedAt.UTC().Format("2 Jan 2006 15:04 UTC"),
			LastUsed: x.LastUsedAt.UTC().Format(time.RFC3339), LastUsedText: x.LastUsedAt.UTC().Format("2 Jan 2006 15:04 UTC"),
		})
	}
	renderPage(w, http.StatusOK, v)
}

// accountLogin signs in from the form and sets the cookies.
func (s *Server) accountLogin(w http.ResponseWriter, r *http.Request) {
	if err := s.mw.CheckOrigin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, httpauth.MaxBody)
	name, pw := r.PostFormValue("username"), r.PostFormValue("password")
	t, _, err := s.passwordLogin(r, name, pw, latchkey.Client{})
	if err != nil {
		e := httpauth.AsError(err)
		if httpauth.Status(e.Code) >= 500 {
			s.writeError(w, r, err)
			return
		}
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
		}
		renderPage(w, httpauth.Status(e.Code), accountView{Error: e.Message, Username: name})
		return
	}
	s.mw.SetCookies(w, t)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// accountRevoke signs out one session of the user's.
func (s *Server) accountRevoke(w http.ResponseWriter, r *http.Request) {
	err := s.mw.CheckOrigin(r)
	var p latchkey.Principal
	if err == nil {
		p, err = s.mw.AuthenticateOrRefresh(w, r)
	}
	if err == nil {
		err = s.auth.Revoke(r.Context(), latchkey.RevokeOptions{SessionID: r.PathValue("id"), UserID: p.UserID, Reason: latchkey.ReasonLogout})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.PathValue("id") == p.SessionID {
		s.mw.ClearCookies(w)
	}
	http.Redirect(w, r, "/account?done=revoked", http.StatusSeeOther)
}

// accountLogout signs out this session, or every session with scope=global.
// Only an authenticated, same-origin request with the CSRF token clears the
// cookies: a forged post must not be able to sign anyone out.
func (s *Server) accountLogout(w http.ResponseWriter, r *http.Request) {
	err := s.mw.CheckOrigin(r)
	var p latchkey.Principal
	if err == nil {
		p, err = s.mw.AuthenticateOrRefresh(w, r)
	}
	if errors.Is(err, latchkey.ErrMissingToken) {
		http.Redirect(w, r, "/account", http.StatusSeeOther) // nobody to sign out
		return
	}
	if err == nil {
		scope := latchkey.LogoutLocal
		if r.PostFormValue("scope") == "global" {
			scope = latchkey.LogoutGlobal
		}
		err = s.auth.Logout(r.Context(), p, scope)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.mw.ClearCookies(w)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

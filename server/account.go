package server

import (
	"embed"
	"errors"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/store"
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
	// Identities are the account's links to other providers; Providers the
	// ones it can sign in with (or link).
	Identities []identityView
	Providers  []providerView
	// Events are the account's recent security events.
	Events []eventView
	// Continue is where the browser goes next (a link flow's provider), on
	// a page of its own; ContinueTo names it.
	Continue, ContinueTo string
	// Sign-in form
	Error    string
	Username string
}

type identityView struct {
	ID, Provider, Email, Linked string
}

type eventView struct {
	Kind, Text, IP string
	At, AtText     string // RFC 3339, for <time datetime>; and for reading
}

type providerView struct {
	Name, Label string
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
		renderPage(w, http.StatusOK, accountView{Providers: s.providerButtons(), Message: signedOutMessages[r.URL.Query().Get("done")]})
		return
	}
	s.renderSignedIn(w, r, p, doneMessages[r.URL.Query().Get("done")], nil)
}

// signedOutMessages confirm a sign-out on the sign-in form it lands on.
var signedOutMessages = map[string]string{
	"signed-out":            "You are signed out on this device.",
	"signed-out-everywhere": "You are signed out everywhere: every session of your account has ended.",
}

// doneMessages are the confirmations a redirect back to the page may ask for.
var doneMessages = map[string]string{
	"revoked":  "The session was signed out.",
	"linked":   "The identity was linked to your account.",
	"unlinked": "The identity was unlinked from your account.",
}

// renderSignedIn shows the signed-in page with a confirmation or, when fail
// is not nil, its message (and status).
func (s *Server) renderSignedIn(w http.ResponseWriter, r *http.Request, p latchkey.Principal, message string, fail error) {
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
	v := accountView{User: u.Username, CSRF: s.mw.CSRFToken(p.SessionID), Message: message}
	for _, x := range ss {
		v.Sessions = append(v.Sessions, sessionView{
			ID: x.ID, UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == p.SessionID,
			Created: x.CreatedAt.UTC().Format(time.RFC3339), CreatedText: x.CreatedAt.UTC().Format("2 Jan 2006 15:04 UTC"),
			LastUsed: x.LastUsedAt.UTC().Format(time.RFC3339), LastUsedText: x.LastUsedAt.UTC().Format("2 Jan 2006 15:04 UTC"),
		})
	}
	if s.audit != nil {
		evs, err := s.audit.Events(r.Context(), store.EventFilter{UserID: p.UserID, Limit: 10})
		if err != nil {
			s.writeError(w, r, latchkey.ErrUnavailable.WithCause(err))
			return
		}
		for _, ev := range evs {
			v.Events = append(v.Events, eventView{Kind: ev.Kind, Text: audit.Describe(ev), IP: ev.IP,
				At: ev.At.UTC().Format(time.RFC3339), AtText: ev.At.UTC().Format("2 Jan 2006 15:04 UTC")})
		}
	}
	if len(s.providers) > 0 {
		ids, err := s.users.Identities(r.Context(), p.UserID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, id := range ids {
			v.Identities = append(v.Identities, identityView{ID: id.ID, Provider: s.providerName(id.Provider), Email: id.Email,
				Linked: id.CreatedAt.UTC().Format("2 Jan 2006 15:04 UTC")})
		}
		v.Providers = s.providerButtons()
	}
	if fail != nil {
		e := httpauth.AsError(fail)
		if httpauth.Status(e.Code) >= 500 && !errors.Is(fail, latchkey.ErrUnavailable) {
			s.writeError(w, r, fail)
			return
		}
		v.Message = ""
		renderError(w, e, v)
		return
	}
	renderPage(w, http.StatusOK, v)
}

// renderError shows the page v with e's message, e's status and, for a rate
// limit, its Retry-After; a 401 carries its challenge like every 401.
func renderError(w http.ResponseWriter, e *latchkey.Error, v accountView) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if httpauth.Status(e.Code) == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+httpauth.Realm+`"`)
	}
	v.Error = e.Message
	renderPage(w, httpauth.Status(e.Code), v)
}

// providerButtons are the providers a browser can sign in with, by name.
func (s *Server) providerButtons() []providerView {
	var out []providerView
	for _, name := range slices.Sorted(maps.Keys(s.providers)) {
		if s.providers[name].Redirects() {
			out = append(out, providerView{Name: name, Label: strings.ToUpper(name[:1]) + name[1:]})
		}
	}
	return out
}

// accountLogin signs in from the form and sets the cookies.
func (s *Server) accountLogin(w http.ResponseWriter, r *http.Request) {
	if err := s.mw.CheckOrigin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, httpauth.MaxBody)
	name, pw := r.PostFormValue("username"), r.PostFormValue("password")
	t, _, err := s.signIn(r, s.passwordGrant(), grant.Map{"username": name, "password": pw}, latchkey.Client{}, "")
	if err != nil {
		e := httpauth.AsError(err)
		if httpauth.Status(e.Code) >= 500 {
			s.writeError(w, r, err)
			return
		}
		renderError(w, e, accountView{Username: name, Providers: s.providerButtons()})
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
	var done string
	if err == nil {
		scope := latchkey.LogoutLocal
		if r.PostFormValue("scope") == "global" {
			scope = latchkey.LogoutGlobal
		}
		err = s.auth.Logout(r.Context(), p, scope)
		if err == nil {
			done = "signed-out"
			if scope == latchkey.LogoutGlobal {
				done = "signed-out-everywhere"
			}
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.mw.ClearCookies(w)
	http.Redirect(w, r, "/account?done="+done, http.StatusSeeOther)
}

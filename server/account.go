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
	"github.com/latchkey/latchkey/internal/ago"
	"github.com/latchkey/latchkey/internal/device"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/users"
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
	// Error is the message of a failed form; Form names the form ("" for
	// the sign-in form or the page as a whole, "signup", "password",
	// "reauth") and Field the field it is about ("" for the whole form).
	Error, Form, Field string
	// Username and NewUsername are what was typed into the sign-in and the
	// create-account forms, shown again after an error.
	Username, NewUsername string
	// Registration shows the create-account form; MinPassword is the
	// shortest password the rules accept, for the form's hint.
	Registration bool
	MinPassword  int
	// HasPassword: the account has a password to change. Fresh: its
	// sign-in is recent enough to change it; otherwise the page asks for
	// the password again first.
	HasPassword, Fresh bool
}

// FieldError is Error when it is about field of form.
func (v accountView) FieldError(form, field string) string {
	if v.Form == form && v.Field == field && field != "" {
		return v.Error
	}
	return ""
}

// FormError is Error when it is about form as a whole.
func (v accountView) FormError(form string) string {
	if v.Form == form && v.Field == "" {
		return v.Error
	}
	return ""
}

type identityView struct {
	ID, Provider, Email string
	Linked              moment
}

type eventView struct {
	Kind, Text, IP string
	At             moment
}

// moment is a time as the page shows it: relative, in a <time> element
// whose datetime attribute and title carry the exact time.
type moment struct {
	RFC3339, Exact, Ago string
}

func (s *Server) moment(t time.Time) moment {
	return moment{RFC3339: t.UTC().Format(time.RFC3339), Exact: ago.Exact(t), Ago: ago.Text(t, s.auth.Config().Now())}
}

type providerView struct {
	Name, Label string
}

type sessionView struct {
	ID, UserAgent, Device, IP string
	Created, LastUsed         moment
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
		renderPage(w, http.StatusOK, s.signedOutView(accountView{Message: signedOutMessages[r.URL.Query().Get("done")]}))
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
	"created":  "Your account was created, and you are signed in.",
	"password": "Your password was changed. Every other session of your account was signed out; this one stays signed in.",
	"reauth":   "You confirmed your password: you can change it now.",
	"revoked":  "The session was signed out.",
	"linked":   "The identity was linked to your account.",
	"unlinked": "The identity was unlinked from your account.",
}

// renderSignedIn shows the signed-in page with a confirmation or, when fail
// is not nil, its message (and status).
func (s *Server) renderSignedIn(w http.ResponseWriter, r *http.Request, p latchkey.Principal, message string, fail error) {
	s.renderSignedInForm(w, r, p, message, fail, "", "")
}

// renderSignedInForm is renderSignedIn with fail's message shown by field of
// form (see accountView.Form).
func (s *Server) renderSignedInForm(w http.ResponseWriter, r *http.Request, p latchkey.Principal, message string, fail error, form, field string) {
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
	v := accountView{User: u.Username, CSRF: s.mw.CSRFToken(p.SessionID), Message: message,
		HasPassword: u.HasPassword(), Fresh: p.Fresh, MinPassword: users.MinPasswordRunes, Form: form, Field: field}
	for _, x := range ss {
		v.Sessions = append(v.Sessions, sessionView{
			ID: x.ID, UserAgent: x.UserAgent, Device: device.Name(x.UserAgent), IP: x.IP, Current: x.ID == p.SessionID,
			Created: s.moment(x.CreatedAt), LastUsed: s.moment(x.LastUsedAt),
		})
	}
	// This device first, then the most recently used.
	slices.SortStableFunc(v.Sessions, func(a, b sessionView) int {
		if a.Current != b.Current {
			if a.Current {
				return -1
			}
			return 1
		}
		return strings.Compare(b.LastUsed.RFC3339, a.LastUsed.RFC3339)
	})
	if s.audit != nil {
		evs, err := s.audit.Events(r.Context(), store.EventFilter{UserID: p.UserID, Limit: 10})
		if err != nil {
			s.writeError(w, r, latchkey.ErrUnavailable.WithCause(err))
			return
		}
		for _, ev := range evs {
			v.Events = append(v.Events, eventView{Kind: ev.Kind, Text: audit.Describe(ev), IP: ev.IP, At: s.moment(ev.At)})
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
				Linked: s.moment(id.CreatedAt)})
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
		if e.Code == latchkey.CodeFreshTokenRequired && form == "password" {
			v.Fresh = false // ask for the password again
		}
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

// signedOutView is v with what the signed-out page always shows: the
// providers to sign in with and, when registration is open, the
// create-account form.
func (s *Server) signedOutView(v accountView) accountView {
	v.Providers, v.Registration, v.MinPassword = s.providerButtons(), s.reg, users.MinPasswordRunes
	return v
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
		renderError(w, e, s.signedOutView(accountView{Username: name}))
		return
	}
	s.mw.SetCookies(w, t)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// accountRevoke signs out one session of the user's.
func (s *Server) accountRevoke(w http.ResponseWriter, r *http.Request) {
	p, err := s.formCaller(w, r)
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
	p, err := s.formCaller(w, r)
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

// accountRegister is POST /account/register: the create-account form. A new
// account is signed in at once. Errors are shown by the field they are about.
func (s *Server) accountRegister(w http.ResponseWriter, r *http.Request) {
	if err := s.mw.CheckOrigin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, httpauth.MaxBody)
	name, pw := r.PostFormValue("username"), r.PostFormValue("password")
	_, err := s.createAccount(r, name, pw)
	var t *latchkey.Tokens
	if err == nil {
		t, _, err = s.signIn(r, s.passwordGrant(), grant.Map{"username": name, "password": pw}, latchkey.Client{}, "")
	}
	if err != nil {
		e := httpauth.AsError(err)
		if httpauth.Status(e.Code) >= 500 && !errors.Is(err, latchkey.ErrUnavailable) {
			s.writeError(w, r, err)
			return
		}
		v := accountView{Form: "signup", NewUsername: name}
		_, badName := users.NormalizeUsername(name)
		switch {
		case errors.Is(err, latchkey.ErrRegistrationClosed):
			v.Form = "" // the form is not on the page
		case errors.Is(err, latchkey.ErrUsernameTaken) || badName != nil:
			v.Field = "username"
		case errors.Is(err, latchkey.ErrWeakPassword) || errors.Is(err, latchkey.ErrInvalidRequest):
			v.Field = "password"
		}
		renderError(w, e, s.signedOutView(v))
		return
	}
	s.mw.SetCookies(w, t)
	http.Redirect(w, r, "/account?done=created", http.StatusSeeOther)
}

// accountPassword is POST /account/password: the change-password form. Like
// POST /password it needs a fresh sign-in; without one the page asks for the
// password again (accountReauth) rather than failing.
func (s *Server) accountPassword(w http.ResponseWriter, r *http.Request) {
	p, err := s.formCaller(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !p.Fresh {
		s.renderSignedInForm(w, r, p, "", errNotFresh, "password", "")
		return
	}
	oldPw, newPw := r.PostFormValue("old_password"), r.PostFormValue("new_password")
	if err := s.changePassword(r, p, oldPw, newPw); err != nil {
		field := ""
		switch {
		case errors.Is(err, latchkey.ErrInvalidCredentials):
			field = "old"
		case errors.Is(err, latchkey.ErrWeakPassword):
			field = "new"
		case errors.Is(err, latchkey.ErrInvalidRequest) && oldPw != "" && newPw != "":
			field = "new" // too long
		case errors.Is(err, errPasswordsRequired):
			err = latchkey.ErrInvalidRequest.WithMessage("Enter your current password and a new one.")
		}
		s.renderSignedInForm(w, r, p, "", err, "password", field)
		return
	}
	http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
}

// errNotFresh asks for the password again before a password change.
var errNotFresh = latchkey.ErrFreshTokenRequired.WithMessage("Changing your password needs a recent sign-in: enter your current password below to confirm it is you, then change it.")

// accountReauth is POST /account/reauth: the signed-in user proves the
// password again. It is a sign-in with the password grant (the same rate
// limit and events): the browser gets a new session whose access token is
// fresh, and the session it replaces is signed out.
func (s *Server) accountReauth(w http.ResponseWriter, r *http.Request) {
	p, err := s.formCaller(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.users.ByID(r.Context(), p.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, httpauth.MaxBody)
	t, _, err := s.signIn(r, s.passwordGrant(), grant.Map{"username": u.Username, "password": r.PostFormValue("password")}, latchkey.Client{}, "")
	if err != nil {
		field := ""
		if errors.Is(err, latchkey.ErrInvalidCredentials) || errors.Is(err, latchkey.ErrInvalidRequest) {
			field = "password"
			if errors.Is(err, latchkey.ErrInvalidCredentials) {
				err = latchkey.ErrInvalidCredentials.WithMessage("That is not your current password.")
			}
		}
		s.renderSignedInForm(w, r, p, "", err, "reauth", field)
		return
	}
	s.mw.SetCookies(w, t)
	if err := s.auth.Revoke(r.Context(), latchkey.RevokeOptions{SessionID: p.SessionID, UserID: p.UserID, Reason: latchkey.ReasonLogout}); err != nil {
		s.log.Warn("re-authentication: the replaced session was not revoked", "session", p.SessionID, "err", err)
	}
	http.Redirect(w, r, "/account?done=reauth#password", http.StatusSeeOther)
}

// formCaller is the signed-in caller of a form the account page posts: the
// request must come from this server's origin (or a trusted one), and its
// cookie session is refreshed if need be.
func (s *Server) formCaller(w http.ResponseWriter, r *http.Request) (latchkey.Principal, error) {
	if err := s.mw.CheckOrigin(r); err != nil {
		return latchkey.Principal{}, err
	}
	return s.mw.AuthenticateOrRefresh(w, r)
}

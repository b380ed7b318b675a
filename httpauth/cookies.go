package httpauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"mime"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
)

// Cookie base names; with secure cookies each carries the __Host- prefix, which
// makes browsers insist on Secure, Path=/ and no Domain, so a sibling subdomain
// cannot plant one.
const (
	AccessCookie  = "lk_access"
	RefreshCookie = "lk_refresh"
	CSRFCookie    = "lk_csrf"
	// CSRFHeader carries the CSRF cookie's value on cookie-authenticated
	// unsafe requests (double submit).
	CSRFHeader = "X-CSRF-Token"
	// CSRFField carries it instead in an HTML form post, which cannot set headers.
	CSRFField = "csrf_token"
)

// isForm reports whether r carries an HTML form body.
func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

// CookieName returns the name a cookie has under this middleware's settings.
func (m *Middleware) CookieName(base string) string {
	if m.insecure {
		return base
	}
	return "__Host-" + base
}

// cookie builds every cookie latchkey sets: Path /, SameSite=Lax, HttpOnly
// unless it is the CSRF cookie (which the page must read), Secure with the
// __Host- prefix unless insecure cookies were asked for. A zero expiry deletes it.
func (m *Middleware) cookie(base, value string, expires, now time.Time) *http.Cookie {
	c := &http.Cookie{
		Name:     m.CookieName(base),
		Value:    value,
		Path:     "/",
		Secure:   !m.insecure,
		HttpOnly: base != CSRFCookie,
		SameSite: http.SameSiteLaxMode,
	}
	if expires.IsZero() {
		c.MaxAge = -1
		c.Value = ""
	} else {
		c.Expires = expires.UTC()
		c.MaxAge = max(1, int(expires.Sub(now).Round(time.Second)/time.Second))
	}
	return c
}

// SetCookies puts a token pair into the access, refresh and CSRF cookies, with
// lifetimes matching the tokens, and marks the response uncacheable.
func (m *Middleware) SetCookies(w http.ResponseWriter, t *latchkey.Tokens) {
	now := m.auth.Config().Now()
	refreshExp := time.Unix(t.RefreshExpiresAt, 0)
	accessExp := time.Unix(t.ExpiresAt, 0)
	if m.auth.Config().BindAccess {
		// Binding needs the (expired) access token at the next refresh: keep
		// the cookie as long as the refresh cookie.
		accessExp = refreshExp
	}
	http.SetCookie(w, m.cookie(AccessCookie, t.AccessToken, accessExp, now))
	http.SetCookie(w, m.cookie(RefreshCookie, t.RefreshToken, refreshExp, now))
	http.SetCookie(w, m.cookie(CSRFCookie, m.CSRFToken(t.SessionID), refreshExp, now))
	w.Header().Set("Cache-Control", "no-store")
}

// SetCookie sets a cookie of the application's own (a sign-in flow's state,
// say) under the same rules as the token cookies: the __Host- prefix and
// Secure unless insecure cookies were asked for, HttpOnly, SameSite=Lax,
// Path /. A zero expires deletes it.
func (m *Middleware) SetCookie(w http.ResponseWriter, base, value string, expires time.Time) {
	http.SetCookie(w, m.cookie(base, value, expires, m.auth.Config().Now()))
}

// Cookie returns the value of a cookie set with SetCookie, or "".
func (m *Middleware) Cookie(r *http.Request, base string) string { return m.cookieValue(r, base) }

// ClearCookies deletes the three cookies.
func (m *Middleware) ClearCookies(w http.ResponseWriter) {
	for _, base := range []string{AccessCookie, RefreshCookie, CSRFCookie} {
		http.SetCookie(w, m.cookie(base, "", time.Time{}, time.Time{}))
	}
}

func (m *Middleware) cookieValue(r *http.Request, base string) string {
	c, err := r.Cookie(m.CookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfPurpose names the key CSRF tokens are made with (Auth.DeriveKey).
const csrfPurpose = "csrf token v1"

// errCrossOrigin refuses an unsafe request from an origin that is neither
// this server's nor trusted.
var errCrossOrigin = latchkey.ErrCSRFFailed.WithMessage("The request came from another origin than this server's. " +
	"Unsafe requests with cookies or from a sign-in form must come from the same origin (scheme, host and port), " +
	"or from an origin the server trusts: latchkey serve --cors-origins, or httpauth.Config.TrustedOrigins in a library.")

// CSRFToken returns the CSRF token of a session, for the double-submit
// cookie and for forms: an HMAC of the session id under a key derived from the
// deployment secret. It is the same for every rotation of the session (so
// concurrent tabs agree) and cannot be made for another session without the
// secret.
func (m *Middleware) CSRFToken(sessionID string) string {
	mac := hmac.New(sha256.New, m.csrfKey)
	mac.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// safeMethod reports whether a request cannot change state (RFC 9110 §9.2.1).
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// checkCSRF guards a cookie-authenticated request of session sid. Unsafe
// methods must come from our own origin (net/http's cross-origin protection)
// and echo the CSRF cookie in the X-CSRF-Token header; the token must be the
// one latchkey derived for this very session.
func (m *Middleware) checkCSRF(r *http.Request, sid string) error {
	if m.noCSRF || safeMethod(r.Method) {
		return nil
	}
	if err := m.CheckOrigin(r); err != nil {
		return err
	}
	name := m.CookieName(CSRFCookie)
	cookie := m.cookieValue(r, CSRFCookie)
	header := r.Header.Get(CSRFHeader)
	if header == "" && isForm(r) {
		r.Body = http.MaxBytesReader(nil, r.Body, MaxBody)
		header = r.PostFormValue(CSRFField) // an HTML form cannot set headers
	}
	switch {
	case cookie == "":
		return latchkey.ErrCSRFFailed.WithMessage("The " + name + " cookie is missing; sign in again to get one.")
	case header == "":
		return latchkey.ErrCSRFFailed.WithMessage("The " + CSRFHeader + " header is missing; send the value of the " + name + " cookie in it.")
	case subtle.ConstantTimeCompare([]byte(header), []byte(cookie)) != 1:
		return latchkey.ErrCSRFFailed.WithMessage("The " + CSRFHeader + " header does not match the " + name + " cookie.")
	case !hmac.Equal([]byte(m.CSRFToken(sid)), []byte(header)):
		return latchkey.ErrCSRFFailed.WithMessage("The CSRF token belongs to another session; sign in again.")
	}
	return nil
}

package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/text"
	"github.com/latchkey/latchkey/provider"
)

// flowTTL bounds a browser sign-in at the provider.
const flowTTL = 10 * time.Minute

// flowCookie holds a browser sign-in at a provider between the redirect
// there and the callback: HttpOnly, SameSite=Lax (the callback is a top-level
// navigation from the provider), ten minutes, one use.
const flowCookie = "lk_signin"

// flow is the state of one browser sign-in. Only seed is secret; state,
// nonce and the PKCE verifier are derived from it under the server's key,
// so the cookie carries nothing the provider sees.
type flow struct {
	seed     string // 32 random bytes, base64url
	provider string
	link     string // the user an identity is being linked to; "" for a sign-in
	expires  int64
}

func (f flow) derive(key []byte, label string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label + "\x00" + f.seed))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (f flow) body() string {
	return f.seed + "." + f.provider + "." + f.link + "." + strconv.FormatInt(f.expires, 10)
}

// encode is the cookie value: the fields and their MAC.
func (f flow) encode(key []byte) string { return f.body() + "." + f.derive(key, "cookie "+f.body()) }

// decodeFlow reads and checks a cookie value; ok is false for anything that
// is not a live flow made by this server.
func decodeFlow(key []byte, v string, now time.Time) (flow, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 5 {
		return flow{}, false
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return flow{}, false
	}
	f := flow{seed: parts[0], provider: parts[1], link: parts[2], expires: exp}
	want := f.derive(key, "cookie "+f.body())
	if subtle.ConstantTimeCompare([]byte(want), []byte(parts[4])) != 1 || now.Unix() >= exp {
		return flow{}, false
	}
	return f, true
}

// callbackURL is where providers send the browser back: registered at the
// provider as the client's redirect URI.
func (s *Server) callbackURL() string {
	return strings.TrimSuffix(s.auth.Config().Issuer, "/") + "/account/callback"
}

// accountSignIn is GET /account/signin/{provider}: it starts the
// authorization-code flow with PKCE, state and nonce, for a sign-in.
func (s *Server) accountSignIn(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("link") {
		s.renderFlowError(w, r, latchkey.ErrInvalidRequest.WithMessage("Linking starts from the account page's Link button."))
		return
	}
	s.startFlow(w, r, "", false)
}

// accountLinkStart is POST /account/signin/{provider}: a signed-in browser
// links an identity at the provider to its account. It is a same-origin form
// post with the CSRF token, from a recent sign-in, so no other site can start
// a link for a signed-in user. It answers with a page that moves on to the
// provider itself, because the page's form-action policy would stop a
// redirect to another origin.
func (s *Server) accountLinkStart(w http.ResponseWriter, r *http.Request) {
	pr, err := s.formCaller(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if fresh, err := s.recentSignIn(r.Context(), pr); err != nil || !fresh {
		if err == nil {
			err = latchkey.ErrFreshTokenRequired.WithMessage("Linking an identity needs a recent sign-in: sign out, sign in again, then link.")
		}
		s.renderSignedIn(w, r, pr, "", err)
		return
	}
	s.startFlow(w, r, pr.UserID, true)
}

// startFlow sets the flow cookie and sends the browser to the provider: by a
// redirect, or (page) by a page that goes there itself.
func (s *Server) startFlow(w http.ResponseWriter, r *http.Request, link string, page bool) {
	p, ok := s.providers[r.PathValue("provider")]
	if !ok {
		s.renderFlowError(w, r, errNoBrowserSignIn)
		return
	}
	f := flow{provider: p.Name(), link: link, expires: s.auth.Config().Now().Add(flowTTL).Unix()}
	seed := make([]byte, 32)
	rand.Read(seed)
	f.seed = base64.RawURLEncoding.EncodeToString(seed)
	// AuthCodeURL fetches the discovery document if need be (503 while the
	// provider is down); only then is it known whether a public client may
	// use PKCE.
	to, err := p.AuthCodeURL(r.Context(), s.callbackURL(), f.derive(s.flowKey, "state"), f.derive(s.flowKey, "nonce"), f.derive(s.flowKey, "pkce"))
	if err == nil && !p.Redirects() {
		err = errNoBrowserSignIn
	}
	if err != nil {
		s.renderFlowError(w, r, err)
		return
	}
	s.mw.SetCookie(w, flowCookie, f.encode(s.flowKey), time.Unix(f.expires, 0))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !page {
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	renderPage(w, http.StatusOK, accountView{Continue: to, ContinueTo: p.Name()})
}

// linkWindow is how recent a browser's sign-in must be to link an identity
// from the account page. The page's access tokens are short-lived and
// refreshed in the background, so their freshness would last only minutes;
// the session's own age says when the user last proved who they are.
const linkWindow = 10 * time.Minute

// recentSignIn reports whether p holds a fresh access token or its session
// began less than linkWindow ago.
func (s *Server) recentSignIn(ctx context.Context, p latchkey.Principal) (bool, error) {
	if p.Fresh {
		return true, nil
	}
	ss, err := s.auth.Sessions(ctx, p.UserID)
	if err != nil {
		return false, err
	}
	for _, x := range ss {
		if x.ID == p.SessionID {
			return s.auth.Config().Now().Sub(x.CreatedAt) < linkWindow, nil
		}
	}
	return false, nil
}

// errNoBrowserSignIn answers a sign-in with a provider that is not
// configured, or public without PKCE support.
var errNoBrowserSignIn = latchkey.ErrNotFound.WithMessage("There is no browser sign-in with this provider here.")

// errFlowLost answers a callback without a matching flow.
var errFlowLost = latchkey.ErrInvalidRequest.WithMessage("This sign-in expired or was started in another browser. Start again.")

// accountCallback is GET /account/callback: the provider's answer. The flow
// cookie is spent whatever happens; the state must match it, the code is
// redeemed with its PKCE verifier, and the ID token is checked like any
// other (issuer, audience, times, signature, nonce, single use).
func (s *Server) accountCallback(w http.ResponseWriter, r *http.Request) {
	s.mw.SetCookie(w, flowCookie, "", time.Time{})
	f, ok := decodeFlow(s.flowKey, s.mw.Cookie(r, flowCookie), s.auth.Config().Now())
	q := r.URL.Query()
	if !ok || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.derive(s.flowKey, "state"))) != 1 {
		s.renderFlowError(w, r, errFlowLost)
		return
	}
	if e := q.Get("error"); e != "" {
		s.renderFlowError(w, r, latchkey.ErrInvalidCredentials.WithMessage("The provider did not sign you in ("+text.Quote(e, 64)+")."))
		return
	}
	p, ok := s.providers[f.provider]
	if !ok || q.Get("code") == "" || !p.Redirects() {
		s.renderFlowError(w, r, errFlowLost)
		return
	}
	exchange := func(ctx context.Context, _ grant.Request) (provider.Claims, error) {
		c, err := p.Exchange(ctx, s.callbackURL(), q.Get("code"), f.derive(s.flowKey, "pkce"), f.derive(s.flowKey, "nonce"))
		if err != nil {
			return c, err
		}
		return c, s.markUsed(ctx, c)
	}
	if f.link != "" {
		s.callbackLink(w, r, f, exchange)
		return
	}
	t, _, err := s.signIn(r, s.providerSignIn(exchange), grant.Map{}, latchkey.Client{}, "")
	if err != nil {
		s.renderFlowError(w, r, err)
		return
	}
	s.mw.SetCookies(w, t)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// callbackLink finishes a link: the browser must still be signed in as the
// user who started it.
func (s *Server) callbackLink(w http.ResponseWriter, r *http.Request, f flow, exchange claimsSource) {
	pr, err := s.mw.AuthenticateOrRefresh(w, r)
	if err != nil || pr.UserID != f.link {
		s.renderFlowError(w, r, errFlowLost)
		return
	}
	if _, err := s.resolve(r, s.providerLink(pr.UserID, exchange, nil), grant.Map{}, false); err != nil {
		s.renderSignedIn(w, r, pr, "", err)
		return
	}
	http.Redirect(w, r, "/account?done=linked", http.StatusSeeOther)
}

// accountUnlink is POST /account/identities/{id}/unlink (same origin, CSRF
// token in the form).
func (s *Server) accountUnlink(w http.ResponseWriter, r *http.Request) {
	p, err := s.formCaller(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.users.Unlink(r.Context(), p.UserID, r.PathValue("id")); err != nil {
		s.renderSignedIn(w, r, p, "", err)
		return
	}
	s.log.Info("identity unlinked", "user", p.UserID, "identity", r.PathValue("id"))
	s.event(r, latchkey.Event{Kind: latchkey.EventIdentityUnlinked, UserID: p.UserID, SessionID: p.SessionID})
	http.Redirect(w, r, "/account?done=unlinked", http.StatusSeeOther)
}

// renderFlowError shows the sign-in page with err's message and status; a
// failure on our side is the API's error.
func (s *Server) renderFlowError(w http.ResponseWriter, r *http.Request, err error) {
	e := httpauth.AsError(err)
	if httpauth.Status(e.Code) >= 500 && !errors.Is(err, latchkey.ErrUnavailable) {
		s.writeError(w, r, err)
		return
	}
	if httpauth.Status(e.Code) >= 500 {
		s.log.Warn("provider sign-in failed", "err", e.Err)
	}
	renderError(w, e, accountView{Providers: s.providerButtons()})
}

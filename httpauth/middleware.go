package httpauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/refreshtoken"
)

// Location is a place in a request where tokens are looked for.
type Location string

// Token locations.
const (
	Headers Location = "headers" // Authorization: Bearer <token>
	Cookies Location = "cookies" // the access and refresh cookies
	JSON    Location = "json"    // "access_token" / "refresh_token" fields of a JSON body
	Query   Location = "query"   // ?access_token= (RFC 6750 §2.3; access tokens only, off by default)
)

// DefaultLocations returns the locations used when Config.Locations is empty:
// headers, cookies, JSON.
func DefaultLocations() []Location { return []Location{Headers, Cookies, JSON} }

// ParseLocations parses a comma-separated list such as "headers,cookies,json".
func ParseLocations(list []string) ([]Location, error) {
	var locs []Location
	for _, s := range list {
		switch l := Location(s); l {
		case Headers, Cookies, JSON, Query:
			locs = append(locs, l)
		default:
			return nil, fmt.Errorf("httpauth: unknown token location %q (want headers, cookies, json, query)", s)
		}
	}
	if len(locs) == 0 {
		return nil, errors.New("httpauth: no token location")
	}
	return locs, nil
}

// Config configures a Middleware.
type Config struct {
	// Auth verifies and refreshes tokens. Required.
	Auth *latchkey.Auth
	// Locations is where tokens are looked for, in this order; empty means
	// DefaultLocations.
	Locations []Location
	// ErrorHandler writes authentication failures; nil means WriteError.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// InsecureCookies drops the Secure attribute and the __Host- prefix from
	// the cookies, for plain-http development only.
	InsecureCookies bool
	// DisableCSRF turns off the CSRF checks of cookie-authenticated unsafe
	// requests. Leave it off unless something else guards against CSRF.
	DisableCSRF bool
	// TrustedOrigins are other origins ("https://app.example.com") whose
	// cookie-authenticated unsafe requests are let through the cross-origin
	// check, for a page on a sibling origin of the same site. They still need
	// the CSRF token. Each must be scheme://host[:port] and nothing more.
	TrustedOrigins []string
	// RefreshWithin is how close to its expiry an access cookie is refreshed
	// implicitly; default 30 s.
	RefreshWithin time.Duration
	// DPoP checks DPoP proofs (RFC 9449): those of protected requests with
	// a DPoP-bound token, and those sent with a refresh. Nil: no proof is
	// read, and a DPoP-bound token is refused (it cannot be checked).
	DPoP *dpop.Verifier
	// DPoPNonce requires the server's nonce in the proof of a refresh.
	DPoPNonce bool
	// TrustedProxies are the peers whose X-Forwarded-Proto and
	// X-Forwarded-Host are believed when the URL a DPoP proof names is
	// compared with the request's.
	TrustedProxies TrustedProxies
}

// Middleware guards net/http handlers. Create it with New.
type Middleware struct {
	auth     *latchkey.Auth
	locs     map[Location]bool
	order    []Location
	onFail   func(w http.ResponseWriter, r *http.Request, err error)
	insecure bool
	noCSRF   bool
	within   time.Duration
	cop      *http.CrossOriginProtection
	csrfKey  []byte
	dpop     *dpop.Verifier
	nonce    bool // Config.DPoPNonce
	proxies  TrustedProxies
}

// New returns a Middleware for cfg.
func New(cfg Config) (*Middleware, error) {
	if cfg.Auth == nil {
		return nil, errors.New("httpauth: Config.Auth is required")
	}
	order := cfg.Locations
	if len(order) == 0 {
		order = DefaultLocations()
	}
	csrfKey, err := cfg.Auth.DeriveKey(csrfPurpose)
	if err != nil {
		return nil, err
	}
	m := &Middleware{auth: cfg.Auth, locs: map[Location]bool{}, onFail: cfg.ErrorHandler,
		insecure: cfg.InsecureCookies, noCSRF: cfg.DisableCSRF, within: cfg.RefreshWithin,
		cop: http.NewCrossOriginProtection(), csrfKey: csrfKey, dpop: cfg.DPoP, nonce: cfg.DPoPNonce, proxies: cfg.TrustedProxies}
	for _, o := range cfg.TrustedOrigins {
		if err := m.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("httpauth: trusted origin %q: %w", o, err)
		}
	}
	if m.within <= 0 {
		m.within = 30 * time.Second
	}
	for _, l := range order {
		if _, err := ParseLocations([]string{string(l)}); err != nil {
			return nil, err
		}
		if !m.locs[l] {
			m.locs[l] = true
			m.order = append(m.order, l)
		}
	}
	if m.onFail == nil {
		m.onFail = WriteError
	}
	return m, nil
}

// CookiesEnabled reports whether the cookie location is on.
func (m *Middleware) CookiesEnabled() bool { return m.locs[Cookies] }

// Auth returns the Auth the middleware verifies with.
func (m *Middleware) Auth() *latchkey.Auth { return m.auth }

// tokenFields are the token fields of a JSON body.
type tokenFields struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// jsonTokens returns the token fields of a JSON request body, if the JSON
// location is on and the request has such a body.
func (m *Middleware) jsonTokens(r *http.Request) (tokenFields, error) {
	var f tokenFields
	if !m.locs[JSON] || r.Body == nil || r.Body == http.NoBody || checkJSONType(r) != nil {
		return f, nil
	}
	body, err := readBody(r)
	if err != nil {
		return f, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return f, nil
	}
	// Only an object can hold token fields; anything else is the handler's to judge.
	if trimmed := bytes.TrimSpace(body); trimmed[0] != '{' {
		return f, nil
	}
	return f, decodeBytes(body, &f)
}

// AccessToken returns the access token a request presents, from the first
// enabled location that has one; "" if none does.
func (m *Middleware) AccessToken(r *http.Request) (string, error) {
	tok, _, err := m.accessToken(r)
	return tok, err
}

func (m *Middleware) accessToken(r *http.Request) (tok string, from Location, err error) {
	for _, l := range m.order {
		switch l {
		case Headers:
			tok, err = bearer(r)
		case Cookies:
			tok = m.cookieValue(r, AccessCookie)
		case JSON:
			var f tokenFields
			f, err = m.jsonTokens(r)
			tok = f.AccessToken
		case Query:
			tok = r.URL.Query().Get("access_token")
		}
		if err != nil || tok != "" {
			return tok, l, err
		}
	}
	return "", "", nil
}

// RefreshToken returns the refresh token a request presents (Authorization
// header, JSON "refresh_token", or the refresh cookie) and the access token
// presented alongside it (JSON "access_token", the Authorization header when
// the refresh token is in the body, or the access cookie), if any. Refresh
// tokens are never read from the query: a long-lived secret does not belong in
// a URL.
func (m *Middleware) RefreshToken(r *http.Request) (refresh, access string, err error) {
	refresh, access, _, err = m.refreshToken(r)
	return refresh, access, err
}

func (m *Middleware) refreshToken(r *http.Request) (refresh, access string, from Location, err error) {
	var hdr string
	if m.locs[Headers] {
		if hdr, err = bearer(r); err != nil {
			return "", "", "", err
		}
	}
	f, err := m.jsonTokens(r)
	if err != nil {
		return "", "", "", err
	}
	switch {
	case refreshtoken.Looks(hdr) || (hdr != "" && f.RefreshToken == ""):
		return hdr, f.AccessToken, Headers, nil
	case f.RefreshToken != "":
		access = f.AccessToken
		if access == "" {
			access = hdr
		}
		return f.RefreshToken, access, JSON, nil
	case m.locs[Cookies]:
		if c := m.cookieValue(r, RefreshCookie); c != "" {
			return c, m.cookieValue(r, AccessCookie), Cookies, nil
		}
	}
	return "", f.AccessToken, "", nil
}

// Authenticate verifies the access token r presents and returns its caller. It
// writes nothing; the guards below build on it.
func (m *Middleware) Authenticate(r *http.Request) (latchkey.Principal, error) {
	tok, from, err := m.accessToken(r)
	if err != nil {
		return latchkey.Principal{}, err
	}
	if tok == "" {
		return latchkey.Principal{}, latchkey.ErrMissingToken.WithMessage("An access token is required.")
	}
	p, err := m.auth.Verify(r.Context(), tok)
	if err == nil {
		err = m.checkSender(r, tok, from, &p)
	}
	if err == nil && from == Cookies {
		err = m.checkCSRF(r, p.SessionID)
	}
	return p, err
}

// AuthenticateOrRefresh is Authenticate with implicit refresh: when the access
// cookie is missing, expired or about to expire and the refresh cookie is
// valid, it rotates the session, sets the new cookies on w and returns the
// caller. Unlike Authenticate it may write cookies. Concurrent requests of one
// page all succeed: the grace window gives them the same successor. The
// guards use it.
func (m *Middleware) AuthenticateOrRefresh(w http.ResponseWriter, r *http.Request) (latchkey.Principal, error) {
	p, _, err := m.authenticateOrRefresh(w, r)
	return p, err
}

// authenticateOrRefresh is AuthenticateOrRefresh that also tells where the
// caller's credential was found.
func (m *Middleware) authenticateOrRefresh(w http.ResponseWriter, r *http.Request) (latchkey.Principal, Location, error) {
	p, err := m.Authenticate(r)
	_, from, _ := m.accessToken(r)
	if !m.locs[Cookies] || m.cookieValue(r, RefreshCookie) == "" {
		return p, from, err
	}
	switch {
	case from != "" && from != Cookies:
		return p, from, err // another credential was presented; do not mix it with cookies
	case err == nil && p.ExpiresAt.Sub(m.auth.Config().Now()) > m.within:
		return p, from, nil
	case err != nil && !errors.Is(err, latchkey.ErrMissingToken) && !errors.Is(err, latchkey.ErrTokenExpired):
		return p, from, err
	}
	t, fromCookie, rerr := m.Refresh(w, r)
	if rerr != nil || !fromCookie {
		if err == nil {
			return p, from, nil // still valid: a failed early refresh changes nothing
		}
		return p, from, rerr
	}
	p, err = m.auth.Verify(r.Context(), t.AccessToken)
	return p, Cookies, err
}

type locationKey struct{}

// LocationFromContext returns where the guards (RequireAccess, RequireFresh,
// Optional) found the credential of the request whose context is ctx:
// Cookies for a cookie session (including one refreshed implicitly).
func LocationFromContext(ctx context.Context) (Location, bool) {
	l, ok := ctx.Value(locationKey{}).(Location)
	return l, ok
}

// withCaller returns r carrying its verified caller and where its credential
// was found.
func withCaller(r *http.Request, p latchkey.Principal, from Location) *http.Request {
	ctx := latchkey.NewContext(r.Context(), p)
	return r.WithContext(context.WithValue(ctx, locationKey{}, from))
}

// RequireAccess lets a request through only with a valid access token, and puts
// its caller in the request context (read it with latchkey.FromContext).
func (m *Middleware) RequireAccess(next http.Handler) http.Handler {
	return m.guard(next, nil)
}

// RequireFresh is RequireAccess that also demands a fresh token: one issued
// straight after a password login, not by a refresh.
func (m *Middleware) RequireFresh(next http.Handler) http.Handler {
	return m.guard(next, func(p latchkey.Principal) error {
		if !p.Fresh {
			return latchkey.ErrFreshTokenRequired
		}
		return nil
	})
}

func (m *Middleware) guard(next http.Handler, check func(latchkey.Principal) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, from, err := m.authenticateOrRefresh(w, r)
		if err == nil && check != nil {
			err = check(p)
		}
		if err != nil {
			m.onFail(w, r, err)
			return
		}
		next.ServeHTTP(w, withCaller(r, p, from))
	})
}

// Optional lets every request through. A request without any token goes on
// anonymously; one that presents a token must present a valid one (an expired
// or revoked token is an error the client should hear about, not a silent
// downgrade to anonymous).
func (m *Middleware) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, from, err := m.authenticateOrRefresh(w, r)
		switch {
		case err == nil:
			r = withCaller(r, p, from)
		case !errors.Is(err, latchkey.ErrMissingToken):
			m.onFail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireRefresh exchanges the refresh token the request presents for a new
// pair and lets the request through with the pair in its context (read it with
// latchkey.TokensFromContext). A refresh token from the cookie gets its rotated
// cookies set on the response; otherwise the handler delivers the pair.
func (m *Middleware) RequireRefresh(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _, err := m.Refresh(w, r)
		if err != nil {
			m.onFail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(latchkey.NewTokensContext(r.Context(), t)))
	})
}

// Refresh exchanges the refresh token r presents for a new first-party pair.
// A refresh token taken from the cookie must pass the CSRF check (on unsafe
// methods), and the rotated cookies are set on w; fromCookie tells the caller
// not to put the tokens in the body.
func (m *Middleware) Refresh(w http.ResponseWriter, r *http.Request) (t *latchkey.Tokens, fromCookie bool, err error) {
	rt, at, from, err := m.refreshToken(r)
	if err != nil {
		return nil, false, err
	}
	if rt == "" {
		return nil, false, latchkey.ErrMissingToken.WithMessage("A refresh token is required.")
	}
	if from == Cookies {
		sid, err := m.auth.SessionOf(rt)
		if err != nil {
			m.ClearCookies(w)
			return nil, true, err
		}
		if err := m.checkCSRF(r, sid); err != nil {
			return nil, true, err
		}
		if !m.auth.Config().BindAccess {
			at = "" // an expired access cookie is not worth refusing the refresh over
		}
	}
	opt := latchkey.RefreshOptions{AccessToken: at, KeepAccessToken: from == Cookies}
	if from != Cookies { // a cookie session is bound to its browser, not to a key
		if opt.JKT, err = m.VerifyProof(w, r, m.nonce); err != nil {
			return nil, false, err
		}
	}
	t, err = m.auth.Refresh(r.Context(), rt, opt)
	if from == Cookies {
		if err != nil {
			if !errors.Is(err, latchkey.ErrUnavailable) {
				m.ClearCookies(w) // the session is over: stop sending dead cookies
			}
			return nil, true, err
		}
		m.SetCookies(w, t)
	}
	return t, from == Cookies, err
}

// CheckOrigin refuses an unsafe request from another origin (net/http's
// cross-origin protection) unless that origin is one of
// Config.TrustedOrigins, for forms that act before any cookie exists, such as
// a sign-in form.
func (m *Middleware) CheckOrigin(r *http.Request) error {
	if err := m.cop.Check(r); err != nil {
		return errCrossOrigin.WithCause(err)
	}
	return nil
}

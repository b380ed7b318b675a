package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/httpstatus"
	"github.com/latchkey/latchkey/internal/origin"
	"github.com/latchkey/latchkey/internal/ratelimit"
	"github.com/latchkey/latchkey/metrics"
	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/users"
)

// Config configures a Server.
type Config struct {
	// Auth issues and verifies tokens. Required.
	Auth *latchkey.Auth
	// Users manages accounts. Required.
	Users *users.Service
	// Clients are the OAuth 2.0 clients; nil leaves the /oauth endpoints and the
	// authorization server metadata out.
	Clients *oauth.Clients
	// Middleware configures how requests present tokens: locations, cookies,
	// CSRF, trusted origins. Its Auth is Config.Auth and its ErrorHandler the
	// server's; set neither.
	Middleware httpauth.Config
	// CORSOrigins are the browser origins ("https://app.example.com",
	// "http://localhost:5173") whose pages may call the API from script, with
	// credentials: each is answered with CORS headers naming it (never "*"),
	// and is also trusted by the cross-origin check of cookie-authenticated
	// requests (as if in Middleware.TrustedOrigins), so a page on a sibling
	// origin of the same site can use cookie sessions with the CSRF token
	// from the login response. Exact origins only: scheme://host[:port].
	// Empty: no CORS headers, and preflights are answered 405.
	CORSOrigins []string
	// Registration opens POST /register.
	Registration bool
	// TrustedProxies are the peers whose X-Forwarded-For header is believed
	// (see httpauth.ParseTrustedProxies). Behind a load balancer, list its addresses:
	// the login rate limit and the session list then see each client's own
	// address instead of the balancer's. Empty: the header is ignored.
	TrustedProxies httpauth.TrustedProxies
	// Grants are sign-in grants of the application's own (a magic link, an
	// API key, a test login), beside the built-in password and provider
	// grants: POST /login selects one by its "grant" field, and POST
	// /oauth/token by its OAuthType.
	Grants []grant.Grant
	// Providers are the OpenID Connect providers users may sign in with.
	Providers []*provider.Provider
	// ProviderSignup lets a first sign-in with an identity no account is linked
	// to create an account.
	ProviderSignup bool
	// Markers records the ID tokens used to sign in, so each is used once on
	// every node, and the DPoP proofs accepted, so each is accepted once.
	// Required with Providers; without it DPoP is off.
	Markers store.Markers
	// DPoP configures sender-constrained tokens (RFC 9449), on whenever
	// Markers is set.
	DPoP DPoPConfig
	// SharedLimits keeps the login rate limiter's buckets in a store shared
	// by every node, so that N nodes allow what one allows; nil keeps them
	// in this process (each node its own budget). A store that is slow or
	// down falls back to the in-process buckets.
	SharedLimits store.Buckets
	// Audit, when set, serves each user their own recent security events
	// (GET /me/events and the account page).
	Audit store.Audit
	// Observer is told of the server's own events (sign-in attempts, rate
	// limits, password changes, sign-ups, identities linked and unlinked),
	// besides what Auth reports to its own Config.Observer; nil tells nobody.
	Observer latchkey.Observer
	// Metrics, when set, counts the server's requests (by route pattern,
	// method and status) and its own events; nil counts nothing. Auth's events
	// reach it only through latchkey.Config.Observer: set it there too, and
	// not in Observer above.
	Metrics *metrics.Metrics
	// Logger receives one line per request (as RequestLog says) and every
	// server-side failure; nil discards them. Tokens, passwords and secrets
	// are never logged.
	Logger *slog.Logger
	// RequestLog says which requests get a line: all (the default), only
	// failed ones, or none. Server-side failures are logged whatever it says.
	RequestLog RequestLog
}

// RequestLog is which requests the server logs a line for.
type RequestLog int

// The request logging levels of Config.RequestLog.
const (
	RequestLogAll    RequestLog = iota // every request
	RequestLogFailed                   // requests answered with a status of 400 or more
	RequestLogOff                      // none
)

// ParseRequestLog reads "all", "failed" or "off".
func ParseRequestLog(s string) (RequestLog, error) {
	switch s {
	case "all":
		return RequestLogAll, nil
	case "failed":
		return RequestLogFailed, nil
	case "off":
		return RequestLogOff, nil
	}
	return 0, fmt.Errorf("%q: want all, failed or off", s)
}

// DPoPConfig configures DPoP (RFC 9449): a sign-in or refresh that sends a
// proof binds its session to the proof's key for the session's whole life.
type DPoPConfig struct {
	// Required refuses a sign-in without a proof on POST /login (cookie mode
	// aside: a cookie session is bound to its browser). Sessions started
	// before it was set keep their Bearer tokens until they end. OAuth
	// clients are held to it one by one (store.Client.DPoPRequired).
	Required bool
	// NoNonce stops requiring the server's nonce in the proofs of the token
	// endpoints (/login, /refresh, /oauth/token), which then accept a proof
	// made without asking the server first; a stolen proof is then usable
	// until its iat is MaxAge old instead of until the nonce changes.
	NoNonce bool
	// MaxAge is how long after its iat a proof is accepted; default
	// dpop.DefaultMaxAge.
	MaxAge time.Duration
}

// dpopNoncePurpose names the key DPoP nonces are made with (Auth.DeriveKey):
// the same on every node, so each accepts the others' nonces.
const dpopNoncePurpose = "dpop nonce v1"

// Server serves the HTTP API. Create it with New.
type Server struct {
	auth    *latchkey.Auth
	users   *users.Service
	clients *oauth.Clients
	mw      *httpauth.Middleware
	limit   *ratelimit.Limiter
	trusted httpauth.TrustedProxies
	log     *slog.Logger
	// requestLog is Config.RequestLog.
	requestLog RequestLog
	reg        bool
	mux        *http.ServeMux
	cors       []string // Config.CORSOrigins

	grants    *grant.Set
	providers map[string]*provider.Provider
	byIssuer  map[string]*provider.Provider
	signup    bool
	markers   store.Markers
	dpop      DPoPConfig
	flowKey   []byte // MAC key of the browser sign-in's state cookie
	obs       latchkey.Observer
	metrics   *metrics.Metrics
	audit     store.Audit
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Auth == nil || cfg.Users == nil {
		return nil, errors.New("server: Config.Auth and Config.Users are required")
	}
	if cfg.Middleware.Auth != nil || cfg.Middleware.ErrorHandler != nil {
		return nil, errors.New("server: Config.Middleware.Auth and ErrorHandler are the server's own; leave them nil")
	}
	s := &Server{auth: cfg.Auth, users: cfg.Users, clients: cfg.Clients,
		limit: ratelimit.New(ratelimit.Config{Shared: cfg.SharedLimits, Logger: cfg.Logger}),
		log:   cfg.Logger, requestLog: cfg.RequestLog, reg: cfg.Registration, trusted: cfg.TrustedProxies, obs: cfg.Observer, audit: cfg.Audit}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics != nil {
		s.metrics, s.obs = cfg.Metrics, latchkey.Observers(cfg.Observer, cfg.Metrics)
	}
	for _, o := range cfg.CORSOrigins {
		if err := origin.Check(o); err != nil {
			return nil, fmt.Errorf("server: CORSOrigins: %w", err)
		}
	}
	s.cors = slices.Clone(cfg.CORSOrigins)
	mcfg := cfg.Middleware
	mcfg.Auth, mcfg.ErrorHandler = cfg.Auth, s.writeError
	mcfg.TrustedOrigins = slices.Concat(cfg.Middleware.TrustedOrigins, cfg.CORSOrigins)
	if cfg.Markers != nil && mcfg.DPoP == nil {
		key, err := cfg.Auth.DeriveKey(dpopNoncePurpose)
		if err != nil {
			return nil, err
		}
		v, err := dpop.New(dpop.Config{Markers: cfg.Markers, MaxAge: cfg.DPoP.MaxAge, NonceKey: key, Now: cfg.Auth.Config().Now})
		if err != nil {
			return nil, fmt.Errorf("server: DPoP: %w", err)
		}
		mcfg.DPoP, mcfg.DPoPNonce = v, !cfg.DPoP.NoNonce
	}
	if len(mcfg.TrustedProxies) == 0 {
		mcfg.TrustedProxies = cfg.TrustedProxies
	}
	s.dpop = cfg.DPoP
	mw, err := httpauth.New(mcfg)
	if err != nil {
		return nil, err
	}
	s.mw = mw
	if err := s.setupGrants(cfg); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Handler returns the API with request logging, panic containment and, with
// Config.Metrics, request metrics.
func (s *Server) Handler() http.Handler {
	if s.metrics == nil {
		return s.logRequests(s.mux)
	}
	return s.metrics.Middleware(routeOf)(s.logRequests(s.mux))
}

// routeOf is a request's route for metrics: the pattern it matched, or ""
// for the catch-all "/" (a path the API does not have) and a path refused
// before routing.
func routeOf(r *http.Request) string {
	if r.Pattern == "/" {
		return ""
	}
	return r.Pattern
}

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	// The routes the pages of an OAuth client's registered origins may call
	// (without cookies): the OAuth endpoints and documents, and the routes
	// that take its access token.
	var byClient func(*http.Request, string) bool
	forClients := map[string]bool{}
	if s.clients != nil {
		co := &clientOrigins{clients: s.clients, now: s.auth.Config().Now}
		byClient = co.allowed
		for _, p := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect", "/.well-known/jwks.json", "/me", "/protected"} {
			forClients[p] = true
		}
	}
	handle := func(path string, methods map[string]http.Handler) {
		h := allow(methods, s.writeError) // which adds HEAD beside GET
		switch {
		case forClients[path] || strings.HasPrefix(path, "/.well-known/oauth-authorization-server") && byClient != nil:
			h = corsRoute(s.cors, byClient, slices.Sorted(maps.Keys(methods)), h)
		case len(s.cors) > 0:
			h = corsRoute(s.cors, nil, slices.Sorted(maps.Keys(methods)), h)
		}
		s.mux.Handle(path, h)
	}
	handle("/register", map[string]http.Handler{"POST": http.HandlerFunc(s.register)})
	handle("/login", map[string]http.Handler{"POST": http.HandlerFunc(s.login)})
	handle("/refresh", map[string]http.Handler{"POST": http.HandlerFunc(s.refresh)})
	handle("/protected", map[string]http.Handler{"GET": s.mw.RequireAccess(http.HandlerFunc(s.protected))})
	handle("/me", map[string]http.Handler{"GET": s.mw.RequireAccess(http.HandlerFunc(s.me))})
	handle("/password", map[string]http.Handler{"POST": s.mw.RequireFresh(http.HandlerFunc(s.password))})
	handle("/logout", map[string]http.Handler{"POST": s.mw.RequireAccess(http.HandlerFunc(s.logout))})
	if s.audit != nil {
		handle("/me/events", map[string]http.Handler{"GET": s.mw.RequireAccess(http.HandlerFunc(s.myEvents))})
	}
	handle("/sessions", map[string]http.Handler{"GET": s.mw.RequireAccess(http.HandlerFunc(s.sessions))})
	handle("/sessions/{id}", map[string]http.Handler{"DELETE": s.mw.RequireAccess(http.HandlerFunc(s.deleteSession))})
	handle("/account", map[string]http.Handler{"GET": http.HandlerFunc(s.account)})
	handle("/account/login", map[string]http.Handler{"POST": http.HandlerFunc(s.accountLogin)})
	handle("/account/logout", map[string]http.Handler{"POST": http.HandlerFunc(s.accountLogout)})
	handle("/account/register", map[string]http.Handler{"POST": http.HandlerFunc(s.accountRegister)})
	handle("/account/password", map[string]http.Handler{"POST": http.HandlerFunc(s.accountPassword)})
	handle("/account/reauth", map[string]http.Handler{"POST": http.HandlerFunc(s.accountReauth)})
	handle("/account/sessions/{id}/revoke", map[string]http.Handler{"POST": http.HandlerFunc(s.accountRevoke)})
	if len(s.providers) > 0 {
		handle("/identities", map[string]http.Handler{"GET": s.mw.RequireAccess(http.HandlerFunc(s.listIdentities)),
			"POST": s.mw.RequireFresh(http.HandlerFunc(s.linkIdentity))})
		handle("/identities/{id}", map[string]http.Handler{"DELETE": s.mw.RequireAccess(http.HandlerFunc(s.unlinkIdentity))})
		handle("/account/signin/{provider}", map[string]http.Handler{"GET": http.HandlerFunc(s.accountSignIn),
			"POST": http.HandlerFunc(s.accountLinkStart)})
		handle("/account/callback", map[string]http.Handler{"GET": http.HandlerFunc(s.accountCallback)})
		handle("/account/identities/{id}/unlink", map[string]http.Handler{"POST": http.HandlerFunc(s.accountUnlink)})
	}
	handle("/.well-known/jwks.json", map[string]http.Handler{"GET": http.HandlerFunc(s.jwks)})
	handle("/healthz", map[string]http.Handler{"GET": http.HandlerFunc(s.healthz)})
	if s.clients != nil {
		handle("/oauth/token", map[string]http.Handler{"POST": http.HandlerFunc(s.oauthToken)})
		handle("/oauth/revoke", map[string]http.Handler{"POST": http.HandlerFunc(s.oauthRevoke)})
		handle("/oauth/introspect", map[string]http.Handler{"POST": http.HandlerFunc(s.oauthIntrospect)})
		handle("/.well-known/oauth-authorization-server", map[string]http.Handler{"GET": http.HandlerFunc(s.oauthMetadata)})
		iss := s.auth.Config().Issuer
		switch p, ok := issuerPath(iss); {
		case p != "" && ok:
			// RFC 8414 §3.1: an issuer with a path has its metadata under the
			// well-known prefix followed by that path.
			handle("/.well-known/oauth-authorization-server"+p, map[string]http.Handler{"GET": http.HandlerFunc(s.oauthMetadata)})
		case p != "":
			s.log.Warn("the issuer's path has no RFC 8414 metadata route (percent-escapes, braces, dot segments or non-ASCII); clients must be given the metadata URL", "issuer", iss)
		}
	}
	handle("/openapi.json", map[string]http.Handler{"GET": http.HandlerFunc(s.openapi)})
	var notFound http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, latchkey.ErrNotFound.WithMessage("There is nothing at this path."))
	})
	if len(s.cors) > 0 {
		// So that a listed origin's page reads the 404 rather than "Failed
		// to fetch", whichever method it tried.
		notFound = corsRoute(s.cors, nil, catchAllMethods, notFound)
	}
	s.mux.Handle("/", notFound)
}

// catchAllMethods are the methods a preflight to a path the API does not have
// is answered with, so that the 404 that follows is readable.
var catchAllMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// issuerPath is the path of an issuer URL without its trailing slash ("" when
// it has none or is not a URL), and whether a mux pattern can hold it.
func issuerPath(issuer string) (p string, ok bool) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return "", false
	}
	p = strings.TrimSuffix(u.Path, "/")
	ok = u.RawQuery == "" && u.Fragment == "" && (p == u.EscapedPath() || p+"/" == u.EscapedPath()) &&
		!strings.ContainsAny(p, "{}") && p == path.Clean(p)
	return p, ok
}

// allow dispatches on the method, answering 405 with an Allow header for any
// other (HEAD is served where GET is).
func allow(methods map[string]http.Handler, fail func(http.ResponseWriter, *http.Request, error)) http.Handler {
	if h, ok := methods["GET"]; ok {
		methods["HEAD"] = h
	}
	allowed := strings.Join(slices.Sorted(maps.Keys(methods)), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := methods[r.Method]; ok {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", allowed)
		fail(w, r, latchkey.ErrMethodNotAllowed.WithMessage("Use "+allowed+" on this path."))
	})
}

// writeError is the server's error handler: httpauth.WriteError, and a log
// line (with the cause) for failures on our side.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := httpauth.AsError(err)
	if httpauth.Status(e.Code) >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", e.Err)
	}
	httpauth.WriteError(w, r, err) // err, not e: it may mark a DPoP refusal
}

// logRequests logs one line per request (never the query string, which may
// hold an access token) and turns a panic into a JSON 500 without a trace.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &httpstatus.Writer{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				if sw.Status == 0 {
					httpauth.WriteError(sw, r, latchkey.ErrInternal)
				}
			}
			s.logRequest(r, sw.Status, start)
		}()
		if p := r.URL.Path; p != "" && p != "/" && path.Clean(p) != p {
			// ServeMux would answer an unclean path with an HTML redirect.
			s.writeError(sw, r, latchkey.ErrNotFound.WithMessage("There is nothing at this path."))
			return
		}
		next.ServeHTTP(sw, r)
	})
}

// logRequest writes a request's line, if Config.RequestLog asks for it. Typed
// attributes, not key-value pairs: nothing is boxed.
func (s *Server) logRequest(r *http.Request, status int, start time.Time) {
	if s.requestLog == RequestLogOff || (s.requestLog == RequestLogFailed && status < 400) ||
		!s.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Duration("duration", time.Since(start)), slog.String("ip", s.trusted.ClientIP(r)))
}

// HTTPServer returns an http.Server for h with timeouts that keep slow or
// oversized clients from holding connections.
func HTTPServer(addr string, h http.Handler, errLog *slog.Logger) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}
	if errLog != nil {
		srv.ErrorLog = slog.NewLogLogger(errLog.Handler(), slog.LevelWarn)
	}
	return srv
}

package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store"
)

// env is a running server (see servertest.Start) and what tests use of it.
type env struct {
	t       testing.TB
	url     string
	handler http.Handler
	clock   *fakeclock.Clock
	auth    *latchkey.Auth
	dbPath  string
	secret  []byte
	// OAuth clients registered in every env: the public client "app" and the
	// confidential clients "rs" and "other" with their secrets.
	rsSecret, otherSecret string
	clients               *oauth.Clients
	audit                 *audit.Recorder
}

type setup struct {
	cfg             func(*latchkey.Config)
	closedSignup    bool
	insecureCookies bool
	trustedProxies  httpauth.TrustedProxies
	logger          *slog.Logger
	requestLog      server.RequestLog
	// store opens the store instead of a new SQLite file; dbPath is then "".
	store  func(t testing.TB) serverStore
	grants []grant.Grant
	// audit, sharedLimits and secret: see servertest.Options.
	audit, sharedLimits bool
	secret              []byte
	buckets             store.Buckets
	corsOrigins         []string
	dpop                server.DPoPConfig
}

// serverStore is a backend with the roles the server needs.
type serverStore = servertest.Store

func newEnv(t testing.TB, opts ...func(*setup)) *env {
	t.Helper()
	var s setup
	for _, o := range opts {
		o(&s)
	}
	x := servertest.Start(t, servertest.Options{Config: s.cfg, ClosedSignup: s.closedSignup, InsecureCookies: s.insecureCookies,
		TrustedProxies: s.trustedProxies, Logger: s.logger, RequestLog: s.requestLog, Store: s.store, Grants: s.grants,
		Audit: s.audit, SharedLimits: s.sharedLimits, Secret: s.secret, Buckets: s.buckets, CORSOrigins: s.corsOrigins, DPoP: s.dpop})
	return &env{t: t, handler: x.Handler, url: x.URL, clock: x.Clock, auth: x.Auth, dbPath: x.DBPath, secret: x.Secret,
		rsSecret: x.RSSecret, otherSecret: x.OtherSecret, clients: x.Clients, audit: x.Audit}
}

// response is what a call returned.
type response struct {
	status  int
	header  http.Header
	raw     []byte
	body    map[string]any
	cookies []*http.Cookie
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// call sends a request; body "" means none, otherwise it is sent as JSON.
func (e *env) call(method, path, bearer, body string, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw, cookies: resp.Cookies()}
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	if r.status >= 500 {
		e.t.Fatalf("%s %s = %d %s: the server must never answer 5xx", method, path, r.status, raw)
	}
	return r
}

// want checks status and error code ("" for a success).
func (r response) want(t testing.TB, status int, code string) response {
	t.Helper()
	if r.status != status || r.str("error") != code {
		t.Fatalf("got %d %s, want %d %q", r.status, r.raw, status, code)
	}
	if code != "" && r.str("message") == "" {
		t.Fatalf("error %s has no message", code)
	}
	return r
}

// noRedirects shows redirects as they are, so tests see their Set-Cookie.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// pair is a token pair from login or refresh.
type pair struct{ access, refresh, session string }

func (e *env) login(user, pw string) pair {
	e.t.Helper()
	r := e.call("POST", "/login", "", `{"username":"`+user+`","password":"`+pw+`"}`).want(e.t, 200, "")
	return pair{r.str("access_token"), r.str("refresh_token"), r.str("session_id")}
}

func (e *env) refresh(rt string) response {
	e.t.Helper()
	return e.call("POST", "/refresh", rt, "")
}

func asPair(r response) pair {
	return pair{r.str("access_token"), r.str("refresh_token"), r.str("session_id")}
}

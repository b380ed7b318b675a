// Package servertest starts a latchkey token server for tests: real loopback
// HTTP over a fresh SQLite file, a settable clock, the user test/test and the
// OAuth clients "app" (public), "rs" and "other" (confidential). The server
// package's tests and the interop module's tests both build on it, so a change
// to how a server is configured is made here once.
package servertest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/grant"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/password"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

// Issuer is the issuer of every test server's tokens.
const Issuer = "http://latchkey.test"

// CheapHash keeps the many logins of the tests fast; the cost of the real
// parameters is measured by the password benchmarks.
var CheapHash = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Options change the server Start runs; the zero value is the default server.
type Options struct {
	Config          func(*latchkey.Config) // edits the Auth's configuration
	ClosedSignup    bool
	InsecureCookies bool
	TrustedProxies  httpauth.TrustedProxies
	Logger          *slog.Logger
	RequestLog      server.RequestLog
	// Store opens the store instead of a new SQLite file; DBPath is then "".
	Store func(t testing.TB) Store
	// Providers makes the OpenID Connect providers of the server, given its
	// issuer (the callback URL is under it). The store must offer
	// store.Markers and store.Identities.
	Providers func(t testing.TB, issuer string) []*provider.Provider
	// ProviderSignup lets a first provider sign-in create an account.
	ProviderSignup bool
	// Audit records security events in the store (which must offer
	// store.Audit) and serves GET /me/events; Env.Audit is the recorder.
	Audit bool
	// SharedLimits keeps the login limiter's buckets in the store (which must
	// offer store.Buckets), as serve does on a shared store.
	SharedLimits bool
	// Buckets, when set, is the limiter's shared store instead of the
	// server's own store.
	Buckets store.Buckets
	// Grants are sign-in grants of the test's own.
	Grants []grant.Grant
	// Secret is the deployment secret; nil makes a random one. Servers that
	// share a store as nodes of one deployment share it.
	Secret []byte
	// IssuerIsURL makes the server's own URL (http://127.0.0.1:PORT) its
	// issuer instead of Issuer, as a browser sign-in at a provider needs: the
	// provider sends the browser back under the issuer.
	IssuerIsURL bool
	// CORSOrigins are the server's Config.CORSOrigins.
	CORSOrigins []string
	// DPoP is the server's Config.DPoP (DPoP is on: the store keeps markers).
	DPoP server.DPoPConfig
}

// Store is a backend with the roles the server needs.
type Store interface {
	store.Store
	store.Users
	store.Clients
}

// Env is a running test server.
type Env struct {
	URL     string
	Handler http.Handler
	Clock   *fakeclock.Clock
	Auth    *latchkey.Auth
	Clients *oauth.Clients
	DBPath  string
	Secret  []byte
	// Audit is the recorder of Options.Audit; Close flushes it.
	Audit *audit.Recorder
	// The secrets of the confidential clients "rs" and "other"; empty on a
	// server started on a store that had them already.
	RSSecret, OtherSecret string
}

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	var st Store
	var dbPath string
	if o.Store != nil {
		st = o.Store(t)
	} else {
		dbPath = filepath.Join(t.TempDir(), "latchkey.db")
		db, err := sqlite.Open(ctx, dbPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		st = db
	}
	secret := o.Secret
	if secret == nil {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	hs := httptest.NewUnstartedServer(nil)
	t.Cleanup(hs.Close)
	issuer := Issuer
	if o.IssuerIsURL {
		issuer = "http://" + hs.Listener.Addr().String()
	}
	clk := fakeclock.New(time.Now().Truncate(time.Second))
	cfg := latchkey.Config{Store: st, Secret: secret, Issuer: issuer, Now: clk.Now, RevocationDelay: 50 * time.Millisecond}
	var rec *audit.Recorder
	if o.Audit {
		rec = audit.New(audit.Config{Store: st.(store.Audit), Now: clk.Now})
		t.Cleanup(func() { rec.Close() })
		cfg.Observer = rec
	}
	if o.Config != nil {
		o.Config(&cfg)
	}
	a, err := latchkey.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	u, err := users.New(users.Config{Store: st, Now: clk.Now, Params: CheapHash})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.Ensure(ctx, "test", "test"); err != nil {
		t.Fatal(err)
	}
	clients := oauth.New(st, clk.Now)
	var rsSecret, otherSecret string
	if _, err := clients.Ensure(ctx, "app", "a public client"); err != nil {
		t.Fatal(err)
	}
	// A second node on a store that has them already knows no secrets.
	if _, err := clients.Registration(ctx, "rs"); err != nil {
		if _, rsSecret, err = clients.Add(ctx, "rs", oauth.Options{Name: "a resource server", Confidential: true}); err != nil {
			t.Fatal(err)
		}
		if _, otherSecret, err = clients.Add(ctx, "other", oauth.Options{Name: "another confidential client", Confidential: true}); err != nil {
			t.Fatal(err)
		}
	}
	scfg := server.Config{Auth: a, Users: u, Clients: clients, Registration: !o.ClosedSignup,
		Middleware: httpauth.Config{InsecureCookies: o.InsecureCookies}, TrustedProxies: o.TrustedProxies, Logger: o.Logger, RequestLog: o.RequestLog,
		Grants: o.Grants, CORSOrigins: o.CORSOrigins, DPoP: o.DPoP}
	scfg.Markers, _ = st.(store.Markers) // which turns DPoP on
	if o.Providers != nil {
		scfg.Providers, scfg.ProviderSignup = o.Providers(t, issuer), o.ProviderSignup
	}
	if rec != nil {
		scfg.Observer, scfg.Audit = rec, st.(store.Audit)
	}
	if o.SharedLimits {
		scfg.SharedLimits = st.(store.Buckets)
	}
	if o.Buckets != nil {
		scfg.SharedLimits = o.Buckets
	}
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = srv.Handler()
	hs.Start()
	return &Env{URL: hs.URL, Handler: srv.Handler(), Clock: clk, Auth: a, Clients: clients, DBPath: dbPath,
		Secret: secret, RSSecret: rsSecret, OtherSecret: otherSecret, Audit: rec}
}

// Jar is a cookie jar that, unlike net/http/cookiejar, sends Secure and
// __Host- cookies over the plain-http test server, so the secure defaults can
// be tested as they are. Make one with NewJar.
type Jar struct {
	mu sync.Mutex
	m  map[string]string
}

// NewJar returns a jar holding the cookies in m (name to value), or none.
func NewJar(m map[string]string) *Jar {
	j := &Jar{m: map[string]string{}}
	for k, v := range m {
		j.m[k] = v
	}
	return j
}

// Header is the Cookie header that sends every cookie of the jar.
func (j *Jar) Header() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var parts []string
	for k, v := range j.m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, "; ")
}

// Update keeps the cookies a response set and drops those it cleared.
func (j *Jar) Update(cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.m, c.Name)
		} else {
			j.m[c.Name] = c.Value
		}
	}
}

// Get is the value of a cookie, "" if the jar has none.
func (j *Jar) Get(name string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.m[name]
}

// Set sets a cookie.
func (j *Jar) Set(name, value string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.m[name] = value
}

// Delete removes a cookie.
func (j *Jar) Delete(name string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.m, name)
}

// Clone is a copy of the jar.
func (j *Jar) Clone() *Jar {
	j.mu.Lock()
	defer j.mu.Unlock()
	return NewJar(j.m)
}

// String lists the cookies, for failure messages.
func (j *Jar) String() string { return j.Header() }

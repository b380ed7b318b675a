package testop

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// DefaultRedirectURI is registered for a [Client] that lists no redirect
// URIs. For a public (native) client it matches any port on 127.0.0.1.
const DefaultRedirectURI = "http://127.0.0.1/callback"

// DefaultJWKSMaxAge is the max-age of the JWKS's Cache-Control header when
// [Options.JWKSMaxAge] is zero.
const DefaultJWKSMaxAge = 5 * time.Minute

// DefaultIDTokenLifetime is the lifetime of ID and access tokens when
// [Options.IDTokenLifetime] is zero.
const DefaultIDTokenLifetime = time.Hour

// Client is an OAuth client registered with the OP.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client secret. "" makes a public (native) client that
	// must use PKCE; otherwise the client is confidential and authenticates
	// to the token endpoint with client_secret_basic or client_secret_post.
	Secret string
	// RedirectURIs are the registered redirect URIs; none means
	// [DefaultRedirectURI]. A public client's loopback URI
	// (http://127.0.0.1/..., http://localhost/...) matches any port.
	RedirectURIs []string
}

// User is an account the OP's login page accepts.
type User struct {
	// Username is typed into #username.
	Username string
	// Password is typed into #password.
	Password string
	// Subject is the ID token's sub claim; "" means Username.
	Subject string
	// Email is the ID token's email claim, with email_verified true; ""
	// leaves both claims out.
	Email string
}

// Options configure an OP started by [Start].
type Options struct {
	// Clients to register.
	Clients []Client
	// Users whose username and password the login page accepts.
	Users []User
	// JWKSMaxAge is the max-age of the Cache-Control header on the JWKS
	// answer: zero means DefaultJWKSMaxAge, a negative value sends no
	// Cache-Control header at all (which is zitadel's own behaviour).
	JWKSMaxAge time.Duration
	// IDTokenLifetime is how long ID and access tokens are valid; zero
	// means DefaultIDTokenLifetime.
	IDTokenLifetime time.Duration
}

// OP is a running OpenID provider (zitadel/oidc's op package) on loopback.
// Its methods are safe for concurrent use.
type OP struct {
	issuer   string
	jwksPath string
	storage  *storage
	server   *httptest.Server
	clients  map[string]Client
	users    map[string]User

	down     atomic.Bool
	hang     atomic.Pointer[chan struct{}] // non-nil while hanging; closed to release the hung requests
	mu       sync.Mutex
	requests map[string]int
}

// keysServer is zitadel's LegacyServer with the JWKS answer given a
// Cache-Control header; every other endpoint is zitadel's unchanged.
type keysServer struct {
	*op.LegacyServer
	cacheControl string
}

// Keys overrides op.LegacyServer.Keys to add the Cache-Control header.
func (s *keysServer) Keys(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	resp, err := s.LegacyServer.Keys(ctx, r)
	if err == nil && s.cacheControl != "" {
		resp.Header.Set("Cache-Control", s.cacheControl)
	}
	return resp, err
}

// Start starts an OP on 127.0.0.1 with a random port over plain HTTP, with
// one RSA signing key. The issuer is "http://127.0.0.1:PORT". It stops when
// the test ends (t.Cleanup).
func Start(t testing.TB, o Options) *OP {
	t.Helper()
	if o.IDTokenLifetime == 0 {
		o.IDTokenLifetime = DefaultIDTokenLifetime
	}
	if o.JWKSMaxAge == 0 {
		o.JWKSMaxAge = DefaultJWKSMaxAge
	}
	st := &storage{
		idTokenLifetime: o.IDTokenLifetime,
		clients:         map[string]*client{},
		users:           map[string]User{},
		subjects:        map[string]User{},
		requests:        map[string]*authRequest{},
		codes:           map[string]string{},
		tokens:          map[string]*accessToken{},
		keys:            []*signingKey{newSigningKey()},
	}
	p := &OP{storage: st, clients: map[string]Client{}, users: map[string]User{}, requests: map[string]int{}}
	for _, c := range o.Clients {
		if c.ID == "" {
			t.Fatal("testop: a client has no ID")
		}
		if _, dup := p.clients[c.ID]; dup {
			t.Fatalf("testop: client %q registered twice", c.ID)
		}
		if len(c.RedirectURIs) == 0 {
			c.RedirectURIs = []string{DefaultRedirectURI}
		}
		p.clients[c.ID] = c
		st.clients[c.ID] = &client{id: c.ID, secret: c.Secret, redirectURIs: c.RedirectURIs, idTokenLifetime: o.IDTokenLifetime}
	}
	for _, u := range o.Users {
		if u.Username == "" {
			t.Fatal("testop: a user has no Username")
		}
		if u.Subject == "" {
			u.Subject = u.Username
		}
		if _, dup := st.users[u.Username]; dup {
			t.Fatalf("testop: user %q registered twice", u.Username)
		}
		if _, dup := st.subjects[u.Subject]; dup {
			t.Fatalf("testop: subject %q registered twice", u.Subject)
		}
		p.users[u.Username] = u
		st.users[u.Username] = u
		st.subjects[u.Subject] = u
	}

	p.server = httptest.NewUnstartedServer(nil)
	p.issuer = "http://" + p.server.Listener.Addr().String()

	config := &op.Config{
		CodeMethodS256: true, // PKCE S256
		AuthMethodPost: true, // client_secret_post besides client_secret_basic
	}
	if _, err := rand.Read(config.CryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	provider, err := op.NewProvider(config, st, op.StaticIssuer(p.issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatalf("testop: zitadel op.NewProvider: %v", err)
	}
	endpoints := provider.Endpoints()
	endpoints.DeviceAuthorization = nil // the storage has no device flow
	p.jwksPath = endpoints.JwksURI.Relative()
	srv := &keysServer{LegacyServer: op.NewLegacyServer(provider, endpoints)}
	if o.JWKSMaxAge > 0 {
		srv.cacheControl = "public, max-age=" + strconv.Itoa(int(o.JWKSMaxAge/time.Second))
	}

	lg := &login{storage: st, callback: srv.AuthCallbackURL()}
	mux := http.NewServeMux()
	mux.Handle(loginPath, op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler(lg))
	mux.Handle("/", op.RegisterLegacyServer(srv, op.AuthorizeCallbackHandler(provider)))

	p.server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests[r.URL.Path]++
		p.mu.Unlock()
		if release := p.hang.Load(); release != nil {
			// A provider that accepts the connection and never answers.
			select {
			case <-r.Context().Done():
			case <-*release:
			case <-time.After(time.Minute):
			}
			http.Error(w, "testop: the provider hung", http.StatusServiceUnavailable)
			return
		}
		if p.down.Load() {
			w.Header().Set("Connection", "close")
			http.Error(w, "testop: the provider is down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	})
	p.server.Start()
	t.Cleanup(p.server.Close)
	return p
}

// Issuer returns the issuer, "http://127.0.0.1:PORT" without a trailing
// slash; discovery is at Issuer()+"/.well-known/openid-configuration".
func (p *OP) Issuer() string { return p.issuer }

// JWKSPath returns the path of the JWKS endpoint under the issuer ("/keys").
func (p *OP) JWKSPath() string { return p.jwksPath }

// JWKSURL returns Issuer()+JWKSPath(), the jwks_uri of the discovery document.
func (p *OP) JWKSURL() string { return p.issuer + p.jwksPath }

// RotateKey makes a new RSA key the signing key. The JWKS publishes it and
// keeps publishing the previous ones, so tokens signed before still verify.
func (p *OP) RotateKey() { p.storage.rotate() }

// DropOldKeys removes every key but the current signing key from the JWKS.
func (p *OP) DropOldKeys() { p.storage.dropOld() }

// KeyIDs returns the kids the JWKS publishes, oldest first; the last one
// signs new tokens.
func (p *OP) KeyIDs() []string { return p.storage.keyIDs() }

// SetHanging(true) makes every request to the OP wait without an answer
// (until the client gives up, or a minute) until SetHanging(false): a
// provider that is slow rather than down.
func (p *OP) SetHanging(hang bool) {
	if hang {
		ch := make(chan struct{})
		p.hang.Store(&ch)
		return
	}
	if ch := p.hang.Swap(nil); ch != nil {
		close(*ch)
	}
}

// SetDown(true) makes every request to the OP, on any path, answer 503
// Service Unavailable (and close the connection) until SetDown(false), to
// simulate an outage. Requests made while down still count in [OP.Requests].
func (p *OP) SetDown(down bool) { p.down.Store(down) }

// Requests returns how many requests for path (the URL path only, e.g.
// p.JWKSPath() or "/.well-known/openid-configuration") the OP has received,
// including ones answered 503 by SetDown.
func (p *OP) Requests(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[path]
}

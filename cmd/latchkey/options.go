package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/origin"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/redis"
	"github.com/latchkey/latchkey/store/sqlite"
)

// options are the settings of PRODUCT.md's configuration table and the
// flags of the administrative commands. A command defines only the flags it
// reads (see commands); the others keep their zero value, which the library
// reads as its default.
type options struct {
	addr            string
	store           string
	issuer          string
	audience        string
	signingAlg      string
	accessTTL       time.Duration
	refreshTTL      time.Duration
	sessionLifetime time.Duration
	lockedExpiry    bool
	reuseGrace      time.Duration
	bindAccess      bool
	tokenLocations  string
	cookieSecure    bool
	csrf            bool
	registration    bool
	revocationDelay time.Duration
	leeway          time.Duration
	demo            bool
	storePool       int
	trustedProxies  string
	memoryPolicy    string
	force           bool
	confidential    bool
	clientName      string
	clientOrigin    string   // clients add --origin, comma-separated
	clientOrigins   []string // parsed from clientOrigin
	providers       []provider.Config
	auditLog        string
	auditRetention  time.Duration
	maxSessions     int
	user            string        // audit list --user
	since           time.Duration // audit list --since
	json            bool          // audit list --json
	providerSignup  string        // "", "true" or "false"; "" follows --registration
	metricsAddr     string        // "" : no metrics listener
	requestLog      string        // --request-log as given
	requestLogLevel server.RequestLog
	corsOrigins     string // comma-separated; parsed into origins
	dpopRequired    bool   // serve: sign-ins need a proof; clients add: the client's
	dpopNonce       bool
	dpopMaxAge      time.Duration

	issuerDefaulted bool // --issuer was not given: it is http://ADDR
	// observers are told of everything Auth does (metrics, audit).
	observers []latchkey.Observer

	locations []httpauth.Location
	proxies   httpauth.TrustedProxies
	origins   []string // --cors-origins
	secretEnv string   // LATCHKEY_SECRET, never a flag
}

// flagDef is one flag a command may define. A setting (env) is also read from
// its LATCHKEY_ environment variable; an action of one invocation (--force,
// --confidential) is not, so that an environment file shared by every command
// cannot make every key rotation forced or every client confidential.
type flagDef struct {
	env    bool
	define func(fs *flag.FlagSet, o *options, name string)
}

// flagDefs are every flag of every command, by name.
var flagDefs = map[string]flagDef{
	"addr": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.addr, n, "127.0.0.1:8080", "listen address")
	}},
	"store": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.store, n, "sqlite:latchkey.db", "store: sqlite:PATH, postgres://…, redis://host:port/DB, redis-cluster://host:port,…")
	}},
	"store-pool": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.IntVar(&o.storePool, n, 0, "connections per store node for PostgreSQL and Redis (0 = 16 for PostgreSQL unless the URL sets pool_max_conns, go-redis's default for Redis)")
	}},
	"issuer": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.issuer, n, "", "\"iss\" of access tokens (default http://ADDR)")
	}},
	"audience": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.audience, n, "latchkey", "\"aud\" of access tokens")
	}},
	"signing-alg": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.signingAlg, n, keys.Algorithms()[0], "one of "+strings.Join(keys.Algorithms(), ", "))
	}},
	"access-ttl": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.accessTTL, n, latchkey.DefaultAccessTTL, "access token lifetime")
	}},
	"refresh-ttl": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.refreshTTL, n, latchkey.DefaultRefreshTTL, "refresh idle timeout (slides with each refresh unless locked)")
	}},
	"session-lifetime": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.sessionLifetime, n, latchkey.DefaultSessionLifetime, "absolute session lifetime (never slides)")
	}},
	"locked-expiry": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.lockedExpiry, n, false, "fix the refresh expiry at login")
	}},
	"reuse-grace": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.reuseGrace, n, latchkey.DefaultReuseGrace, "window in which a just-rotated refresh token yields the same new token (0s disables)")
	}},
	"bind-access": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.bindAccess, n, false, "refresh also requires the session's access token")
	}},
	"token-locations": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.tokenLocations, n, "headers,cookies,json", "where tokens are read from: headers, cookies, json, query")
	}},
	"cookie-secure": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.cookieSecure, n, true, "Secure cookies with the __Host- prefix (false for plain-http development)")
	}},
	"csrf": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.csrf, n, true, "double-submit CSRF check for cookie-authenticated unsafe requests")
	}},
	"registration": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.registration, n, true, "open POST /register")
	}},
	"revocation-delay": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.revocationDelay, n, latchkey.DefaultRevocationDelay, "most time before a revoked session's access tokens are refused on every node")
	}},
	"leeway": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.leeway, n, 0, "clock skew tolerated on exp/nbf")
	}},
	"demo": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.demo, n, false, "create the user test/test and the public OAuth client demo at start if missing")
	}},
	"trusted-proxies": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.trustedProxies, n, "", "comma-separated addresses or CIDR prefixes of proxies whose X-Forwarded-For is believed (default none)")
	}},
	"memory-policy": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.memoryPolicy, n, "auto", "garbage-collector policy: auto (GOGC=200 and a soft memory limit, unless GOGC or GOMEMLIMIT is set) or off")
	}},
	"audit-log": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.auditLog, n, "", "also write audit events as JSON lines to this file (- for standard output)")
	}},
	"audit-retention": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.auditRetention, n, audit.DefaultRetention, "how long the store keeps audit events")
	}},
	"max-sessions": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.IntVar(&o.maxSessions, n, latchkey.DefaultMaxSessions, "live sessions per user; a login beyond it ends the least recently used (0: no cap)")
	}},
	"user": {false, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.user, n, "", "only this user's events")
	}},
	"since": {false, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.since, n, 0, "only events of this last while (e.g. 24h; default all)")
	}},
	"json": {false, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.json, n, false, "JSON lines instead of a table")
	}},
	"provider": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.Func(n, "an OpenID Connect provider: NAME=ISSUER_URL,client_id=ID[,client_id=ID2][,client_secret=…|client_secret_file=PATH][,leeway=DUR] (repeatable; several in one value separated by ';')", func(v string) error {
			for _, one := range strings.Split(v, ";") {
				if strings.TrimSpace(one) == "" {
					continue
				}
				c, err := provider.ParseFlag(strings.TrimSpace(one))
				if err != nil {
					return err
				}
				o.providers = append(o.providers, c)
			}
			return nil
		})
	}},
	"provider-signup": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.providerSignup, n, "", "a first sign-in with an identity no account is linked to creates an account: true or false (default: as --registration)")
	}},
	"request-log": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.requestLog, n, "all", "which requests get a log line: all, failed (status 400 or more) or off; server-side failures are always logged")
	}},
	"metrics-addr": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.metricsAddr, n, "", "serve Prometheus /metrics on this separate address, e.g. 127.0.0.1:9464 (default off)")
	}},
	"cors-origins": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.corsOrigins, n, "", "comma-separated browser origins allowed to call the API from script, with credentials: exact scheme://host[:port], e.g. https://app.example.com (default none)")
	}},
	"dpop-required": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.dpopRequired, n, false, "require a DPoP proof (RFC 9449): serve, with every sign-in on /login (cookie sign-ins exempt); clients add, with each of the client's token requests")
	}},
	"dpop-nonce": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.dpopNonce, n, true, "require the server's DPoP-Nonce in the proofs of /login, /refresh and /oauth/token")
	}},
	"dpop-max-age": {true, func(fs *flag.FlagSet, o *options, n string) {
		fs.DurationVar(&o.dpopMaxAge, n, dpop.DefaultMaxAge, "how long after its iat a DPoP proof is accepted, and its jti remembered (at most 10m)")
	}},
	"force": {false, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.force, n, false, "promote the next key even if it was published less than 2 minutes ago")
	}},
	"confidential": {false, func(fs *flag.FlagSet, o *options, n string) {
		fs.BoolVar(&o.confidential, n, false, "a confidential client, with a secret printed once")
	}},
	"client-name": {false, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.clientName, n, "", "a description of the client")
	}},
	"origin": {false, func(fs *flag.FlagSet, o *options, n string) {
		fs.StringVar(&o.clientOrigin, n, "", "comma-separated browser origins whose pages may call the OAuth endpoints as this client, without cookies: exact scheme://host[:port] (default none)")
	}},
}

// Memory policies of serve (--memory-policy).
const (
	memoryAuto = "auto" // serveMemory unless GOGC or GOMEMLIMIT is set
	memoryOff  = "off"  // Go's own settings, whatever they are
)

// finish validates what flag parsing cannot, for the flags fs defines.
func (o *options) finish(fs *flag.FlagSet, getenv func(string) string) error {
	defined := func(name string) bool { return fs.Lookup(name) != nil }
	if defined("token-locations") {
		locs, err := httpauth.ParseLocations(strings.Split(o.tokenLocations, ","))
		if err != nil {
			return usageError{err.Error()}
		}
		o.locations = locs
	}
	if defined("trusted-proxies") {
		var err error
		if o.proxies, err = httpauth.ParseTrustedProxies(o.trustedProxies); err != nil {
			return usagef("--trusted-proxies: %v", err)
		}
	}
	if defined("cors-origins") {
		var err error
		if o.origins, err = server.ParseCORSOrigins(o.corsOrigins); err != nil {
			return usagef("--cors-origins: %v", err)
		}
	}
	if defined("origin") {
		var err error
		if o.clientOrigins, err = origin.ParseList(o.clientOrigin); err != nil {
			return usagef("--origin: %v", err)
		}
	}
	if o.storePool < 0 || o.storePool > 10000 {
		return usagef("--store-pool %d is outside 0..10000", o.storePool)
	}
	if defined("reuse-grace") && o.reuseGrace == 0 {
		o.reuseGrace = -1 // an explicit 0s disables the window
	}
	if defined("request-log") {
		var err error
		if o.requestLogLevel, err = server.ParseRequestLog(o.requestLog); err != nil {
			return usagef("--request-log %v", err)
		}
	}
	if defined("memory-policy") && o.memoryPolicy != memoryAuto && o.memoryPolicy != memoryOff {
		return usagef("--memory-policy %q: want %s or %s", o.memoryPolicy, memoryAuto, memoryOff)
	}
	if o.providerSignup != "" {
		if _, err := strconv.ParseBool(o.providerSignup); err != nil {
			return usagef("--provider-signup %q: want true or false", o.providerSignup)
		}
	}
	o.secretEnv = getenv("LATCHKEY_SECRET")
	return nil
}

// signup is the effective --provider-signup.
func (o *options) signup() bool {
	if b, err := strconv.ParseBool(o.providerSignup); err == nil {
		return b
	}
	return o.registration
}

// storeOpeners maps a --store scheme to its backend.
var storeOpeners = map[string]func(ctx context.Context, dsn string, pool int) (store.Store, error){
	"sqlite": func(ctx context.Context, dsn string, _ int) (store.Store, error) {
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	},
	"postgres": func(ctx context.Context, dsn string, pool int) (store.Store, error) {
		return postgres.Open(ctx, dsn, postgres.Options{MaxConns: int32(pool)})
	},
	"redis":         openRedis,
	"redis-cluster": openRedis,
}

func openRedis(ctx context.Context, dsn string, pool int) (store.Store, error) {
	return redis.Open(ctx, dsn, redis.Options{PoolSize: pool})
}

// storeScheme returns the backend name of a --store value.
func storeScheme(dsn string) (string, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		if strings.TrimPrefix(dsn, "sqlite:") == "" {
			return "", usagef("--store sqlite: needs a file path, e.g. sqlite:latchkey.db")
		}
		return "sqlite", nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", nil
	case strings.HasPrefix(dsn, "redis://"):
		return "redis", nil
	case strings.HasPrefix(dsn, "redis-cluster://"):
		return "redis-cluster", nil
	}
	return "", usagef("--store %q: want sqlite:PATH, postgres://…, redis://… or redis-cluster://…", redact(dsn))
}

func openStore(ctx context.Context, scheme, dsn string, pool int) (store.Store, error) {
	open, ok := storeOpeners[scheme]
	if !ok {
		return nil, fmt.Errorf("the %s store is not available in this build", scheme)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := open(ctx, dsn, pool)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", redact(dsn), err)
	}
	return st, nil
}

// redact hides the password of a connection URL, in its user part or its
// query (postgres://…?password=…).
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	// Not a URL with an authority: e.g. redis-cluster://host:port,host:port,
	// or user:password@host with the scheme forgotten.
	if err != nil || u.Opaque != "" {
		head, rest, ok := strings.Cut(dsn, "://")
		if ok {
			head += "://"
		} else {
			head, rest = "", dsn
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = "xxxxx@" + rest[at+1:]
		}
		// Whatever follows may be parameters, the user part having
		// swallowed the '?' (as in ?x@&password=…).
		if i := strings.IndexAny(rest, "?&#"); i >= 0 {
			rest = rest[:i] + "?…"
		}
		return head + rest
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// secret returns the deployment secret: LATCHKEY_SECRET, or on SQLite a secret
// generated once and kept in a mode-0600 file beside the database. A shared
// store refuses to start without LATCHKEY_SECRET: every node must share it.
func (o *options) secret(scheme string, log *slog.Logger) ([]byte, error) {
	if o.secretEnv != "" {
		s, err := latchkey.ParseSecret(o.secretEnv)
		if err != nil {
			return nil, fmt.Errorf("LATCHKEY_SECRET: %w", err)
		}
		return s, nil
	}
	if scheme != "sqlite" {
		return nil, errors.New("LATCHKEY_SECRET is required with a shared store: set it to the same `openssl rand -base64 32` value on every node")
	}
	path := strings.TrimPrefix(o.store, "sqlite:") + ".secret"
	s, created, err := secretFile(path)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("generated a deployment secret; keep it private and back it up with the database", "file", path)
	}
	return s, nil
}

// secretFile reads the secret kept in path, creating it atomically (so two
// processes starting together agree) if it does not exist.
func secretFile(path string) (secret []byte, created bool, err error) {
	read := func() ([]byte, error) {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("secret file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		s, err := latchkey.ParseSecret(string(b))
		if err != nil {
			return nil, fmt.Errorf("secret file %s: %w", path, err)
		}
		return s, nil
	}
	if s, err := read(); !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tmp, err := writePrivate(filepath.Dir(path), base64.StdEncoding.EncodeToString(raw)+"\n")
	if err != nil {
		return nil, false, fmt.Errorf("creating the secret file: %w", err)
	}
	defer os.Remove(tmp)
	// Link fails if another process won the race; then its secret is the one.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			s, err := read()
			return s, false, err
		}
		return nil, false, fmt.Errorf("creating the secret file: %w", err)
	}
	return raw, true, nil
}

// authConfig is the library configuration these options describe.
func (o *options) authConfig(st store.Store, secret []byte, issuer string, log *slog.Logger) latchkey.Config {
	return latchkey.Config{
		Store:           st,
		Secret:          secret,
		Issuer:          issuer,
		Audience:        o.audience,
		SigningAlg:      o.signingAlg,
		AccessTTL:       o.accessTTL,
		RefreshTTL:      o.refreshTTL,
		SessionLifetime: o.sessionLifetime,
		LockedExpiry:    o.lockedExpiry,
		ReuseGrace:      o.reuseGrace,
		BindAccess:      o.bindAccess,
		RevocationDelay: o.revocationDelay,
		Leeway:          o.leeway,
		MaxSessions:     maxSessions(o.maxSessions),
		Logger:          log,
		Observer:        observer(o.observers),
	}
}

// maxSessions is the library's MaxSessions for --max-sessions: 0 is no cap.
func maxSessions(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// observer tells each of os, or is nil when there are none (so that Auth
// does not time its store calls for nobody).
func observer(os []latchkey.Observer) latchkey.Observer {
	if len(os) == 0 {
		return nil
	}
	return latchkey.Observers(os...)
}

// writePrivate writes content to a new mode-0600 temporary file in dir and
// returns its name.
func writePrivate(dir, content string) (string, error) {
	f, err := os.CreateTemp(dir, ".latchkey-secret-*")
	if err != nil {
		return "", err
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

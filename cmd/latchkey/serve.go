package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/memlimit"
	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/users"
)

// shutdownGrace is how long in-flight requests get to finish after a signal.
const shutdownGrace = 10 * time.Second

// env is what every command opens: the store, and what it needs the secret for.
type env struct {
	log     *slog.Logger
	store   store.Store
	auth    *latchkey.Auth
	users   *users.Service
	clients *oauth.Clients
}

// open opens the store and, with the secret, the Auth; issuer "" keeps the
// default. admin opens it for an administrative command.
func (o *options) open(ctx context.Context, log *slog.Logger, issuer string, admin bool) (*env, error) {
	scheme, err := storeScheme(o.store)
	if err != nil {
		return nil, err
	}
	secret, err := o.secret(scheme, log) // a missing secret fails before any connection
	if err != nil {
		return nil, err
	}
	if !admin && o.issuerDefaulted && scheme != "sqlite" {
		return nil, usagef("--issuer is required with a shared store: every node must put the same iss in its tokens")
	}
	st, err := openStore(ctx, scheme, o.store, o.storePool)
	if err != nil {
		return nil, err
	}
	cfg := o.authConfig(st, secret, issuer, log)
	cfg.AdminTool = admin
	a, err := latchkey.New(ctx, cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	// The server and the admin commands need the accounts and clients roles
	// besides the core; every built-in backend offers both.
	accounts, ok1 := st.(store.Users)
	clientStore, ok2 := st.(store.Clients)
	if !ok1 || !ok2 {
		a.Close()
		st.Close()
		return nil, fmt.Errorf("the %s store does not keep users and OAuth clients", scheme)
	}
	u, err := users.New(users.Config{Store: accounts})
	if err != nil {
		a.Close()
		st.Close()
		return nil, err
	}
	return &env{log: log, store: st, auth: a, users: u, clients: oauth.New(clientStore, nil)}, nil
}

func (e *env) close() {
	e.auth.Close()
	e.store.Close()
}

// startProviders makes the configured providers and fetches their
// documents in the background: a provider that is down does not stop the
// server, whose sign-ins with it will retry.
func startProviders(ctx context.Context, cfgs []provider.Config, log *slog.Logger) ([]*provider.Provider, error) {
	var out []*provider.Provider
	for _, c := range cfgs {
		p, err := provider.New(c, provider.Options{Logger: log})
		if err != nil {
			return nil, usageError{err.Error()}
		}
		log.Info("provider configured", "provider", c.String())
		go p.Warm(context.WithoutCancel(ctx))
		out = append(out, p)
	}
	return out, nil
}

// serve runs the token server until ctx is cancelled; getenv is read for GOGC
// and GOMEMLIMIT, which take over from its memory policy.
func serve(ctx context.Context, o *options, getenv func(string) string, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	apply, why := memoryPolicy(o.memoryPolicy, getenv)
	log.Info(why, "memory_policy", o.memoryPolicy)
	if apply {
		defer memlimit.Follow(serveMemory)()
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.addr, err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	issuer := o.issuer
	if issuer == "" {
		issuer = "http://" + addr
		o.issuerDefaulted = true
	}
	e, err := o.open(ctx, log, issuer, false)
	if err != nil {
		return err
	}
	defer e.close()
	if o.demo {
		if _, created, err := e.users.Ensure(ctx, "test", "test"); err != nil {
			return fmt.Errorf("creating the demo user: %w", err)
		} else if created {
			log.Info("demo user created", "username", "test")
		}
		if created, err := e.clients.Ensure(ctx, "demo", "the demo public client"); err != nil {
			return fmt.Errorf("registering the demo client: %w", err)
		} else if created {
			log.Info("demo OAuth client registered", "client_id", "demo")
		}
	}
	providers, err := startProviders(ctx, o.providers, log)
	if err != nil {
		return err
	}
	markers, _ := e.store.(store.Markers)
	if len(providers) > 0 && markers == nil {
		return fmt.Errorf("the %s store keeps no single-use markers, which --provider needs", redact(o.store))
	}
	srv, err := server.New(server.Config{
		Providers:      providers,
		ProviderSignup: o.signup(),
		Markers:        markers,
		Auth:           e.auth,
		Users:          e.users,
		Clients:        e.clients,
		Middleware: httpauth.Config{Locations: o.locations, InsecureCookies: !o.cookieSecure,
			DisableCSRF: !o.csrf},
		Registration:   o.registration,
		TrustedProxies: o.proxies,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	hs := server.HTTPServer(addr, srv.Handler(), log)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("latchkey listening", "addr", "http://"+addr, "store", redact(o.store), "issuer", issuer, "signing_alg", o.signingAlg)
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/logwriter"
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
	// audit records security events when the store keeps them (nil
	// otherwise); admin commands record their changes through it.
	audit      *audit.Recorder
	auditStore store.Audit
	closeLines func() error
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
	rec, auditStore, closeLines, err := o.openAudit(st, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	if rec != nil {
		o.observers = append(o.observers, rec)
	}
	cfg := o.authConfig(st, secret, issuer, log)
	cfg.AdminTool = admin
	a, err := latchkey.New(ctx, cfg)
	if err != nil {
		closeAudit(rec, closeLines)
		st.Close()
		return nil, err
	}
	// The server and the admin commands need the accounts and clients roles
	// besides the core; every built-in backend offers both.
	accounts, ok1 := st.(store.Users)
	clientStore, ok2 := st.(store.Clients)
	if !ok1 || !ok2 {
		a.Close()
		closeAudit(rec, closeLines)
		st.Close()
		return nil, fmt.Errorf("the %s store does not keep users and OAuth clients", scheme)
	}
	u, err := users.New(users.Config{Store: accounts})
	if err != nil {
		a.Close()
		closeAudit(rec, closeLines)
		st.Close()
		return nil, err
	}
	return &env{log: log, store: st, auth: a, users: u, clients: oauth.New(clientStore, nil),
		audit: rec, auditStore: auditStore, closeLines: closeLines}, nil
}

// openAudit makes the audit recorder: events kept in the store (when it
// offers store.Audit) and, for serve, written to --audit-log.
func (o *options) openAudit(st store.Store, log *slog.Logger) (*audit.Recorder, store.Audit, func() error, error) {
	auditStore, _ := st.(store.Audit)
	var lines io.Writer
	closeLines := func() error { return nil }
	switch o.auditLog {
	case "":
	case "-":
		lines = os.Stdout
	default:
		f, err := os.OpenFile(o.auditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--audit-log: %w", err)
		}
		lines, closeLines = f, f.Close
	}
	if auditStore == nil && lines == nil {
		return nil, nil, closeLines, nil
	}
	return audit.New(audit.Config{Store: auditStore, Lines: lines, Retention: o.auditRetention, Logger: log}), auditStore, closeLines, nil
}

// closeAudit flushes the recorder and closes the audit log.
func closeAudit(rec *audit.Recorder, closeLines func() error) {
	if rec != nil {
		rec.Close()
	}
	if closeLines != nil {
		closeLines()
	}
}

// record records an operator's change, if events are kept.
func (e *env) record(ev store.Event) {
	if e.audit != nil {
		if ev.Actor == "" {
			ev.Actor = "admin"
		}
		e.audit.Record(ev)
	}
}

func (e *env) close() {
	e.auth.Close()
	closeAudit(e.audit, e.closeLines)
	e.store.Close()
}

// auditObserver is the recorder as the server's observer, or nil.
func auditObserver(rec *audit.Recorder) latchkey.Observer {
	if rec == nil {
		return nil
	}
	return rec
}

// purgeAudit deletes events older than the retention, hourly, until ctx ends.
func purgeAudit(ctx context.Context, rec *audit.Recorder, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := rec.Purge(ctx); err != nil {
			log.Warn("purging old audit events failed", "err", err)
		} else if n > 0 {
			log.Info("purged old audit events", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
	// Lines gather in a buffer and go out in one write per batch: a write
	// call per request line was a tenth of /protected's CPU.
	lines := logwriter.New(stderr)
	defer lines.Close()
	log := slog.New(slog.NewTextHandler(lines, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
	ms, err := listenMetrics(o.metricsAddr)
	if err != nil {
		return err
	}
	defer ms.shutdown(context.Background())
	ms.observe(o)
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
	var shared store.Buckets
	if scheme, _ := storeScheme(o.store); scheme != "sqlite" {
		shared, _ = e.store.(store.Buckets) // one budget for every node
	}
	if e.audit != nil {
		go purgeAudit(ctx, e.audit, log)
	}
	srv, err := server.New(server.Config{
		SharedLimits:   shared,
		Audit:          e.auditStore,
		Observer:       auditObserver(e.audit),
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
		CORSOrigins:    o.origins,
		DPoP:           server.DPoPConfig{Required: o.dpopRequired, NoNonce: !o.dpopNonce, MaxAge: o.dpopMaxAge},
		Metrics:        ms.serverMetrics(),
		Logger:         log,
		RequestLog:     o.requestLogLevel,
	})
	if err != nil {
		return err
	}
	hs := server.HTTPServer(addr, srv.Handler(), log)
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	ms.serve(e.auth, log, errc)
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
	ms.shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

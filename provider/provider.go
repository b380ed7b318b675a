// Package provider signs users in with other identity providers: it verifies
// OpenID Connect ID tokens from an issuer the operator configured, and runs
// the browser's authorization-code flow with PKCE.
//
// Discovery and ID-token verification are go-oidc's (github.com/coreos/go-oidc);
// the code flow is golang.org/x/oauth2's. This package adds what they leave to
// the caller:
//
//   - fetching with a timeout and a size limit, caching the discovery document
//     and the JWKS for as long as their HTTP cache headers say (within a
//     minute and a day), refetching the JWKS on an unknown kid at most once per
//     five seconds, and keeping cached keys in use while the provider is down;
//   - an allow-list of asymmetric algorithms (never "none", never HMAC) and
//     public keys only, RSA of 2048 bits or more;
//   - "aud" one of several client ids and "azp" when there are several
//     audiences, "exp", "iat" and "nbf" with a leeway, and the nonce in either
//     form native SDKs use (the value, or the hex SHA-256 of it);
//   - errors that say which check failed, as latchkey.ErrInvalidToken, and
//     latchkey.ErrUnavailable when the provider cannot be reached and nothing
//     is cached.
//
// A token that passes is not yet a sign-in: it is single use, and the caller
// records Claims.ReplayKey in a store shared by every node (store.Markers)
// before it opens a session.
package provider

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey"
)

// MaxTokenBytes bounds an ID token; real ones are one or two kilobytes.
const MaxTokenBytes = 16 << 10

// Options are what a Provider takes from its host rather than its operator.
type Options struct {
	// Transport makes the HTTP requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives a warning when the provider cannot be reached; nil
	// discards it.
	Logger *slog.Logger
}

// Provider is one configured OpenID Connect provider. It is safe for
// concurrent use.
type Provider struct {
	cfg       Config
	algs      []jose.SignatureAlgorithm
	now       func() time.Time
	log       *slog.Logger
	transport *limitedTransport
	client    *http.Client

	discovering flight // fetches of the discovery document
	mu          sync.Mutex
	disc        *discovery
	expires     time.Time // when disc goes stale
}

// discovery is what the discovery document says.
type discovery struct {
	op       *oidc.Provider
	verifier *oidc.IDTokenVerifier
	keys     *keySet
	pkce     bool // code_challenge_methods_supported lists S256
}

// New returns the provider of cfg. It checks cfg but makes no request: a
// provider that is down does not stop a server from starting.
func New(cfg Config, o Options) (*Provider, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Provider{cfg: cfg, now: o.Now, log: o.Logger}
	for _, a := range cfg.Algorithms {
		p.algs = append(p.algs, jose.SignatureAlgorithm(a))
	}
	p.transport = &limitedTransport{base: o.Transport, now: o.Now, ttls: map[string]time.Duration{}}
	p.client = &http.Client{Transport: p.transport, Timeout: fetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			// A redirect must not downgrade a fetch to plain http.
			return checkFetchURL(req.URL.String())
		}}
	return p, nil
}

// Name is the provider's configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Issuer is the provider's configured issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Warm fetches the discovery document and the keys, so the first sign-in
// does not wait for them. A failure is logged, not returned: requests will
// try again.
func (p *Provider) Warm(ctx context.Context) {
	d, err := p.current(ctx)
	if err != nil {
		p.log.Warn("provider unreachable at start; sign-ins with it will retry", "provider", p.cfg.Name, "err", err)
		return
	}
	if _, err := d.keys.keysFor(ctx, ""); err != nil {
		p.log.Warn("provider keys unreachable at start; sign-ins with it will retry", "provider", p.cfg.Name, "err", err)
	}
}

// current returns the discovery document: the cached one, refreshed in the
// background when stale; fetched when there is none, waiting at most as long
// as ctx.
func (p *Provider) current(ctx context.Context) (*discovery, error) {
	p.mu.Lock()
	d, stale := p.disc, !p.now().Before(p.expires)
	p.mu.Unlock()
	if d != nil {
		if stale {
			p.discovering.start(p.now, p.discover)
		}
		return d, nil
	}
	err := p.discovering.wait(ctx, p.discovering.start(p.now, p.discover))
	p.mu.Lock()
	d = p.disc
	p.mu.Unlock()
	if d == nil {
		if err == nil {
			err = errors.New("discovery failed moments ago")
		}
		return nil, unavailable(p.cfg.Name, err)
	}
	return d, nil
}

// discover fetches the discovery document. On failure a document fetched
// before stays in use.
func (p *Provider) discover() error {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.cfg.Issuer)
	if err != nil {
		p.log.Warn("provider discovery failed", "provider", p.cfg.Name, "err", err)
		return err
	}
	var meta struct {
		JWKSURI string   `json:"jwks_uri"`
		PKCE    []string `json:"code_challenge_methods_supported"`
	}
	ep := op.Endpoint()
	if err := op.Claims(&meta); err != nil || checkFetchURL(meta.JWKSURI) != nil || checkFetchURL(ep.TokenURL) != nil ||
		(ep.AuthURL != "" && checkFetchURL(ep.AuthURL) != nil) {
		err = fmt.Errorf("the discovery document's jwks_uri, token_endpoint or authorization_endpoint is not https (%q, %q, %q)", meta.JWKSURI, ep.TokenURL, ep.AuthURL)
		p.log.Warn("provider discovery failed", "provider", p.cfg.Name, "err", err)
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := &keySet{p: p, uri: meta.JWKSURI}
	if p.disc != nil && p.disc.keys.uri == meta.JWKSURI {
		keys = p.disc.keys // keep the cached keys
	}
	d := &discovery{op: op, keys: keys, pkce: slices.Contains(meta.PKCE, "S256")}
	d.verifier = oidc.NewVerifier(p.cfg.Issuer, keys, &oidc.Config{
		SupportedSigningAlgs: p.cfg.Algorithms,
		// Audience (one of several ids, azp) and times (with a leeway) are
		// checked in Verify; go-oidc checks the signature and the issuer.
		SkipClientIDCheck: true,
		SkipExpiryCheck:   true,
	})
	p.disc, p.expires = d, p.now().Add(p.transport.ttl(strings.TrimSuffix(p.cfg.Issuer, "/")+"/.well-known/openid-configuration"))
	return nil
}

// checkFetchURL accepts the URLs a discovery document (or a redirect) may
// send us to: absolute https, or http on a loopback host, without user info.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.User != nil:
		return fmt.Errorf("%q is not an absolute URL without user info", raw)
	case u.Scheme == "https", u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q is not https", raw)
}

// Claims are what a verified ID token says about its user.
type Claims struct {
	Provider      string // the configured name
	Issuer        string // the configured issuer: with Subject, what names the identity
	Subject       string
	Email         string // for display only: never used to find or link an account
	EmailVerified bool
	Name          string
	Expiry        time.Time
	// ReplayKey names this token for single use: the SHA-256 of the provider
	// and the token's signed header and payload, which no re-encoding of the
	// signature changes.
	ReplayKey string
	// ReplayUntil is when the token stops being accepted anyway (its exp plus
	// the leeway): how long its replay key must be remembered.
	ReplayUntil time.Time
}

// idClaims are the claims Verify reads beyond go-oidc's.
type idClaims struct {
	Issuer        string          `json:"iss"`
	Subject       string          `json:"sub"`
	Audience      audience        `json:"aud"`
	AZP           string          `json:"azp"`
	Expiry        *jsonTime       `json:"exp"`
	IssuedAt      *jsonTime       `json:"iat"`
	NotBefore     *jsonTime       `json:"nbf"`
	Nonce         *string         `json:"nonce"`
	Email         string          `json:"email"`
	EmailVerified flexibleBoolean `json:"email_verified"`
	Name          string          `json:"name"`
}

// Verify checks rawIDToken and returns its claims. nonce is what the caller
// sent with it ("" for none): the token's nonce must then be absent, or be
// the nonce or its hex SHA-256. Errors are latchkey.ErrInvalidToken with a
// message naming the failed check, or latchkey.ErrUnavailable.
func (p *Provider) Verify(ctx context.Context, rawIDToken, nonce string) (Claims, error) {
	return p.verify(ctx, rawIDToken, nonce, p.cfg.RawNonce)
}

// verify is Verify with the nonce compared as it is (raw) or hashed.
func (p *Provider) verify(ctx context.Context, rawIDToken, nonce string, raw bool) (Claims, error) {
	signed, pre, err := p.precheck(rawIDToken)
	if err != nil {
		return Claims{}, err
	}
	d, err := p.current(ctx)
	if err != nil {
		return Claims{}, err
	}
	f := &failure{}
	vctx := context.WithValue(oidc.ClientContext(ctx, p.client), failureKey{}, f)
	tok, err := d.verifier.Verify(vctx, rawIDToken)
	if err != nil {
		if f.err != nil {
			return Claims{}, f.err
		}
		return Claims{}, latchkey.ErrInvalidToken.WithMessage("The ID token failed verification.").WithCause(err)
	}
	var c idClaims
	if err := tok.Claims(&c); err != nil {
		return Claims{}, invalid("The ID token's claims are not valid JSON of the expected types.")
	}
	if c.Issuer != pre.Issuer {
		return Claims{}, invalid("The ID token's issuer changed between reads.")
	}
	if err := p.checkClaims(c, nonce, raw); err != nil {
		return Claims{}, err
	}
	sum := sha256.Sum256([]byte(p.cfg.Name + "\x00" + signed))
	return Claims{Provider: p.cfg.Name, Issuer: p.cfg.Issuer, Subject: c.Subject, Email: c.Email, EmailVerified: bool(c.EmailVerified), Name: c.Name,
		Expiry: c.Expiry.Time(), ReplayKey: "idt:" + hex.EncodeToString(sum[:]), ReplayUntil: c.Expiry.Time().Add(p.cfg.Leeway)}, nil
}

// checkClaims checks audience, times, subject and nonce.
func (p *Provider) checkClaims(c idClaims, nonce string, raw bool) error {
	now := p.now()
	ours := func(id string) bool { return slices.Contains(p.cfg.ClientIDs, id) }
	switch {
	case c.Subject == "" || len(c.Subject) > 255:
		return invalid("The ID token has no subject, or one longer than 255 bytes.")
	case !slices.ContainsFunc(c.Audience, ours):
		return invalid("The ID token's audience names none of this server's client ids at the provider.")
	case len(c.Audience) > 1 && c.AZP == "":
		return invalid("The ID token has several audiences and no authorized party (azp).")
	case c.AZP != "" && !ours(c.AZP):
		return invalid("The ID token's authorized party (azp) is not one of this server's client ids.")
	case c.Expiry == nil:
		return invalid("The ID token has no expiry (exp).")
	case !now.Before(c.Expiry.Time().Add(p.cfg.Leeway)):
		return invalid("The ID token has expired.")
	case c.IssuedAt == nil:
		return invalid("The ID token has no issue time (iat).")
	case c.IssuedAt.Time().After(now.Add(p.cfg.Leeway)):
		return invalid("The ID token was issued in the future (iat); check the clocks.")
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(p.cfg.Leeway)):
		return invalid("The ID token is not valid yet (nbf).")
	}
	return checkNonce(c.Nonce, nonce, raw)
}

// checkNonce compares the token's nonce with the caller's: equal (raw), or
// the hex SHA-256 of the caller's (what Apple's and Google's native SDKs put
// in the token when the app hands them the hash). A token with a nonce needs
// the caller's, and a caller's nonce needs one in the token.
func checkNonce(inToken *string, sent string, raw bool) error {
	switch {
	case inToken == nil && sent == "":
		return nil
	case inToken == nil:
		return invalid("A nonce was sent but the ID token has none.")
	case sent == "":
		return invalid("The ID token carries a nonce: send the nonce it was requested with.")
	}
	got, want := *inToken, sent
	if !raw {
		sum := sha256.Sum256([]byte(sent))
		got, want = strings.ToLower(got), hex.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return invalid("The nonce does not match the ID token's.")
	}
	return nil
}

// AuthCodeURL is where a browser goes to sign in at the provider: the
// authorization-code flow with PKCE (S256), state and nonce. redirectURI is
// this server's callback.
func (p *Provider) AuthCodeURL(ctx context.Context, redirectURI, state, nonce, verifier string) (string, error) {
	d, err := p.current(ctx)
	if err != nil {
		return "", err
	}
	return p.codeFlow(d, redirectURI).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), nil
}

// Redirects reports whether the browser flow can run with this provider: it
// has a client secret, or it is public and the provider supports PKCE S256.
// It answers from the cached discovery document without waiting; when there
// is none yet it starts fetching it in the background (at most once per few
// seconds), so a provider that was down at start appears once it is back.
func (p *Provider) Redirects() bool {
	if p.cfg.ClientSecret != "" {
		return true
	}
	p.mu.Lock()
	d := p.disc
	p.mu.Unlock()
	if d == nil {
		p.discovering.start(p.now, p.discover)
	}
	return d != nil && d.pkce
}

// Exchange redeems an authorization code at the provider's token endpoint
// with the PKCE verifier and verifies the ID token that comes back against
// nonce.
func (p *Provider) Exchange(ctx context.Context, redirectURI, code, verifier, nonce string) (Claims, error) {
	d, err := p.current(ctx)
	if err != nil {
		return Claims{}, err
	}
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, p.client), fetchTimeout)
	defer cancel()
	tok, err := p.codeFlow(d, redirectURI).Exchange(cctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return Claims{}, invalid("The provider refused the authorization code.")
		}
		return Claims{}, unavailable(p.cfg.Name, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Claims{}, invalid("The provider's token response has no ID token.")
	}
	// The browser flow's nonce is this server's own, sent to the provider
	// as it is.
	return p.verify(ctx, raw, nonce, true)
}

func (p *Provider) codeFlow(d *discovery, redirectURI string) *oauth2.Config {
	return &oauth2.Config{ClientID: p.cfg.ClientIDs[0], ClientSecret: p.cfg.ClientSecret, Endpoint: d.op.Endpoint(),
		RedirectURL: redirectURI, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
}

func invalid(msg string) error { return latchkey.ErrInvalidToken.WithMessage(msg) }

func unavailable(name string, cause error) error {
	return latchkey.ErrUnavailable.WithMessage("The identity provider " + name + " cannot be reached; try again shortly.").
		WithCause(fmt.Errorf("provider %s: %w", name, cause))
}

package testop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Authorize logs username in at authURL, an authorization request that
// some other client built (for example latchkey's native-app login), the way
// a user agent would but over plain HTTP: it GETs authURL, follows the OP's
// redirect to its login page, submits the login form with the user's
// password, and follows the OP's redirects until one leaves the OP. It
// returns that URL, the client's redirect URI with ?code= and &state=,
// without requesting it. It fails the test (t.Fatal, so call it from the
// test's goroutine) if the user is unknown, the login is refused or the OP
// redirects with an error.
func (p *OP) Authorize(t testing.TB, authURL, username string) *url.URL {
	t.Helper()
	u, ok := p.users[username]
	if !ok {
		t.Fatalf("testop: no user %q", username)
	}
	loc, err := p.authorize(t.Context(), authURL, u.Username, u.Password)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// IDToken runs the authorization-code flow with PKCE (S256) for clientID
// and username against the OP over HTTP, as a native app would: it reads the
// discovery document, builds the authorization request (scopes "openid
// email profile", a random state, and nonce unless it is ""), logs in with
// [OP.Authorize], stops at the redirect to the client's first registered
// redirect URI (nothing needs to listen there), exchanges the code at the
// token endpoint (with the secret of a confidential client) and returns the
// id_token the OP issued. It fails the test (t.Fatal, so call it from the
// test's goroutine) on any error.
func (p *OP) IDToken(t testing.TB, clientID, username, nonce string) string {
	t.Helper()
	u, ok := p.users[username]
	if !ok {
		t.Fatalf("testop: no user %q", username)
	}
	tok, err := p.idToken(t.Context(), clientID, u.Username, u.Password, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (p *OP) httpClient() *http.Client {
	opHost := strings.TrimPrefix(p.issuer, "http://")
	return &http.Client{
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != opHost {
				return http.ErrUseLastResponse // the client's redirect URI
			}
			if len(via) >= 10 {
				return errors.New("testop: too many redirects")
			}
			return nil
		},
	}
}

var (
	formAction = regexp.MustCompile(`<form[^>]*\baction="([^"]*)"`)
	formID     = regexp.MustCompile(`<input type="hidden" name="id" value="([^"]*)">`)
	formError  = regexp.MustCompile(`<p id="error"[^>]*>([^<]*)</p>`)
)

// authorize is Authorize with an explicit password, returning errors.
func (p *OP) authorize(ctx context.Context, authURL, username, password string) (*url.URL, error) {
	hc := p.httpClient()
	get := func(u string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, err
		}
		return do(hc, req)
	}
	resp, body, err := get(authURL)
	if err != nil {
		return nil, fmt.Errorf("testop: authorization request: %w", err)
	}
	if loc, ok, err := leftOP(resp); ok {
		return loc, err // redirected to the client before any login
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != loginPath {
		return nil, fmt.Errorf("testop: authorization request: expected the login page, got %s at %s: %s", resp.Status, resp.Request.URL, body)
	}
	action, id := formAction.FindSubmatch(body), formID.FindSubmatch(body)
	if action == nil || id == nil {
		return nil, fmt.Errorf("testop: no login form in %s", body)
	}
	target, err := resp.Request.URL.Parse(html.UnescapeString(string(action[1])))
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"id":       {html.UnescapeString(string(id[1]))},
		"username": {username},
		"password": {password},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err = do(hc, req)
	if err != nil {
		return nil, fmt.Errorf("testop: submitting the login form: %w", err)
	}
	if loc, ok, err := leftOP(resp); ok {
		return loc, err
	}
	if m := formError.FindSubmatch(body); m != nil {
		return nil, fmt.Errorf("testop: login of %q refused (%s): %s", username, resp.Status, html.UnescapeString(string(m[1])))
	}
	return nil, fmt.Errorf("testop: after login: expected a redirect to the client, got %s at %s: %s", resp.Status, resp.Request.URL, body)
}

// do sends req and reads the whole body.
func do(hc *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

// leftOP reports whether resp redirects away from the OP, and where to; an
// error redirect (?error=) is returned with an error too.
func leftOP(resp *http.Response) (*url.URL, bool, error) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil, false, nil
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, true, fmt.Errorf("testop: redirect without a Location: %w", err)
	}
	// The query of a form_post or fragment response is not used here: the
	// clients of this package use the query response mode.
	if e := loc.Query().Get("error"); e != "" {
		return loc, true, fmt.Errorf("testop: the OP redirected with error %q: %s", e, loc.Query().Get("error_description"))
	}
	return loc, true, nil
}

// discovery is the part of the discovery document IDToken needs.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

func (p *OP) discover(ctx context.Context, hc *http.Client) (*discovery, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, err
	}
	resp, body, err := do(hc, req)
	if err != nil {
		return nil, fmt.Errorf("testop: discovery: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("testop: discovery: %s: %s", resp.Status, body)
	}
	var d discovery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("testop: discovery: %w", err)
	}
	return &d, nil
}

// idToken is IDToken with an explicit password, returning errors.
func (p *OP) idToken(ctx context.Context, clientID, username, password, nonce string) (string, error) {
	c, ok := p.clients[clientID]
	if !ok {
		return "", fmt.Errorf("testop: no client %q", clientID)
	}
	hc := p.httpClient()
	d, err := p.discover(ctx, hc)
	if err != nil {
		return "", err
	}
	cfg := oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   d.AuthorizationEndpoint,
			TokenURL:  d.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: c.RedirectURIs[0],
		Scopes:      []string{"openid", "email", "profile"},
	}
	if c.Secret == "" {
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams // client_id in the form
	}
	verifier, state := oauth2.GenerateVerifier(), randomID(16)
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if nonce != "" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", nonce))
	}
	loc, err := p.authorize(ctx, cfg.AuthCodeURL(state, opts...), username, password)
	if err != nil {
		return "", err
	}
	q := loc.Query()
	if got := q.Get("state"); got != state {
		return "", fmt.Errorf("testop: redirect %s: state %q, want %q", loc, got, state)
	}
	code := q.Get("code")
	if code == "" {
		return "", fmt.Errorf("testop: redirect %s has no code", loc)
	}
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, hc), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", fmt.Errorf("testop: token request: %w", err)
	}
	idt, _ := tok.Extra("id_token").(string)
	if idt == "" {
		return "", errors.New("testop: the token response has no id_token")
	}
	return idt, nil
}

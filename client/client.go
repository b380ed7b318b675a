// Package client is a Go client for a latchkey server: an http.RoundTripper
// that attaches the access token to every request, refreshes it shortly
// before it expires or when the server answers token_expired, and lets any
// number of goroutines share one session without ever racing themselves — all
// refreshes of one token collapse into a single request (single flight).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// UserAgent is the User-Agent header the Transport sends with its own
// refreshes and with requests that set none, so that a server's session list
// shows the session as "latchkey Go client" rather than Go's default
// "Go-http-client". A program that signs in itself (POST /login) may send it
// too.
const UserAgent = "latchkey-go-client/1"

// Token is a session's current pair.
type Token struct {
	AccessToken  string
	RefreshToken string
	Expiry       time.Time // of the access token
}

// Config configures a Transport.
type Config struct {
	// Server is the latchkey server's base URL (its /refresh is used). Required.
	Server string
	// Token is the pair to start from, e.g. from a login. Required.
	Token Token
	// Save, if set, is called with every new pair, to persist it (the old refresh
	// token is spent once Save is called).
	Save func(context.Context, Token) error
	// Base carries the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// RefreshBefore is how long before expiry the token is refreshed; default 30 s.
	RefreshBefore time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Transport is an http.RoundTripper for one latchkey session. It is safe for
// concurrent use.
type Transport struct {
	cfg   Config
	mu    sync.Mutex
	tok   Token
	group singleflight.Group
}

// ErrSessionEnded means the session can no longer be refreshed (expired,
// revoked or reused): the user has to sign in again.
var ErrSessionEnded = errors.New("client: the session has ended; sign in again")

// New returns a Transport for cfg.
func New(cfg Config) (*Transport, error) {
	if cfg.Server == "" || cfg.Token.RefreshToken == "" {
		return nil, errors.New("client: Config.Server and Config.Token.RefreshToken are required")
	}
	if cfg.Base == nil {
		cfg.Base = http.DefaultTransport
	}
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	return &Transport{cfg: cfg, tok: cfg.Token}, nil
}

// Token returns the current pair.
func (t *Transport) Token() Token {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tok
}

// RoundTrip sends req with the session's access token, refreshing first if the
// token is about to expire, and once more (then retrying req) if the server
// says it has expired.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok := t.Token()
	if tok.AccessToken == "" || !t.cfg.Now().Add(t.cfg.RefreshBefore).Before(tok.Expiry) {
		var err error
		if tok, err = t.refresh(req.Context(), tok); err != nil {
			return nil, err
		}
	}
	resp, err := t.send(req, tok)
	if err != nil || !expired(resp) || req.Body != nil && req.GetBody == nil {
		return resp, err
	}
	resp.Body.Close()
	if tok, err = t.refresh(req.Context(), tok); err != nil {
		return nil, err
	}
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = body
	}
	return t.send(req, tok)
}

func (t *Transport) send(req *http.Request, tok Token) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if _, ok := r.Header["User-Agent"]; !ok {
		r.Header.Set("User-Agent", UserAgent)
	}
	return t.cfg.Base.RoundTrip(r)
}

// expired reports whether resp refuses an expired access token.
func expired(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var e struct{ Error string }
	return err == nil && json.Unmarshal(b, &e) == nil && e.Error == "token_expired"
}

// refresh exchanges the refresh token of stale for a new pair, unless another
// goroutine already did; concurrent callers with the same stale pair share one
// request.
func (t *Transport) refresh(ctx context.Context, stale Token) (Token, error) {
	if cur := t.Token(); cur.RefreshToken != stale.RefreshToken {
		return cur, nil // someone refreshed meanwhile
	}
	v, err, _ := t.group.Do(stale.RefreshToken, func() (any, error) {
		if cur := t.Token(); cur.RefreshToken != stale.RefreshToken {
			return cur, nil
		}
		next, err := t.exchange(context.WithoutCancel(ctx), stale.RefreshToken)
		if err != nil {
			return Token{}, err
		}
		if t.cfg.Save != nil {
			if err := t.cfg.Save(ctx, next); err != nil {
				return Token{}, fmt.Errorf("client: saving the new token: %w", err)
			}
		}
		t.mu.Lock()
		t.tok = next
		t.mu.Unlock()
		return next, nil
	})
	if err != nil {
		return Token{}, err
	}
	return v.(Token), nil
}

// exchange calls POST /refresh.
func (t *Transport) exchange(ctx context.Context, refreshToken string) (Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.Server+"/refresh", nil)
	if err != nil {
		return Token{}, err
	}
	req.Header.Set("Authorization", "Bearer "+refreshToken)
	req.Header.Set("User-Agent", UserAgent)
	resp, err := t.cfg.Base.RoundTrip(req)
	if err != nil {
		return Token{}, fmt.Errorf("client: refresh: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresAt    int64  `json:"expires_at"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return Token{}, fmt.Errorf("client: refresh: status %d: %w", resp.StatusCode, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK && body.AccessToken != "" && body.RefreshToken != "":
		return Token{AccessToken: body.AccessToken, RefreshToken: body.RefreshToken, Expiry: time.Unix(body.ExpiresAt, 0)}, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return Token{}, fmt.Errorf("%w (%s)", ErrSessionEnded, body.Error)
	}
	return Token{}, fmt.Errorf("client: refresh: status %d %s", resp.StatusCode, body.Error)
}

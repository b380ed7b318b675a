// Package client is a Go client for a latchkey server: an http.RoundTripper
// that attaches the access token to every request, refreshes it shortly
// before it expires or when the server answers token_expired, and lets any
// number of goroutines share one session without ever racing themselves — all
// refreshes of one token collapse into a single request (single flight).
//
// Given a DPoP key (Config.Key, RFC 9449), the Transport proves possession of
// it on every request it makes: each refresh and each protected request
// carries a fresh proof, the access token goes as "Authorization: DPoP", the
// latest DPoP-Nonce of each server is remembered, and a request the server
// refuses with use_dpop_nonce is sent again, once, with the new nonce. Login
// starts a session bound to the key. Without a key the Transport sends Bearer
// tokens and no proofs.
package client

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/latchkey/latchkey/dpop"
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
	// Token is the pair to start from, e.g. from a login. Required by New;
	// Login fills it in.
	Token Token
	// Key, if set, is the DPoP key (RFC 9449) the session is bound to: every
	// refresh and every request carries a proof signed by it, and the access
	// token is sent with the DPoP scheme. It must be the key the session was
	// started with (Login does that); a session started without a key is a
	// Bearer session and must be used without one. See GenerateKey and
	// LoadOrCreateKey.
	Key crypto.Signer
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
	cfg    Config
	mu     sync.Mutex
	tok    Token
	nonces map[string]string // the latest DPoP-Nonce of each origin
	group  singleflight.Group
}

// ErrSessionEnded means the session can no longer be refreshed (expired,
// revoked or reused): the user has to sign in again.
var ErrSessionEnded = errors.New("client: the session has ended; sign in again")

// New returns a Transport for cfg.
func New(cfg Config) (*Transport, error) {
	if cfg.Server == "" || cfg.Token.RefreshToken == "" {
		return nil, errors.New("client: Config.Server and Config.Token.RefreshToken are required")
	}
	return newTransport(cfg)
}

func newTransport(cfg Config) (*Transport, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: Config.Server %q is not an http or https URL", cfg.Server)
	}
	if cfg.Key != nil {
		// Sign once now, so that a key NewProof cannot use is refused here
		// rather than on the first request.
		if _, err := dpop.NewProof(cfg.Key, dpop.Params{Method: "POST", URL: cfg.Server}); err != nil {
			return nil, fmt.Errorf("client: Config.Key: %w", err)
		}
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
	return &Transport{cfg: cfg, tok: cfg.Token, nonces: map[string]string{}}, nil
}

// Login signs username in at cfg.Server (POST /login) and returns a
// Transport for the new session, after passing its pair to cfg.Save. With
// cfg.Key set the session is bound to that key (token_type DPoP), the
// server's nonce being fetched on the way; cfg.Token is ignored. A wrong
// username or password is an error wrapping ErrInvalidCredentials.
func Login(ctx context.Context, cfg Config, username, password string) (*Transport, error) {
	if cfg.Server == "" {
		return nil, errors.New("client: Config.Server is required")
	}
	t, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return nil, err
	}
	tok, err := t.tokenRequest(ctx, "/login", body, "")
	if err != nil {
		return nil, err
	}
	if cfg.Save != nil {
		if err := cfg.Save(ctx, tok); err != nil {
			return nil, fmt.Errorf("client: saving the new token: %w", err)
		}
	}
	t.tok = tok
	return t, nil
}

// ErrInvalidCredentials means Login was given a wrong username or password.
var ErrInvalidCredentials = errors.New("client: wrong username or password")

// GenerateKey returns a new DPoP key (ECDSA P-256, ES256), for Config.Key.
// Keep it as long as the session: see LoadOrCreateKey.
func GenerateKey() (crypto.Signer, error) {
	return dpop.GenerateKey()
}

// LoadOrCreateKey returns the DPoP key kept in the file at path (a PKCS #8
// PEM block, or a private JSON Web Key, as dpop.ParseKey reads), creating the
// file with a new key, readable by its owner only, if it does not exist. The
// key is as secret as the refresh token: keep them together.
func LoadOrCreateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := dpop.ParseKey(b)
		if err != nil {
			return nil, fmt.Errorf("client: the key in %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("client: reading the key: %w", err)
	}
	k, err := dpop.GenerateKey()
	if err != nil {
		return nil, err
	}
	pemBytes, err := dpop.MarshalPEM(k)
	if err != nil {
		return nil, err
	}
	// O_EXCL: two processes starting at once do not overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("client: writing the key: %w", err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("client: writing the key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("client: writing the key: %w", err)
	}
	return k, nil
}

// Token returns the current pair.
func (t *Transport) Token() Token {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tok
}

// RoundTrip sends req with the session's access token, refreshing first if the
// token is about to expire, and once more (then retrying req) if the server
// says it has expired. With a DPoP key it also retries req once if the server
// asks for a new nonce. A request whose body cannot be read again (no
// GetBody) is not retried: its refusal is returned.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok := t.Token()
	if tok.AccessToken == "" || !t.cfg.Now().Add(t.cfg.RefreshBefore).Before(tok.Expiry) {
		var err error
		if tok, err = t.refresh(req.Context(), tok); err != nil {
			return nil, err
		}
	}
	resp, err := t.send(req, tok)
	if err != nil || !expired(resp) || !replayable(req) {
		return resp, err
	}
	resp.Body.Close()
	if tok, err = t.refresh(req.Context(), tok); err != nil {
		return nil, err
	}
	return t.send(req, tok)
}

// replayable reports whether req can be sent again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// again is req ready to be sent once more, with a fresh body.
func again(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	return r, nil
}

// send sends req once with tok, and with a DPoP key once more if the server
// asks for a nonce.
func (t *Transport) send(req *http.Request, tok Token) (*http.Response, error) {
	resp, err := t.sendOnce(req, tok)
	if err != nil || t.cfg.Key == nil || !useNonce(resp) || !replayable(req) {
		return resp, err
	}
	resp.Body.Close()
	if req, err = again(req); err != nil {
		return nil, err
	}
	return t.sendOnce(req, tok)
}

func (t *Transport) sendOnce(req *http.Request, tok Token) (*http.Response, error) {
	r := req.Clone(req.Context())
	if _, ok := r.Header["User-Agent"]; !ok {
		r.Header.Set("User-Agent", UserAgent)
	}
	if t.cfg.Key == nil {
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		return t.cfg.Base.RoundTrip(r)
	}
	proof, err := t.proof(r.Method, r.URL, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	r.Header.Set("DPoP", proof)
	resp, err := t.cfg.Base.RoundTrip(r)
	if err == nil {
		t.learnNonce(r.URL, resp)
	}
	return resp, err
}

// proof signs a proof for one request to u, with the latest nonce of u's
// origin.
func (t *Transport) proof(method string, u *url.URL, accessToken string) (string, error) {
	t.mu.Lock()
	nonce := t.nonces[origin(u)]
	t.mu.Unlock()
	p, err := dpop.NewProof(t.cfg.Key, dpop.Params{Method: method, URL: u.String(), Nonce: nonce, AccessToken: accessToken})
	if err != nil {
		return "", fmt.Errorf("client: DPoP proof: %w", err)
	}
	return p, nil
}

// learnNonce remembers the DPoP-Nonce of resp, if it has one.
func (t *Transport) learnNonce(u *url.URL, resp *http.Response) {
	n := resp.Header.Get("DPoP-Nonce")
	if n == "" {
		return
	}
	t.mu.Lock()
	t.nonces[origin(u)] = n
	t.mu.Unlock()
}

// origin is the scheme and host of u: servers keep one nonce each.
func origin(u *url.URL) string { return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) }

// useNonce reports whether resp asks for the proof again with the server's
// nonce (RFC 9449 §8, §9): a token endpoint's 400 use_dpop_nonce, or a
// resource server's 401 with a DPoP challenge naming that error.
func useNonce(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		for _, c := range resp.Header.Values("WWW-Authenticate") {
			if len(c) >= 5 && strings.EqualFold(c[:5], "DPoP ") && strings.Contains(c, `error="use_dpop_nonce"`) {
				return true
			}
		}
		return false
	case http.StatusBadRequest:
		return errorCode(resp) == "use_dpop_nonce"
	}
	return false
}

// errorCode is the "error" member of resp's JSON body (an error body is
// small: only its first 4 KiB are read), which it leaves whole for the
// caller to read.
func errorCode(resp *http.Response) string {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body = readBack{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	var e struct{ Error string }
	if err != nil || json.Unmarshal(b, &e) != nil {
		return ""
	}
	return e.Error
}

// readBack is a response body whose start has been read already.
type readBack struct {
	io.Reader
	io.Closer
}

// expired reports whether resp refuses an expired access token.
func expired(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		return false
	}
	return errorCode(resp) == "token_expired"
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
		next, err := t.tokenRequest(context.WithoutCancel(ctx), "/refresh", nil, stale.RefreshToken)
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

// tokenRequest calls POST path (/login with a JSON body, or /refresh with the
// refresh token), with a DPoP proof when there is a key and once more if the
// server asks for its nonce, and returns the pair it answers.
func (t *Transport) tokenRequest(ctx context.Context, path string, body []byte, refreshToken string) (Token, error) {
	resp, err := t.tokenRequestOnce(ctx, path, body, refreshToken)
	if err == nil && t.cfg.Key != nil && useNonce(resp) {
		resp.Body.Close()
		resp, err = t.tokenRequestOnce(ctx, path, body, refreshToken)
	}
	op := strings.TrimPrefix(path, "/")
	if err != nil {
		return Token{}, fmt.Errorf("client: %s: %w", op, err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		ExpiresAt    int64  `json:"expires_at"`
		Error        string `json:"error"`
		Message      string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return Token{}, fmt.Errorf("client: %s: status %d: %w", op, resp.StatusCode, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK && out.AccessToken != "" && out.RefreshToken != "":
		if t.cfg.Key != nil && !strings.EqualFold(out.TokenType, "DPoP") {
			// A server that ignored the proof, or a Bearer session given a
			// key: the next request would be refused anyway, and less clearly.
			return Token{}, fmt.Errorf("client: %s: the server answered token_type %q to a DPoP proof; is the session bound to this key?", op, out.TokenType)
		}
		return Token{AccessToken: out.AccessToken, RefreshToken: out.RefreshToken, Expiry: time.Unix(out.ExpiresAt, 0)}, nil
	case path == "/login" && out.Error == "invalid_credentials":
		return Token{}, fmt.Errorf("%w (%s)", ErrInvalidCredentials, out.Error)
	case path == "/refresh" && resp.StatusCode == http.StatusUnauthorized:
		return Token{}, fmt.Errorf("%w (%s)", ErrSessionEnded, out.Error)
	}
	return Token{}, fmt.Errorf("client: %s: status %d %s: %s", op, resp.StatusCode, out.Error, out.Message)
}

func (t *Transport) tokenRequestOnce(ctx context.Context, path string, body []byte, refreshToken string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.Server+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if refreshToken != "" {
		req.Header.Set("Authorization", "Bearer "+refreshToken)
	}
	req.Header.Set("User-Agent", UserAgent)
	if t.cfg.Key != nil {
		proof, err := t.proof(req.Method, req.URL, "")
		if err != nil {
			return nil, err
		}
		req.Header.Set("DPoP", proof)
	}
	resp, err := t.cfg.Base.RoundTrip(req)
	if err == nil && t.cfg.Key != nil {
		t.learnNonce(req.URL, resp)
	}
	return resp, err
}

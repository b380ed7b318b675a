package latchkey

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/refreshtoken"
	"github.com/latchkey/latchkey/store"
)

// Auth issues, refreshes, verifies and revokes tokens. It is safe for concurrent
// use; create one per process with New and Close it on shutdown.
type Auth struct {
	cfg     Config
	st      store.Store
	ring    *keys.Ring
	codec   *refreshtoken.Codec
	csrfKey []byte
	revoked *revocations
	cache   *verified

	reloadMu   sync.Mutex
	lastReload time.Time

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Tokens is a token pair as the HTTP API returns it; times are Unix seconds.
type Tokens struct {
	UserID           string `json:"uuid"`
	SessionID        string `json:"session_id"`
	TokenType        string `json:"token_type"`
	AccessToken      string `json:"access_token"`
	ExpiresIn        int64  `json:"expires_in"`
	ExpiresAt        int64  `json:"expires_at"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresAt int64  `json:"refresh_expires_at"`
}

// Principal is the verified caller of a request: who, in which session, with
// which access token.
type Principal struct {
	UserID    string // "sub"
	SessionID string // "sid"
	TokenID   string // "jti"
	Fresh     bool   // issued straight after a password login
	ClientID  string // "client_id": the OAuth client of the session; empty for first-party
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// LoginOptions describes a new session.
type LoginOptions struct {
	// Fresh marks the access token as coming straight from a password login,
	// which RequireFresh guards demand.
	Fresh bool
	// UserAgent and IP are recorded for the session list.
	UserAgent, IP string
	// ClientID is the OAuth client the session belongs to; empty for first-party.
	ClientID string
}

// RefreshOptions carries what a refresh request presents besides the refresh token.
type RefreshOptions struct {
	// AccessToken is the session's access token (expired is fine). It is required
	// when Config.BindAccess is set; when present it must verify and belong to the
	// same session, and it is revoked once the new pair is issued.
	AccessToken string
	// ClientID must match the client the session was issued to.
	ClientID string
	// ClientSince is when that client's current registration was made: a
	// session created before it belongs to an earlier client of the same id
	// (removed, then registered again) and is refused. Zero: no check.
	ClientSince time.Time
	// KeepAccessToken leaves the presented access token valid: a browser's
	// access cookie is shared by every request a page makes at once, and
	// revoking it would fail the others.
	KeepAccessToken bool
}

// Scope selects which sessions Logout ends.
type Scope string

// Logout scopes.
const (
	ScopeLocal  Scope = "local"  // this session
	ScopeGlobal Scope = "global" // every session of the user
	ScopeOthers Scope = "others" // every session of the user but this one
)

// New checks cfg, loads (or creates) the signing keys and starts following the
// revocation feed. It fails on a configuration mistake or an unreachable store.
func New(ctx context.Context, cfg Config) (*Auth, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	sealKey, err := derive(cfg.Secret, "latchkey key sealing v1")
	if err != nil {
		return nil, err
	}
	macKey, err := derive(cfg.Secret, "latchkey refresh token mac v1")
	if err != nil {
		return nil, err
	}
	codec, err := refreshtoken.New(macKey)
	if err != nil {
		return nil, err
	}
	csrfKey, err := derive(cfg.Secret, "latchkey csrf token v1")
	if err != nil {
		return nil, err
	}
	ring, err := keys.Open(ctx, keys.Config{
		Store:         cfg.Store,
		EncryptionKey: sealKey,
		Algorithm:     cfg.SigningAlg,
		// A node may sign with a just-retired key until it next reloads the
		// ring, so the key stays published that much longer.
		Retain:   retain(cfg),
		Now:      cfg.Now,
		ReadOnly: cfg.AdminTool,
	})
	if err != nil {
		return nil, fmt.Errorf("latchkey: signing keys: %w", err)
	}
	a := &Auth{
		cfg:     cfg,
		st:      cfg.Store,
		ring:    ring,
		codec:   codec,
		csrfKey: csrfKey,
		revoked: newRevocations(),
		cache:   newVerified(),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := a.syncRevocations(ctx); err != nil {
		return nil, fmt.Errorf("latchkey: revocation feed: %w", err)
	}
	go a.follow()
	return a, nil
}

// retain is how long a retired signing key stays published: until the last
// access token it signed has expired, allowing for nodes that still sign with
// it until their next reload — and with binding, for as long as such a token
// may be presented with the session's next refresh.
func retain(cfg Config) time.Duration {
	d := cfg.AccessTTL + cfg.Leeway + keyReloadInterval + time.Minute
	if cfg.BindAccess {
		d = max(d, cfg.RefreshTTL+cfg.AccessTTL+cfg.Leeway)
	}
	return d
}

func derive(secret []byte, info string) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, info, 32)
}

// Close stops the background work. It does not close the store.
func (a *Auth) Close() error {
	a.once.Do(func() { close(a.stop) })
	<-a.done
	return nil
}

// Config returns the configuration in effect, defaults filled in.
func (a *Auth) Config() Config { return a.cfg }

// Keys returns the signing key ring (JWKS, rotation, key listing).
func (a *Auth) Keys() *keys.Ring { return a.ring }

// Login starts a new session for userID and returns its first token pair. The
// caller has authenticated the user.
func (a *Auth) Login(ctx context.Context, userID string, opt LoginOptions) (*Tokens, error) {
	if userID == "" {
		return nil, ErrInvalidRequest.WithMessage("A user id is required.")
	}
	now := a.cfg.Now()
	expires := now.Add(a.cfg.SessionLifetime)
	s := store.Session{
		ID:            refreshtoken.NewSessionID().String(),
		UserID:        userID,
		RotatedAt:     now,
		CreatedAt:     now,
		LastUsedAt:    now,
		IdleExpiresAt: earliest(now.Add(a.cfg.RefreshTTL), expires),
		ExpiresAt:     expires,
		UserAgent:     truncate(opt.UserAgent, 256),
		IP:            truncate(opt.IP, 64),
		ClientID:      opt.ClientID,
	}
	if err := a.st.CreateSession(ctx, s); err != nil {
		return nil, unavailable(err)
	}
	return a.issue(s, opt.Fresh, now)
}

// issue mints an access token and the refresh token of the session's current
// generation.
func (a *Auth) issue(s store.Session, fresh bool, now time.Time) (*Tokens, error) {
	sid, err := refreshtoken.ParseSessionID(s.ID)
	if err != nil {
		return nil, ErrInvalidToken.WithCause(err)
	}
	// exp is in whole seconds on the wire; round up so a token lives at least
	// AccessTTL (truncating would shorten it by up to a second).
	exp := earliest(ceilSecond(now.Add(a.cfg.AccessTTL)), s.ExpiresAt)
	key := a.ring.SigningKey()
	if key == nil {
		return nil, ErrUnavailable.WithMessage("No signing key is available yet.")
	}
	at, err := accesstoken.Sign(key, accesstoken.Claims{
		Issuer:    a.cfg.Issuer,
		Subject:   s.UserID,
		Audience:  a.cfg.Audience,
		ExpiresAt: exp,
		IssuedAt:  now,
		ID:        randomID(),
		SessionID: s.ID,
		Fresh:     fresh,
		ClientID:  s.ClientID,
		Scope:     clientScope(s.ClientID),
	})
	if err != nil {
		return nil, ErrInternal.WithCause(err)
	}
	return &Tokens{
		UserID:           s.UserID,
		SessionID:        s.ID,
		TokenType:        "Bearer",
		AccessToken:      at,
		ExpiresIn:        int64(exp.Sub(now) / time.Second),
		ExpiresAt:        exp.Unix(),
		RefreshToken:     a.codec.Encode(refreshtoken.Token{Session: sid, Generation: s.Generation}),
		RefreshExpiresAt: s.IdleExpiresAt.Unix(),
	}, nil
}

// Refresh exchanges a refresh token for a new pair.
//
// The token's checksum and MAC are checked before anything is read or written.
// The current generation is rotated with one compare-and-swap; the generation
// just rotated away, presented again within the grace window, gets the same new
// refresh token (and a new access token) without a second rotation; any older
// generation revokes the whole session and fails with ErrRefreshReused.
func (a *Auth) Refresh(ctx context.Context, refreshToken string, opt RefreshOptions) (*Tokens, error) {
	if refreshToken == "" {
		return nil, ErrMissingToken.WithMessage("A refresh token is required.")
	}
	tok, err := a.codec.Decode(refreshToken)
	if err != nil {
		if looksLikeJWT(refreshToken) {
			return nil, ErrWrongTokenType.WithMessage("An access token was presented where a refresh token is required.")
		}
		return nil, ErrInvalidToken.WithMessage("The refresh token is malformed or forged.").WithCause(err)
	}
	sid := tok.Session.String()
	bound, err := a.checkBinding(ctx, sid, opt.AccessToken)
	if err != nil {
		return nil, err
	}
	if opt.KeepAccessToken {
		bound = nil // checked, but not revoked
	}
	// The common case first: the token is its session's current generation.
	// One conditional write checks that (and the client, revocation and expiry)
	// and rotates; only when it refuses is the session read to say why.
	now := a.cfg.Now()
	next, err := a.st.RotateSession(ctx, sid, a.rotation(tok.Generation, opt, now))
	switch {
	case err == nil:
		return a.finishRefresh(ctx, next, bound, now)
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidToken.WithMessage("The refresh token's session is unknown.").WithCause(err)
	case !errors.Is(err, store.ErrConflict):
		return nil, unavailable(err)
	}
	for attempt := 0; ; attempt++ {
		now := a.cfg.Now()
		s, err := a.st.Session(ctx, sid)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrInvalidToken.WithMessage("The refresh token's session is unknown.").WithCause(err)
		}
		if err != nil {
			return nil, unavailable(err)
		}
		if !belongs(s, opt.ClientID, opt.ClientSince) {
			return nil, ErrInvalidToken.WithMessage("The refresh token was issued to another client.")
		}
		if s.Revoked() {
			if s.RevokeReason == ReasonReused {
				return nil, ErrRefreshReused
			}
			return nil, ErrTokenRevoked.WithMessage("The session of this refresh token has been revoked.")
		}
		if !now.Before(s.IdleExpiresAt) || !now.Before(s.ExpiresAt) {
			return nil, ErrSessionExpired
		}
		switch refreshtoken.Classify(tok.Generation, s.Generation, s.RotatedAt, now, a.cfg.ReuseGrace) {
		case refreshtoken.Rotate:
			next, err := a.st.RotateSession(ctx, sid, a.rotation(s.Generation, opt, now))
			if errors.Is(err, store.ErrConflict) && attempt < 3 {
				continue // someone rotated or revoked it first: look again
			}
			if errors.Is(err, store.ErrNotFound) {
				return nil, ErrInvalidToken.WithMessage("The refresh token's session is unknown.").WithCause(err)
			}
			if err != nil {
				return nil, unavailable(err)
			}
			return a.finishRefresh(ctx, next, bound, now)
		case refreshtoken.Grace:
			return a.finishRefresh(ctx, s, bound, now)
		case refreshtoken.Reused:
			if err := a.revokeSession(ctx, sid, ReasonReused, now); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, unavailable(err)
			}
			a.cfg.Logger.Warn("refresh token reuse: session revoked", "session", sid, "user", s.UserID,
				"presented_generation", tok.Generation, "current_generation", s.Generation)
			return nil, ErrRefreshReused
		default: // Ahead: the store lost a rotation; refuse without changing anything.
			a.cfg.Logger.Warn("refresh token ahead of its session", "session", sid,
				"presented_generation", tok.Generation, "current_generation", s.Generation)
			return nil, ErrInvalidToken.WithMessage("The refresh token does not match its session's state.")
		}
	}
}

// OAuthScope is the one scope latchkey grants an OAuth client: the whole
// account, as first-party access tokens have it. The access tokens of an OAuth
// client's session carry it in their scope claim (RFC 9068 §2.2.3).
const OAuthScope = "account"

// clientScope is the scope claim of a session of clientID: none for
// first-party sessions, which are not OAuth grants.
func clientScope(clientID string) string {
	if clientID == "" {
		return ""
	}
	return OAuthScope
}

// rotation is the swap of a refresh at now from generation from: the idle
// expiry slides (capped by the store at the session's end) unless it is locked.
func (a *Auth) rotation(from uint64, opt RefreshOptions, now time.Time) store.Rotation {
	r := store.Rotation{From: from, At: now, ClientID: opt.ClientID, CreatedFrom: opt.ClientSince}
	if !a.cfg.LockedExpiry {
		r.IdleExpiresAt = now.Add(a.cfg.RefreshTTL)
	}
	return r
}

// belongs reports whether session s was issued to the registration of client
// clientID made at since (zero: any registration).
func belongs(s store.Session, clientID string, since time.Time) bool {
	return s.ClientID == clientID && !s.CreatedAt.Before(since.Truncate(time.Millisecond))
}

// checkBinding verifies the access token presented with a refresh: required
// when binding is on, and when present it must be authentic (expiry aside) and of
// the same session. It returns the verified claims, if any.
func (a *Auth) checkBinding(ctx context.Context, sid, token string) (*accesstoken.Claims, error) {
	if token == "" {
		if a.cfg.BindAccess {
			return nil, ErrMissingToken.WithMessage("This server requires the session's access token with the refresh token.")
		}
		return nil, nil
	}
	c, err := a.verifyJWT(ctx, token)
	if errors.Is(err, accesstoken.ErrUnknownKey) && !a.cfg.BindAccess && a.expiredUnverified(token) {
		return nil, nil // optional and long expired (its key is gone): nothing to revoke
	}
	if err != nil && !errors.Is(err, accesstoken.ErrExpired) {
		return nil, a.accessError(err).WithMessage("The access token presented with the refresh token is not valid.")
	}
	if c.SessionID != sid {
		return nil, ErrInvalidToken.WithMessage("The access token belongs to another session than the refresh token.")
	}
	return &c, nil
}

func (a *Auth) finishRefresh(ctx context.Context, s store.Session, bound *accesstoken.Claims, now time.Time) (*Tokens, error) {
	t, err := a.issue(s, false, now)
	if err != nil {
		return nil, err
	}
	if bound != nil && now.Before(bound.ExpiresAt.Add(a.cfg.Leeway)) {
		rev := store.Revocation{TokenID: bound.ID, At: now, Until: bound.ExpiresAt.Add(a.cfg.Leeway + time.Second)}
		if err := a.st.RevokeToken(ctx, rev); err != nil {
			// The new pair is valid and the old access token expires soon anyway;
			// failing the refresh here would strand the client.
			a.cfg.Logger.Warn("revoking the replaced access token failed", "session", s.ID, "err", err)
		} else {
			a.revoked.add(rev)
		}
	}
	return t, nil
}

// Verify checks an access token: signature under a published key with the
// algorithm pinned to that key, type at+jwt, issuer, audience, expiry, and that
// neither the token nor its session has been revoked.
func (a *Auth) Verify(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrMissingToken
	}
	if refreshtoken.Looks(token) {
		return Principal{}, ErrWrongTokenType.WithMessage("A refresh token was presented where an access token is required.")
	}
	c, hit := a.cache.get(token, a.cfg.Now(), a.cfg.Leeway)
	if !hit {
		var err error
		if c, err = a.verifyJWT(ctx, token); err != nil {
			if errors.Is(err, accesstoken.ErrUnknownKey) && a.expiredUnverified(token) {
				// Its key has retired since: still "expired", so clients refresh
				// rather than sign in again.
				return Principal{}, ErrTokenExpired.WithMessage("The access token has expired.").WithCause(err)
			}
			return Principal{}, a.accessError(err)
		}
		a.cache.put(token, c)
	}
	if a.revoked.has(c.SessionID, c.ID) {
		return Principal{}, ErrTokenRevoked
	}
	return Principal{
		UserID:    c.Subject,
		SessionID: c.SessionID,
		TokenID:   c.ID,
		Fresh:     c.Fresh,
		ClientID:  c.ClientID,
		IssuedAt:  c.IssuedAt,
		ExpiresAt: c.ExpiresAt,
	}, nil
}

func (a *Auth) verifyJWT(ctx context.Context, token string) (accesstoken.Claims, error) {
	v := accesstoken.Validation{Issuer: a.cfg.Issuer, Audience: a.cfg.Audience, Now: a.cfg.Now(), Leeway: a.cfg.Leeway}
	c, err := accesstoken.Verify(token, a.ring, v)
	if errors.Is(err, accesstoken.ErrUnknownKey) && a.reloadKeys(ctx) {
		c, err = accesstoken.Verify(token, a.ring, v)
	}
	return c, err
}

// reloadKeys re-reads the key ring when a token names a key this node has not
// seen (another node rotated), at most once a second.
func (a *Auth) reloadKeys(ctx context.Context) bool {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if now := time.Now(); now.Sub(a.lastReload) >= time.Second {
		a.lastReload = now
		if err := a.ring.Reload(ctx); err != nil {
			a.cfg.Logger.Warn("reloading signing keys failed", "err", err)
			return false
		}
		return true
	}
	return false
}

// expiredUnverified reports whether token's unverified exp has passed.
func (a *Auth) expiredUnverified(token string) bool {
	exp, ok := accesstoken.UnverifiedExpiry(token)
	return ok && !a.cfg.Now().Before(exp.Add(a.cfg.Leeway))
}

func (a *Auth) accessError(err error) *Error {
	switch {
	case errors.Is(err, accesstoken.ErrExpired):
		return ErrTokenExpired.WithMessage("The access token has expired.").WithCause(err)
	case errors.Is(err, accesstoken.ErrWrongType):
		return ErrWrongTokenType.WithMessage("The token is not an access token.").WithCause(err)
	default:
		return ErrInvalidToken.WithMessage("The access token is malformed, forged or not for this service.").WithCause(err)
	}
}

// Revocation reasons recorded with a revoked session.
const (
	ReasonLogout = "logout"
	ReasonReused = "reused"
	ReasonAdmin  = "revoked"
)

// Logout ends sessions of the caller p: its own (ScopeLocal), every one of its
// user's (ScopeGlobal), or every one but its own (ScopeOthers).
func (a *Auth) Logout(ctx context.Context, p Principal, scope Scope) error {
	switch scope {
	case ScopeLocal, "":
		err := a.revokeSession(ctx, p.SessionID, ReasonLogout, a.cfg.Now())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return unavailable(err)
		}
		return nil
	case ScopeGlobal:
		return a.RevokeUser(ctx, p.UserID, "", ReasonLogout)
	case ScopeOthers:
		return a.RevokeUser(ctx, p.UserID, p.SessionID, ReasonLogout)
	}
	return ErrInvalidRequest.WithMessage("The logout scope must be local, global or others.")
}

// RevokeSession revokes one session: its refresh token stops working at once and
// its access tokens within the revocation delay on every node. ErrNotFound if
// there is no such session.
func (a *Auth) RevokeSession(ctx context.Context, sessionID, reason string) error {
	err := a.revokeSession(ctx, sessionID, reason, a.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound.WithMessage("No such session.")
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// RevokeUser revokes every live session of userID except the one with id except
// (empty: none excepted).
func (a *Auth) RevokeUser(ctx context.Context, userID, except, reason string) error {
	ss, err := a.st.UserSessions(ctx, userID)
	if err != nil {
		return unavailable(err)
	}
	now := a.cfg.Now()
	for _, s := range ss {
		if s.ID == except || s.Revoked() || !now.Before(s.ExpiresAt) {
			continue
		}
		if err := a.revokeSession(ctx, s.ID, reason, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return unavailable(err)
		}
	}
	return nil
}

func (a *Auth) revokeSession(ctx context.Context, sid, reason string, now time.Time) error {
	// Until covers the last access token minted for the session, with a margin
	// for a refresh racing the revocation.
	rev := store.Revocation{SessionID: sid, At: now, Until: now.Add(a.cfg.AccessTTL + a.cfg.Leeway + time.Minute)}
	if err := a.st.RevokeSession(ctx, sid, reason, rev); err != nil {
		return err
	}
	a.revoked.add(rev)
	return nil
}

// Sessions returns the live sessions of userID, newest first.
func (a *Auth) Sessions(ctx context.Context, userID string) ([]store.Session, error) {
	ss, err := a.st.UserSessions(ctx, userID)
	if err != nil {
		return nil, unavailable(err)
	}
	now := a.cfg.Now()
	out := ss[:0]
	for _, s := range ss {
		if live(s, now) {
			out = append(out, s)
		}
	}
	return out, nil
}

// EndSession revokes session sessionID of userID, as the user's own "sign out
// that device". ErrNotFound if it is not a live session of that user, so a
// caller cannot probe other users' session ids.
func (a *Auth) EndSession(ctx context.Context, userID, sessionID string) error {
	s, err := a.st.Session(ctx, sessionID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (s.UserID != userID || !live(s, a.cfg.Now()))) {
		return ErrNotFound.WithMessage("No such session.")
	}
	if err != nil {
		return unavailable(err)
	}
	return a.RevokeSession(ctx, sessionID, ReasonLogout)
}

// live reports whether s can still be refreshed at now.
func live(s store.Session, now time.Time) bool {
	return !s.Revoked() && now.Before(s.IdleExpiresAt) && now.Before(s.ExpiresAt)
}

// CSRFToken returns the CSRF token of a session, for the double-submit cookie:
// an HMAC of the session id under a key derived from the secret. It is the same
// for every rotation of the session (so concurrent tabs agree) and cannot be
// made for another session without the secret.
func (a *Auth) CSRFToken(sessionID string) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports, in constant time, whether token is the CSRF token of sessionID.
func (a *Auth) CheckCSRF(sessionID, token string) bool {
	return hmac.Equal([]byte(a.CSRFToken(sessionID)), []byte(token))
}

// RefreshSession returns the session a refresh token names after checking its
// checksum and MAC; it reads no state. Use it to bind a check (such as CSRF)
// to a refresh token before spending it.
func (a *Auth) RefreshSession(refreshToken string) (string, error) {
	tok, err := a.codec.Decode(refreshToken)
	if err != nil {
		return "", ErrInvalidToken.WithMessage("The refresh token is malformed or forged.").WithCause(err)
	}
	return tok.Session.String(), nil
}

// JWKS returns the public signing keys as a JSON Web Key Set.
func (a *Auth) JWKS() []byte { return a.ring.JWKS() }

// Ping reports whether the store is reachable.
func (a *Auth) Ping(ctx context.Context) error { return a.st.Ping(ctx) }

func unavailable(err error) *Error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ErrUnavailable.WithMessage("The request was cancelled or timed out.").WithCause(err)
	}
	return ErrUnavailable.WithCause(err)
}

func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// truncate makes client-supplied text (user agent, address) safe to store on
// every backend: valid UTF-8, no NUL (PostgreSQL's text refuses both), at most
// n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// looksLikeJWT reports whether s has the shape of a compact JWS.
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

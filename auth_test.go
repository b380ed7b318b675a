package latchkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/sqlite"
)

// counting wraps a real store and counts the calls that read or change sessions.
type counting struct {
	store.Store
	sessionReads, writes atomic.Int64
}

func (c *counting) Session(ctx context.Context, id string) (store.Session, error) {
	c.sessionReads.Add(1)
	return c.Store.Session(ctx, id)
}

func (c *counting) RotateSession(ctx context.Context, id string, r store.Rotation) (store.Session, error) {
	c.writes.Add(1)
	return c.Store.RotateSession(ctx, id, r)
}

func (c *counting) RevokeSession(ctx context.Context, rev store.Revocation, reason string) error {
	c.writes.Add(1)
	return c.Store.RevokeSession(ctx, rev, reason)
}

// withCRC fixes the checksum of a raw refresh token.
func withCRC(raw []byte) []byte {
	binary.BigEndian.PutUint32(raw[len(raw)-4:], crc32.ChecksumIEEE(raw[:len(raw)-4]))
	return raw
}

type fixture struct {
	auth   *latchkey.Auth
	store  *counting
	clock  *fakeclock.Clock
	dbPath string
	secret []byte
}

func newFixture(t testing.TB, edit func(*latchkey.Config)) *fixture {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "auth.db")
	db, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	f := &fixture{store: &counting{Store: db}, clock: fakeclock.New(time.Unix(1_800_000_000, 0)), dbPath: dbPath, secret: secret}
	cfg := latchkey.Config{Store: f.store, Secret: secret, Now: f.clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	a, err := latchkey.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	f.auth = a
	return f
}

func (f *fixture) login(t testing.TB) *latchkey.Tokens {
	t.Helper()
	tok, err := f.auth.Login(context.Background(), "user-1", latchkey.LoginOptions{Fresh: true})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Property 4: the MAC is checked before any state is read or changed, so a
// forged token for a real session neither revokes it nor touches the store.
func TestForgedTokenTouchesNoState(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := f.login(t)
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok.RefreshToken, "lk_rt_"))
	forgeries := []string{"lk_rt_garbage", tok.RefreshToken[:40], strings.Repeat("A", 100)}
	// Same session id, generation 0, a MAC of zeros, with a correct CRC: only the
	// MAC can refuse it.
	forged := append([]byte(nil), raw...)
	for i := 25; i < 57; i++ {
		forged[i] = 0
	}
	forgeries = append(forgeries, "lk_rt_"+base64.RawURLEncoding.EncodeToString(withCRC(forged)))
	reads, writes := f.store.sessionReads.Load(), f.store.writes.Load()
	for _, s := range forgeries {
		if _, err := f.auth.Refresh(ctx, s, latchkey.RefreshOptions{}); !errors.Is(err, latchkey.ErrInvalidToken) {
			t.Fatalf("Refresh(forged %.20q) = %v, want invalid_token", s, err)
		}
	}
	if r, w := f.store.sessionReads.Load()-reads, f.store.writes.Load()-writes; r != 0 || w != 0 {
		t.Fatalf("forged tokens caused %d session reads and %d writes, want none", r, w)
	}
	if _, err := f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{}); err != nil {
		t.Fatalf("the real token no longer works: %v", err)
	}
}

// Property 2: nothing in the store can be presented as a refresh token. The
// database files hold neither the tokens, nor their MACs, nor the secret.
func TestStoreDumpIsUselessForRefresh(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var issued []string
	for range 5 {
		tok := f.login(t)
		next, err := f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{})
		if err != nil {
			t.Fatal(err)
		}
		issued = append(issued, tok.RefreshToken, next.RefreshToken)
	}
	var dump []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(f.dbPath + suffix)
		if err == nil {
			dump = append(dump, b...)
		}
	}
	if len(dump) == 0 {
		t.Fatal("no database file to inspect")
	}
	for _, s := range issued {
		raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, "lk_rt_"))
		mac := raw[25:57]
		for name, needle := range map[string][]byte{
			"token": []byte(s), "token body": []byte(s[6:]), "raw MAC": mac,
			"base64 MAC":  []byte(base64.RawURLEncoding.EncodeToString(mac)),
			"hex-ish MAC": []byte(base64.StdEncoding.EncodeToString(mac)),
		} {
			if bytes.Contains(dump, needle) {
				t.Fatalf("the database holds a refresh token's %s", name)
			}
		}
	}
	if bytes.Contains(dump, f.secret) || bytes.Contains(dump, []byte(base64.StdEncoding.EncodeToString(f.secret))) {
		t.Fatal("the database holds the deployment secret")
	}
	// And with the same database but another secret, no token refreshes.
	other := make([]byte, 32)
	rand.Read(other)
	if _, err := latchkey.New(ctx, latchkey.Config{Store: f.store, Secret: other, Now: f.clock.Now}); err == nil {
		t.Fatal("a different secret opened the sealed signing keys")
	}
}

// Property 6: under many concurrent refreshes of one token the session advances
// exactly one generation and everyone gets the same successor.
func TestConcurrentRefreshAdvancesOnce(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := f.login(t)
	const n = 64
	got := make([]*latchkey.Tokens, n)
	errs := make([]error, n)
	before := f.store.writes.Load()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{}) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		if got[i].RefreshToken != got[0].RefreshToken {
			t.Fatalf("refresh %d forked the lineage", i)
		}
		if _, err := f.auth.Verify(ctx, got[i].AccessToken); err != nil {
			t.Fatalf("access token of refresh %d: %v", i, err)
		}
	}
	s, err := f.store.Store.Session(ctx, tok.SessionID)
	if err != nil || s.Generation != 1 {
		t.Fatalf("generation = %d, %v; want exactly 1", s.Generation, err)
	}
	if w := f.store.writes.Load() - before; w > n {
		t.Fatalf("%d writes for %d refreshes", w, n)
	}
}

// Property 9: logging out a session makes Verify refuse its access token on
// this node at once.
func TestRevocationReachesVerifier(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := f.login(t)
	p, err := f.auth.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "user-1" || p.SessionID != tok.SessionID || !p.Fresh {
		t.Fatalf("principal = %+v", p)
	}
	if err := f.auth.Logout(ctx, p, latchkey.LogoutLocal); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Verify(ctx, tok.AccessToken); !errors.Is(err, latchkey.ErrTokenRevoked) {
		t.Fatalf("Verify after logout = %v, want token_revoked", err)
	}
}

// Property 9: a second Auth on the same store (another node) learns a
// revocation from the feed within the revocation delay.
func TestRevocationReachesOtherNode(t *testing.T) {
	f, b := twoNodes(t)
	tok := f.login(t)
	if _, err := b.Verify(context.Background(), tok.AccessToken); err != nil {
		t.Fatalf("node B refuses a valid token: %v", err)
	}
	if err := f.auth.Revoke(context.Background(), latchkey.RevokeOptions{SessionID: tok.SessionID, Reason: latchkey.ReasonAdmin}); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b, tok.AccessToken)
}

// twoNodes is a fixture (node A) and a second Auth on the same store (node
// B), both with a revocation delay of 100 ms.
func twoNodes(t *testing.T) (*fixture, *latchkey.Auth) {
	t.Helper()
	f := newFixture(t, func(c *latchkey.Config) { c.RevocationDelay = 100 * time.Millisecond })
	b, err := latchkey.New(context.Background(), latchkey.Config{Store: f.store, Secret: f.secret, Now: f.clock.Now, RevocationDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return f, b
}

// waitRevoked fails unless node b refuses token as revoked within the 100 ms
// delay (and a margin for a loaded machine).
func waitRevoked(t *testing.T, b *latchkey.Auth, token string) {
	t.Helper()
	start := time.Now()
	for {
		_, err := b.Verify(context.Background(), token)
		if errors.Is(err, latchkey.ErrTokenRevoked) {
			return
		}
		if time.Since(start) > 600*time.Millisecond {
			t.Fatalf("node B still accepts the token %v after the revocation (delay 100ms): %v", time.Since(start), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConfigRejectsNonsense(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	good := make([]byte, 32)
	rand.Read(good)
	for name, cfg := range map[string]latchkey.Config{
		"no store":      {Secret: good},
		"short secret":  {Store: db, Secret: good[:16]},
		"zero secret":   {Store: db, Secret: make([]byte, 32)},
		"alg none":      {Store: db, Secret: good, SigningAlg: "none"},
		"negative ttl":  {Store: db, Secret: good, AccessTTL: -time.Second},
		"huge grace":    {Store: db, Secret: good, ReuseGrace: time.Hour},
		"tiny delay":    {Store: db, Secret: good, RevocationDelay: time.Millisecond},
		"negative leew": {Store: db, Secret: good, Leeway: -time.Second},
	} {
		if a, err := latchkey.New(context.Background(), cfg); err == nil {
			a.Close()
			t.Errorf("New(%s) succeeded", name)
		}
	}
}

func TestParseSecret(t *testing.T) {
	raw := make([]byte, 32)
	rand.Read(raw)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		got, err := latchkey.ParseSecret(enc.EncodeToString(raw) + "\n")
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("ParseSecret = %x, %v", got, err)
		}
	}
	for _, bad := range []string{"", "hunter2", base64.StdEncoding.EncodeToString(raw[:20]), base64.StdEncoding.EncodeToString(make([]byte, 48)), "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!!!"} {
		if _, err := latchkey.ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) accepted a weak secret", bad)
		}
	}
}

func TestErrorIsComparesCode(t *testing.T) {
	err := latchkey.ErrTokenExpired.WithMessage("other words").WithCause(errors.New("cause"))
	if !errors.Is(err, latchkey.ErrTokenExpired) || errors.Is(err, latchkey.ErrInvalidToken) {
		t.Fatal("Is must compare codes only")
	}
	if !strings.Contains(err.Error(), "cause") {
		t.Fatal("Error() lacks the cause")
	}
}

// Properties 7 and 9: Verify remembers checked tokens, but a remembered token
// still expires (token_expired, not invalid_token) and is still refused once
// its session is revoked; a token differing in one byte is checked afresh.
func TestVerifiedCacheHonoursExpiryAndRevocation(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := f.login(t)
	for range 2 { // the second call is served from the cache
		if _, err := f.auth.Verify(ctx, tok.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	// Change one character well inside the signature (the last ones carry
	// padding bits).
	i := len(tok.AccessToken) - 10
	c := byte('A')
	if tok.AccessToken[i] == 'A' {
		c = 'B'
	}
	tampered := tok.AccessToken[:i] + string(c) + tok.AccessToken[i+1:]
	if _, err := f.auth.Verify(ctx, tampered); !errors.Is(err, latchkey.ErrInvalidToken) {
		t.Fatalf("a tampered copy of a cached token = %v", err)
	}
	f.clock.Add(16 * time.Minute)
	if _, err := f.auth.Verify(ctx, tok.AccessToken); !errors.Is(err, latchkey.ErrTokenExpired) {
		t.Fatalf("a cached token past its expiry = %v, want token_expired", err)
	}
	other := f.login(t)
	if _, err := f.auth.Verify(ctx, other.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := f.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: other.SessionID, Reason: latchkey.ReasonAdmin}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.auth.Verify(ctx, other.AccessToken); !errors.Is(err, latchkey.ErrTokenRevoked) {
		t.Fatalf("a cached token of a revoked session = %v", err)
	}
}

// Properties 7 and 8: an expired access token whose signing key has since
// been retired and deleted is still answered token_expired (so the client
// refreshes), and, presented with a refresh, does not strand the session.
func TestExpiredTokenOfRetiredKey(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := f.login(t)
	f.clock.Add(time.Hour) // well past the token and the key's retention
	if err := f.auth.Keys().Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	if err := f.auth.Keys().Rotate(ctx); err != nil { // deletes the retired key
		t.Fatal(err)
	}
	if _, err := f.auth.Verify(ctx, tok.AccessToken); !errors.Is(err, latchkey.ErrTokenExpired) {
		t.Fatalf("Verify(expired token of a deleted key) = %v, want token_expired", err)
	}
	if _, err := f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{AccessToken: tok.AccessToken}); err != nil {
		t.Fatalf("refresh presenting that token = %v, want success", err)
	}
}

// Property 9: an access token revoked through RevokeToken (RFC 7009) on one
// node is refused by another within the revocation delay: the revocation is in
// the store's feed, not only in the revoking node's memory.
func TestRevokedAccessTokenReachesOtherNode(t *testing.T) {
	f, b := twoNodes(t)
	ctx := context.Background()
	app := latchkey.Client{ID: "app", Registration: "app-1"}
	tok, err := f.auth.Login(ctx, "u1", latchkey.LoginOptions{Client: app})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, tok.AccessToken); err != nil {
		t.Fatalf("node B refuses a valid token: %v", err)
	}
	if err := f.auth.RevokeToken(ctx, tok.AccessToken, latchkey.Client{ID: "other", Registration: "other-1"}); !errors.Is(err, latchkey.ErrUnauthorizedClient) {
		t.Fatalf("revocation by another client = %v, want unauthorized_client", err)
	}
	if err := f.auth.RevokeToken(ctx, tok.AccessToken, app); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b, tok.AccessToken)
	// Only that token: the session refreshes on either node.
	if _, err := b.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{Client: app}); err != nil {
		t.Fatalf("the session of a revoked access token: %v", err)
	}
}

// Config hands out the configuration in effect but never the secret, and
// DeriveKey gives each purpose its own key while refusing the purposes
// latchkey keeps for itself.
func TestConfigHidesSecretAndDeriveKey(t *testing.T) {
	f := newFixture(t, nil)
	if s := f.auth.Config().Secret; s != nil {
		t.Fatalf("Config().Secret = %x, want nil", s)
	}
	k1, err := f.auth.DeriveKey("app sessions v1")
	if err != nil || len(k1) != 32 {
		t.Fatalf("DeriveKey = %x, %v", k1, err)
	}
	k2, _ := f.auth.DeriveKey("app sessions v2")
	if bytes.Equal(k1, k2) || bytes.Contains(k1, f.secret[:8]) {
		t.Fatal("derived keys are not independent of each other and of the secret")
	}
	for _, reserved := range []string{"", "key sealing v1", "refresh token mac v1"} {
		if k, err := f.auth.DeriveKey(reserved); err == nil {
			t.Errorf("DeriveKey(%q) = %x, want a refusal", reserved, k)
		}
	}
}

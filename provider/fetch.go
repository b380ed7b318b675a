package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/latchkey/latchkey/internal/compactjws"
	"github.com/latchkey/latchkey/internal/text"
)

// Fetch limits. A provider's documents are a few kilobytes; anything larger
// or slower is not one.
const (
	fetchTimeout = 10 * time.Second
	maxDocBytes  = 256 << 10
	// minRefetch is the least time between two fetches of one document, so a
	// stream of tokens with unknown kids cannot make us hammer the provider.
	minRefetch = 5 * time.Second
	// Cache lifetimes are what the provider's headers say, within these.
	minCache     = time.Minute
	maxCache     = 24 * time.Hour
	defaultCache = time.Hour
)

// limitedTransport bounds each response body and records, per URL, how long
// the provider allows it to be cached.
type limitedTransport struct {
	base http.RoundTripper
	now  func() time.Time

	mu   sync.Mutex
	ttls map[string]time.Duration
}

func (t *limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > maxDocBytes {
		resp.Body.Close()
		return nil, fmt.Errorf("%s is larger than %d bytes", r.URL.Redacted(), maxDocBytes)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxDocBytes}
	ttl := cacheLifetime(resp.Header, t.now())
	t.mu.Lock()
	t.ttls[r.URL.String()] = ttl
	t.mu.Unlock()
	return resp, nil
}

// ttl is the cache lifetime recorded for the last response from u.
func (t *limitedTransport) ttl(u string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d, ok := t.ttls[u]; ok {
		return d
	}
	return defaultCache
}

var errTooLarge = fmt.Errorf("the document is larger than %d bytes", maxDocBytes)

// limitedBody fails a read past its limit instead of truncating silently.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// cacheLifetime reads Cache-Control max-age (or Expires) and clamps it:
// no-store and no-cache mean the shortest lifetime, nothing means an hour.
func cacheLifetime(h http.Header, now time.Time) time.Duration {
	d := defaultCache
	found := false
	for _, dir := range strings.Split(h.Get("Cache-Control"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(strings.ToLower(dir)), "=")
		switch k {
		case "no-store", "no-cache":
			return minCache
		case "max-age", "s-maxage":
			if n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64); err == nil && n >= 0 && !found {
				d, found = time.Duration(min(n, int64(maxCache/time.Second)))*time.Second, true
			}
		}
	}
	if !found {
		if t, err := http.ParseTime(h.Get("Expires")); err == nil {
			d = t.Sub(now)
		}
	}
	return min(max(d, minCache), maxCache)
}

// flight runs one fetch of a document at a time, starts none less than
// minRefetch after the last one ended, and lets each waiter give up with its
// own request: a provider that hangs holds up no request longer than its
// caller is willing to wait, and gets at most one fetch at a time.
type flight struct {
	mu      sync.Mutex
	running chan struct{} // closed when the fetch in flight ends; nil when none runs
	err     error         // how the last fetch ended
	last    time.Time     // when it ended
}

// start runs fetch in the background unless a fetch is running (then it
// returns that one's channel) or one ended less than minRefetch ago (then
// nil). The channel is closed when the fetch ends.
func (f *flight) start(now func() time.Time, fetch func() error) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running != nil {
		return f.running
	}
	if recently(f.last, now()) {
		return nil
	}
	ch := make(chan struct{})
	f.running = ch
	go func() {
		err := fetch()
		f.mu.Lock()
		f.err, f.last, f.running = err, now(), nil
		f.mu.Unlock()
		close(ch)
	}()
	return ch
}

// wait waits for done (nil: nothing to wait for) or ctx, and returns how the
// last fetch ended.
func (f *flight) wait(ctx context.Context, done <-chan struct{}) error {
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// recently reports whether last is less than minRefetch from now (either
// way: a clock set back counts as recent).
func recently(last, now time.Time) bool {
	since := now.Sub(last)
	return !last.IsZero() && since < minRefetch && since > -minRefetch
}

// keySet is the provider's JWKS, cached by its headers and refetched on an
// unknown kid at most once per minRefetch. Cached keys keep working while the
// provider is down or slow: a stale set is refreshed in the background. It
// implements go-oidc's KeySet.
type keySet struct {
	p   *Provider
	uri string

	stale  flight // fetches for a missing or stale set
	missed flight // fetches for an unknown kid

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	expires time.Time
}

// failure carries the reason a signature check failed out of go-oidc, which
// reports its key set's errors as text only.
type failure struct{ err error }

type failureKey struct{}

// VerifySignature checks the token's signature under the provider's keys and
// returns its payload.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	err := k.verify(ctx, raw)
	if f, ok := ctx.Value(failureKey{}).(*failure); ok && err != nil {
		f.err = err
	}
	if err != nil {
		return nil, err
	}
	jws, _ := jose.ParseSignedCompact(raw, k.p.algs)
	return jws.UnsafePayloadWithoutVerification(), nil
}

func (k *keySet) verify(ctx context.Context, raw string) error {
	if !compactjws.Valid(raw) {
		return invalid("The ID token is not a compact JWS with one signature.")
	}
	jws, err := jose.ParseSignedCompact(raw, k.p.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return invalid("The ID token is not a compact JWS with one signature.")
	}
	hdr := jws.Signatures[0].Header
	keys, err := k.keysFor(ctx, hdr.KeyID)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if key.Algorithm != "" && key.Algorithm != hdr.Algorithm {
			continue
		}
		if _, err := jws.Verify(key); err == nil {
			return nil
		}
	}
	if len(keys) == 0 {
		return invalid(fmt.Sprintf("The ID token is signed with a key (kid %s) the provider does not publish.", text.Quote(hdr.KeyID, 64)))
	}
	return invalid("The ID token's signature does not verify under the provider's key.")
}

// match returns the cached keys with this kid (every key when kid is empty),
// and whether the set is empty or stale.
func (k *keySet) match(kid string) (found []jose.JSONWebKey, empty, stale bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range k.keys {
		if kid == "" || key.KeyID == kid {
			found = append(found, key)
		}
	}
	return found, len(k.keys) == 0, !k.p.now().Before(k.expires)
}

// keysFor returns the keys with this kid: from the cache, refreshed in the
// background when stale; fetched (waiting at most as long as ctx) when there
// are none yet, or when the kid is unknown (at most once per minRefetch).
func (k *keySet) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	found, empty, stale := k.match(kid)
	switch {
	case empty:
		err := k.stale.wait(ctx, k.stale.start(k.p.now, k.refresh))
		if found, empty, _ = k.match(kid); empty {
			if err == nil {
				err = errors.New("no keys fetched yet")
			}
			return nil, unavailable(k.p.cfg.Name, err)
		}
	case stale:
		k.stale.start(k.p.now, k.refresh)
	}
	if len(found) == 0 && kid != "" {
		// Perhaps the provider rotated: look again, at most once per minRefetch.
		k.missed.wait(ctx, k.missed.start(k.p.now, k.refresh))
		found, _, _ = k.match(kid)
	}
	return found, nil
}

// refresh fetches the JWKS; on failure the cached keys stay.
func (k *keySet) refresh() error {
	keys, err := k.fetch(context.Background())
	if err != nil {
		k.p.log.Warn("provider keys unavailable; cached keys stay in use", "provider", k.p.cfg.Name, "err", err)
		return err
	}
	k.mu.Lock()
	k.keys, k.expires = keys, k.p.now().Add(k.p.transport.ttl(k.uri))
	k.mu.Unlock()
	return nil
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.uri, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", k.uri, err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("GET %s: not a JWK set: %w", k.uri, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		// One key of a kind go-jose does not know must not hide the others.
		var key jose.JSONWebKey
		if key.UnmarshalJSON(raw) == nil && usable(key) {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("GET %s: no public signing key", k.uri)
	}
	return keys, nil
}

// usable keeps public, asymmetric signing keys.
func usable(key jose.JSONWebKey) bool {
	if !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
		return false
	}
	switch pub := key.Key.(type) {
	case *rsa.PublicKey:
		return pub.N.BitLen() >= 2048
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false
}

// Compile-time check that keySet is a go-oidc key set.
var _ oidc.KeySet = (*keySet)(nil)

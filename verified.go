package latchkey

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
)

// verifiedCap bounds the verified-token cache (about 300 bytes an entry).
const verifiedCap = 16384

// verified remembers access tokens whose signature and claims have been
// checked, keyed by a hash of the exact token bytes, so a client presenting
// the same token again skips the signature check. Expiry is checked on every
// use and revocation by the caller; a key retires only after its last token
// has expired, so a cached token never outlives its key.
type verified struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]accesstoken.Claims
}

func newVerified() *verified { return &verified{m: map[[sha256.Size]byte]accesstoken.Claims{}} }

func (v *verified) get(token string, now time.Time, leeway time.Duration) (accesstoken.Claims, bool) {
	h := sha256.Sum256([]byte(token))
	v.mu.RLock()
	c, ok := v.m[h]
	v.mu.RUnlock()
	if !ok || !now.Before(c.ExpiresAt.Add(leeway)) {
		return accesstoken.Claims{}, false
	}
	return c, true
}

func (v *verified) put(token string, c accesstoken.Claims) {
	h := sha256.Sum256([]byte(token))
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= verifiedCap {
		// Drop about a tenth, in map order (random): cheap, and a dropped
		// entry only costs one more signature check.
		n := 0
		for k := range v.m {
			delete(v.m, k)
			if n++; n >= verifiedCap/10 {
				break
			}
		}
	}
	v.m[h] = c
}

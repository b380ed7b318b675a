package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Server nonces (RFC 9449 §8) are stateless, so every node that shares the
// secret accepts the nonces of every other without a store: a nonce is the
// number of the time step it was issued in, followed by a MAC of that number
// under the secret. A nonce is accepted during its own step and the next one,
// so it lives between one and two steps; a nonce of the step after the current
// one is accepted only within the iat leeway, for nodes whose clocks differ a
// little.

// MinNonceKeyLength is the shortest Config.NonceKey New accepts.
const MinNonceKeyLength = 32

const (
	nonceMACLength = 16
	nonceRawLength = 8 + nonceMACLength
	nonceLength    = (nonceRawLength*8 + 5) / 6 // base64url without padding
	nonceDomain    = "latchkey dpop nonce v1\x00"
)

type nonces struct {
	key  []byte
	step time.Duration
}

// stepOf is the number of the time step t falls in.
func (n *nonces) stepOf(t time.Time) uint64 {
	return uint64(t.UnixNano() / int64(n.step))
}

func (n *nonces) mac(step uint64) []byte {
	h := hmac.New(sha256.New, n.key)
	h.Write([]byte(nonceDomain))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], step)
	h.Write(b[:])
	return h.Sum(nil)[:nonceMACLength]
}

// issue returns the nonce of the step now falls in.
func (n *nonces) issue(now time.Time) string {
	var raw [nonceRawLength]byte
	s := n.stepOf(now)
	binary.BigEndian.PutUint64(raw[:8], s)
	copy(raw[8:], n.mac(s))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// valid reports whether nonce was issued with this key in the current step,
// the previous one, or (within leeway) the next one.
func (n *nonces) valid(nonce string, now time.Time, leeway time.Duration) bool {
	if len(nonce) != nonceLength {
		return false
	}
	var raw [nonceRawLength]byte
	if m, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(nonce)); err != nil || m != nonceRawLength {
		return false
	}
	s := binary.BigEndian.Uint64(raw[:8])
	cur := n.stepOf(now)
	if s != cur && s+1 != cur && s != n.stepOf(now.Add(leeway)) {
		return false
	}
	return hmac.Equal(raw[8:], n.mac(s))
}

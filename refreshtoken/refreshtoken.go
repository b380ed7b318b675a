package refreshtoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"strings"
	"time"
)

// Prefix starts every refresh token.
const Prefix = "lk_rt_"

const (
	version    = 1
	idLen      = 16
	macLen     = sha256.Size
	sumLen     = 4
	payloadLen = 1 + idLen + 8 // version, session id, generation
	rawLen     = payloadLen + macLen + sumLen
	// Length is the length of every encoded refresh token.
	Length = len(Prefix) + (rawLen*8+5)/6
	// KeySize is the size of the MAC key New takes.
	KeySize = 32
)

// macDomain separates this MAC from any other use of the same key.
const macDomain = "latchkey refresh token v1\x00"

// Errors returned by Decode. Both mean the token is not one of ours; a caller
// must not touch any state because of them.
var (
	// ErrMalformed is a string that is not a well-formed refresh token: wrong
	// prefix, length, encoding, version or checksum.
	ErrMalformed = errors.New("refreshtoken: malformed token")
	// ErrForged is a well-formed token whose MAC does not verify.
	ErrForged = errors.New("refreshtoken: invalid MAC")
)

// SessionID is the random identifier of a session.
type SessionID [idLen]byte

// NewSessionID returns a random session id.
func NewSessionID() SessionID {
	var id SessionID
	if _, err := rand.Read(id[:]); err != nil {
		panic("refreshtoken: crypto/rand failed: " + err.Error()) // never returns an error since Go 1.24
	}
	return id
}

// String returns the form of the id used in the store, the "sid" claim, URLs
// and the CLI: lowercase hex, which never starts with a dash a command line
// would take for a flag.
func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// ParseSessionID parses the form String returns.
func ParseSessionID(s string) (SessionID, error) {
	var id SessionID
	if len(s) != 2*idLen || strings.ToLower(s) != s {
		return id, ErrMalformed
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return SessionID{}, ErrMalformed
	}
	return id, nil
}

// Token is what a refresh token says: a session and a generation.
type Token struct {
	Session    SessionID
	Generation uint64
}

// Codec encodes and authenticates refresh tokens under one MAC key.
// It is safe for concurrent use.
type Codec struct {
	key []byte
}

// New returns a Codec for the KeySize-byte MAC key. The key must come from the
// server's keyring (e.g. derived from the deployment secret), never from the store.
func New(key []byte) (*Codec, error) {
	if len(key) != KeySize {
		return nil, errors.New("refreshtoken: the MAC key must be 32 bytes")
	}
	return &Codec{key: append([]byte(nil), key...)}, nil
}

// Encode returns the refresh token for t.
func (c *Codec) Encode(t Token) string {
	var raw [rawLen]byte
	raw[0] = version
	copy(raw[1:], t.Session[:])
	binary.BigEndian.PutUint64(raw[1+idLen:], t.Generation)
	copy(raw[payloadLen:], c.mac(raw[:payloadLen]))
	binary.BigEndian.PutUint32(raw[payloadLen+macLen:], crc32.ChecksumIEEE(raw[:payloadLen+macLen]))
	return Prefix + base64.RawURLEncoding.EncodeToString(raw[:])
}

// Decode checks s and returns what it says. It rejects anything malformed by
// prefix, length and checksum before computing the MAC, and compares the MAC in
// constant time. It reads no state.
func (c *Codec) Decode(s string) (Token, error) {
	if len(s) != Length || !strings.HasPrefix(s, Prefix) {
		return Token{}, ErrMalformed
	}
	var raw [rawLen]byte
	n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(s[len(Prefix):]))
	if err != nil || n != rawLen {
		return Token{}, ErrMalformed
	}
	if crc32.ChecksumIEEE(raw[:payloadLen+macLen]) != binary.BigEndian.Uint32(raw[payloadLen+macLen:]) {
		return Token{}, ErrMalformed
	}
	if raw[0] != version {
		return Token{}, ErrMalformed
	}
	if !hmac.Equal(c.mac(raw[:payloadLen]), raw[payloadLen:payloadLen+macLen]) {
		return Token{}, ErrForged
	}
	var t Token
	copy(t.Session[:], raw[1:1+idLen])
	t.Generation = binary.BigEndian.Uint64(raw[1+idLen:])
	return t, nil
}

func (c *Codec) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(macDomain))
	m.Write(payload)
	return m.Sum(nil)
}

// Looks reports whether s has the refresh-token prefix, so that a caller can
// answer "wrong token type" rather than "invalid token" when a refresh token is
// presented where an access token belongs.
func Looks(s string) bool { return strings.HasPrefix(s, Prefix) }

// Verdict is what a presented generation means for its session.
type Verdict int

const (
	// Rotate: the token is the current generation; advance the session.
	Rotate Verdict = iota
	// Grace: the token is the immediate predecessor of the current generation and
	// the rotation happened inside the grace window; answer with the current
	// generation's token, changing nothing.
	Grace
	// Reused: the token is an earlier generation outside the grace window: the
	// lineage has been replayed and the session must be revoked.
	Reused
	// Ahead: the token is newer than the stored session, which can only mean the
	// store lost a write (e.g. a failover); the token is refused, nothing changes.
	Ahead
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case Rotate:
		return "rotate"
	case Grace:
		return "grace"
	case Reused:
		return "reused"
	case Ahead:
		return "ahead"
	}
	return "unknown"
}

// Classify decides what presenting generation gen means for a session that is at
// generation current, reached at rotatedAt. Only the immediate predecessor, and
// only strictly within grace after the rotation, qualifies for Grace; a grace of
// zero disables it.
func Classify(gen, current uint64, rotatedAt, now time.Time, grace time.Duration) Verdict {
	switch {
	case gen == current:
		return Rotate
	case gen > current:
		return Ahead
	case gen+1 == current && grace > 0 && now.Before(rotatedAt.Add(grace)):
		return Grace
	default:
		return Reused
	}
}

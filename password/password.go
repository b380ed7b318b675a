// Package password hashes and checks passwords with argon2id (RFC 9106),
// encoded in the PHC string format so parameters can change without breaking
// stored hashes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// Default returns the least-memory argon2id profile of OWASP's five (m=7 MiB, t=5,
// p=1), which OWASP rates as defending as well as its 19 MiB, t=2 one: the
// memory-time product an attacker pays per guess is the same. A token server
// runs a hash per core at once, and on a small machine 19 MiB per hash plus
// the garbage collector's slack is most of its memory; 7 MiB keeps the
// server within 64 MiB under load (docs/benchmarks.md). One hash takes a
// little less CPU than with the 19 MiB profile (35 against 38 MiB-passes).
func Default() Params { return Params{Memory: 7 * 1024, Time: 5, Threads: 1, SaltLen: 16, KeyLen: 32} }

// Limits on parameters accepted from a stored hash, so a corrupted or hostile
// row cannot make Verify allocate gigabytes or spin for minutes.
const (
	maxMemory = 1 << 20 // 1 GiB in KiB
	maxTime   = 100
	maxKeyLen = 1024
)

// ErrMalformedHash is a stored hash Verify cannot read.
var ErrMalformedHash = errors.New("password: malformed hash")

var b64 = base64.RawStdEncoding

// Hash returns the PHC-encoded argon2id hash of password with a random salt.
func Hash(password string, p Params) (string, error) {
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.SaltLen < 8 || p.KeyLen < 16 {
		return "", errors.New("password: parameters too weak")
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// decoded is a parsed hash.
type decoded struct {
	p         Params
	salt, key []byte
}

func decode(encoded string) (decoded, error) {
	var d decoded
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return d, ErrMalformedHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return d, ErrMalformedHash
	}
	var m, t uint32
	var p uint8
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p) != parts[3] {
		return d, ErrMalformedHash
	}
	if m == 0 || m > maxMemory || t == 0 || t > maxTime || p == 0 || m < 8*uint32(p) {
		return d, ErrMalformedHash
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return d, ErrMalformedHash
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxKeyLen {
		return d, ErrMalformedHash
	}
	d.p = Params{Memory: m, Time: t, Threads: p, SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	d.salt, d.key = salt, key
	return d, nil
}

// Verify reports whether password matches the encoded hash, comparing in
// constant time. A hash it cannot read is ErrMalformedHash.
func Verify(encoded, password string) (bool, error) {
	d, err := decode(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), d.salt, d.p.Time, d.p.Memory, d.p.Threads, d.p.KeyLen)
	return subtle.ConstantTimeCompare(key, d.key) == 1, nil
}

// NeedsRehash reports whether encoded was made with other parameters than p.
func NeedsRehash(encoded string, p Params) bool {
	d, err := decode(encoded)
	return err != nil || d.p.Memory != p.Memory || d.p.Time != p.Time || d.p.Threads != p.Threads ||
		d.p.KeyLen != p.KeyLen || d.p.SaltLen != p.SaltLen
}

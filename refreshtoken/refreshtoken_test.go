package refreshtoken_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/refreshtoken"
)

func codec(t testing.TB, fill byte) *refreshtoken.Codec {
	t.Helper()
	c, err := refreshtoken.New(bytes.Repeat([]byte{fill}, refreshtoken.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	c := codec(t, 1)
	for _, gen := range []uint64{0, 1, 2, 1 << 40, ^uint64(0)} {
		in := refreshtoken.Token{Session: refreshtoken.NewSessionID(), Generation: gen}
		s := c.Encode(in)
		out, err := c.Decode(s)
		if err != nil || out != in {
			t.Fatalf("Decode(Encode(%v)) = %v, %v", in, out, err)
		}
	}
}

var urlSafe = regexp.MustCompile(`^lk_rt_[A-Za-z0-9_-]+$`)

// Property 1: recognisable and not a JWT. Every token is lk_rt_ followed by
// base64url (no dots, so never a compact JWS), of one fixed length.
func TestFormatIsRecognisableAndURLSafe(t *testing.T) {
	c := codec(t, 1)
	s := c.Encode(refreshtoken.Token{Session: refreshtoken.NewSessionID(), Generation: 7})
	if !urlSafe.MatchString(s) {
		t.Fatalf("token %q is not prefix + base64url", s)
	}
	if len(s) != refreshtoken.Length {
		t.Fatalf("len = %d, want %d", len(s), refreshtoken.Length)
	}
	if strings.Contains(s, ".") || strings.HasPrefix(s[len(refreshtoken.Prefix):], "eyJ") {
		t.Fatalf("token %q has the shape of a JWT", s)
	}
	if !refreshtoken.Looks(s) || refreshtoken.Looks("eyJhbGciOi") {
		t.Fatal("Looks does not recognise the prefix")
	}
}

// Property 1: at least 256 bits of secret material. The secret material is
// the MAC: encoding one token under eight keys, the bytes that depend on the
// key, the checksum aside, must number at least 32. (The session id and the
// generation are public; a shorter MAC would leave fewer key-dependent bytes.)
func TestSecretMaterialIsAtLeast256Bits(t *testing.T) {
	tok := refreshtoken.Token{Session: refreshtoken.NewSessionID(), Generation: 3}
	var raws [][]byte
	for key := range byte(8) {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(codec(t, key+1).Encode(tok), refreshtoken.Prefix))
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	const checksum = 4
	varying := 0
	for i := range len(raws[0]) - checksum {
		for _, raw := range raws[1:] {
			if raw[i] != raws[0][i] {
				varying++
				break
			}
		}
	}
	// A key-dependent byte equal under all eight keys has odds 2^-56.
	if varying < 32 {
		t.Fatalf("only %d bytes depend on the key; want at least 32 (256 bits)", varying)
	}
}

// Property 1: the checksum refuses garbage before the MAC is computed: any
// one character changed is ErrMalformed, never ErrForged.
func TestEverySingleCharacterChangeIsRejected(t *testing.T) {
	c := codec(t, 1)
	s := c.Encode(refreshtoken.Token{Session: refreshtoken.NewSessionID(), Generation: 9})
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := len(refreshtoken.Prefix); i < len(s); i++ {
		for _, r := range alphabet {
			if byte(r) == s[i] {
				continue
			}
			mut := s[:i] + string(r) + s[i+1:]
			if _, err := c.Decode(mut); !errors.Is(err, refreshtoken.ErrMalformed) {
				// The last character holds padding bits; a change there that
				// decodes identically is rejected by strict decoding.
				t.Fatalf("Decode(%q) = %v, want ErrMalformed", mut, err)
			}
		}
	}
}

// Properties 1 and 4: a token with a correct checksum but a MAC made without
// the key (or under another deployment's key) is forged.
func TestForgedMACIsRejected(t *testing.T) {
	c := codec(t, 1)
	s := c.Encode(refreshtoken.Token{Session: refreshtoken.NewSessionID(), Generation: 1})
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, refreshtoken.Prefix))
	// Claim a later generation, keep the old MAC, fix the checksum.
	binary.BigEndian.PutUint64(raw[17:25], 2)
	binary.BigEndian.PutUint32(raw[len(raw)-4:], crc32.ChecksumIEEE(raw[:len(raw)-4]))
	forged := refreshtoken.Prefix + base64.RawURLEncoding.EncodeToString(raw)
	if _, err := c.Decode(forged); !errors.Is(err, refreshtoken.ErrForged) {
		t.Fatalf("Decode(forged generation) = %v, want ErrForged", err)
	}
	// A token from another deployment (another key) is forged too.
	if _, err := codec(t, 2).Decode(s); !errors.Is(err, refreshtoken.ErrForged) {
		t.Fatalf("Decode under another key = %v, want ErrForged", err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	c := codec(t, 1)
	good := c.Encode(refreshtoken.Token{Generation: 1})
	for name, s := range map[string]string{
		"empty":     "",
		"prefix":    refreshtoken.Prefix,
		"jwt":       "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2ln",
		"truncated": good[:len(good)-1],
		"extended":  good + "A",
		"padding":   good[:len(good)-2] + "==",
		"std b64":   good[:10] + "+" + good[11:],
		"prefix2":   "lk_at_" + good[6:],
		"spaces":    " " + good[1:],
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Decode(s); !errors.Is(err, refreshtoken.ErrMalformed) {
				t.Fatalf("Decode(%q) = %v, want ErrMalformed", s, err)
			}
		})
	}
}

func TestNewRejectsShortKey(t *testing.T) {
	if _, err := refreshtoken.New(make([]byte, 16)); err == nil {
		t.Fatal("New accepted a 16-byte key")
	}
}

func TestSessionIDString(t *testing.T) {
	id := refreshtoken.NewSessionID()
	back, err := refreshtoken.ParseSessionID(id.String())
	if err != nil || back != id {
		t.Fatalf("ParseSessionID(%q) = %v, %v", id.String(), back, err)
	}
	for _, bad := range []string{"", "short", id.String() + "A", strings.Repeat("!", 32), strings.ToUpper(id.String())} {
		if _, err := refreshtoken.ParseSessionID(bad); err == nil {
			t.Fatalf("ParseSessionID(%q) succeeded", bad)
		}
	}
	if refreshtoken.NewSessionID() == id {
		t.Fatal("two random session ids are equal")
	}
}

// Properties 4 and 5: any earlier generation is reuse, except the immediate
// predecessor strictly inside the grace window.
func TestClassify(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	grace := 10 * time.Second
	for _, tc := range []struct {
		name    string
		gen     uint64
		current uint64
		now     time.Time
		grace   time.Duration
		want    refreshtoken.Verdict
	}{
		{"current", 5, 5, t0.Add(time.Hour), grace, refreshtoken.Rotate},
		{"predecessor inside window", 4, 5, t0.Add(9 * time.Second), grace, refreshtoken.Grace},
		{"predecessor at window end", 4, 5, t0.Add(grace), grace, refreshtoken.Reused},
		{"predecessor after window", 4, 5, t0.Add(11 * time.Second), grace, refreshtoken.Reused},
		{"two back inside window", 3, 5, t0.Add(time.Second), grace, refreshtoken.Reused},
		{"first generation much later", 0, 5, t0.Add(time.Hour), grace, refreshtoken.Reused},
		{"grace disabled", 4, 5, t0, 0, refreshtoken.Reused},
		{"ahead", 6, 5, t0, grace, refreshtoken.Ahead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := refreshtoken.Classify(tc.gen, tc.current, t0, tc.now, tc.grace); got != tc.want {
				t.Fatalf("Classify(%d, %d) = %v, want %v", tc.gen, tc.current, got, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	c := codec(f, 1)
	f.Add(c.Encode(refreshtoken.Token{Generation: 1}))
	f.Add("lk_rt_")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := c.Decode(s)
		if err == nil && c.Encode(tok) != s {
			t.Fatalf("Decode(%q) accepted a non-canonical token", s)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	c := codec(b, 1)
	tok := refreshtoken.Token{Session: refreshtoken.NewSessionID(), Generation: 42}
	b.ReportAllocs()
	for b.Loop() {
		c.Encode(tok)
	}
}

func BenchmarkDecode(b *testing.B) {
	c := codec(b, 1)
	s := c.Encode(refreshtoken.Token{Session: refreshtoken.NewSessionID(), Generation: 42})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(s); err != nil {
			b.Fatal(err)
		}
	}
}

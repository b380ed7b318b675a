package provider

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

func testProvider(t testing.TB, now time.Time) *Provider {
	t.Helper()
	p, err := New(Config{Name: "example", Issuer: "https://issuer.example", ClientIDs: []string{"app", "app-2"}},
		Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// The claim checks that go-oidc leaves to the caller, each able to fail.
func TestCheckClaims(t *testing.T) {
	now := time.Unix(2_000_000_000, 0)
	p := testProvider(t, now)
	at := func(d time.Duration) *jsonTime { return ptr(jsonTime(now.Add(d).Unix())) }
	good := func() idClaims {
		return idClaims{Issuer: "https://issuer.example", Subject: "s", Audience: audience{"app"}, Expiry: at(time.Hour), IssuedAt: at(-time.Minute)}
	}
	cases := []struct {
		name string
		edit func(c *idClaims)
		says string // "" = accepted
	}{
		{"good", func(*idClaims) {}, ""},
		{"second client id", func(c *idClaims) { c.Audience = audience{"app-2"} }, ""},
		{"no subject", func(c *idClaims) { c.Subject = "" }, "subject"},
		{"long subject", func(c *idClaims) { c.Subject = strings.Repeat("s", 256) }, "subject"},
		{"other audience", func(c *idClaims) { c.Audience = audience{"someone-else"} }, "audience"},
		{"several audiences without azp", func(c *idClaims) { c.Audience = audience{"app", "x"} }, "azp"},
		{"several audiences, our azp", func(c *idClaims) { c.Audience = audience{"app", "x"}; c.AZP = "app" }, ""},
		{"azp of another client", func(c *idClaims) { c.AZP = "x" }, "authorized party"},
		{"no exp", func(c *idClaims) { c.Expiry = nil }, "no expiry"},
		{"expired beyond leeway", func(c *idClaims) { c.Expiry = at(-DefaultLeeway - time.Second) }, "expired"},
		{"expired within leeway", func(c *idClaims) { c.Expiry = at(-DefaultLeeway + time.Second) }, ""},
		{"no iat", func(c *idClaims) { c.IssuedAt = nil }, "issue time"},
		{"iat in the future", func(c *idClaims) { c.IssuedAt = at(DefaultLeeway + time.Second) }, "future"},
		{"nbf in the future", func(c *idClaims) { c.NotBefore = at(DefaultLeeway + time.Second) }, "not valid yet"},
		{"nbf within leeway", func(c *idClaims) { c.NotBefore = at(DefaultLeeway - time.Second) }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := p.checkClaims(c, "", false)
			if tc.says == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, latchkey.ErrInvalidToken) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want invalid_token saying %q", err, tc.says)
			}
		})
	}
}

// The nonce is compared in the one form the provider is configured for:
// taking the token's own nonce back in hashed mode would let anyone holding
// the token pass.
func TestCheckNonce(t *testing.T) {
	sum := sha256.Sum256([]byte("n"))
	hashed := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		inToken *string
		sent    string
		raw, ok bool
	}{
		{nil, "", false, true},
		{ptr(hashed), "n", false, true},
		{ptr(strings.ToUpper(hashed)), "n", false, true},
		{ptr(hashed), hashed, false, false}, // the token's own value sent back
		{ptr("n"), "n", false, false},
		{ptr("n"), "n", true, true},
		{ptr("N"), "n", true, false},
		{ptr(hashed), "n", true, false},
		{ptr("n"), "", false, false},
		{ptr("n"), "", true, false},
		{nil, "n", false, false},
		{ptr("n"), "m", true, false},
	} {
		if err := checkNonce(tc.inToken, tc.sent, tc.raw); (err == nil) != tc.ok {
			t.Errorf("token nonce %v, sent %q, raw %v: err = %v, want ok=%v", tc.inToken, tc.sent, tc.raw, err, tc.ok)
		}
	}
}

func TestCacheLifetime(t *testing.T) {
	now := time.Unix(2_000_000_000, 0)
	for _, tc := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{nil, defaultCache},
		{map[string]string{"Cache-Control": "public, max-age=600"}, 10 * time.Minute},
		{map[string]string{"Cache-Control": "max-age=5"}, minCache},
		{map[string]string{"Cache-Control": "max-age=99999999"}, maxCache},
		{map[string]string{"Cache-Control": "no-store"}, minCache},
		{map[string]string{"Cache-Control": "max-age=bogus"}, defaultCache},
		{map[string]string{"Expires": now.Add(3 * time.Hour).UTC().Format(http.TimeFormat)}, 3 * time.Hour},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := cacheLifetime(h, now); got != tc.want {
			t.Errorf("%v: lifetime %s, want %s", tc.h, got, tc.want)
		}
	}
}

// A provider document larger than the limit fails to read instead of being
// cut short.
func TestLimitedBody(t *testing.T) {
	b := &limitedBody{rc: io.NopCloser(strings.NewReader(strings.Repeat("x", maxDocBytes+1))), left: maxDocBytes}
	if _, err := io.ReadAll(b); !errors.Is(err, errTooLarge) {
		t.Fatalf("reading past the limit: %v", err)
	}
	b = &limitedBody{rc: io.NopCloser(strings.NewReader(strings.Repeat("x", maxDocBytes))), left: maxDocBytes}
	if got, err := io.ReadAll(b); err != nil || len(got) != maxDocBytes {
		t.Fatalf("reading exactly the limit: %d bytes, %v", len(got), err)
	}
}

// Configuration that cannot work is refused with a message naming it.
func TestParseFlag(t *testing.T) {
	c, err := ParseFlag("google=https://accounts.google.com,client_id=a.apps,client_id=b.apps,client_secret=s3cret,leeway=30s")
	if err != nil || c.Name != "google" || c.Issuer != "https://accounts.google.com" || len(c.ClientIDs) != 2 ||
		c.ClientSecret != "s3cret" || c.Leeway != 30*time.Second {
		t.Fatalf("ParseFlag = %+v, %v", c, err)
	}
	if strings.Contains(c.String(), "s3cret") {
		t.Fatal("Config.String shows the secret")
	}
	for v, says := range map[string]string{
		"google":                                                               "NAME=ISSUER_URL",
		"Google=https://a.example,client_id=x":                                 "name",
		"g=http://accounts.example,client_id=x":                                "https",
		"g=ftp://a.example,client_id=x":                                        "https",
		"g=https://a.example":                                                  "client_id",
		"g=https://a.example?x=1,client_id=x":                                  "query",
		"g=https://a.example,client_id=x,colour=blue":                          "unknown key",
		"g=https://a.example,client_id=x,leeway=1h":                            "leeway",
		"g=https://a.example,client_id=x,leeway=soon":                          "leeway",
		"g=https://a.example,client_id=":                                       "key=value",
		"g=https://a.example,client_id=x,client_secret_file=/nonexistent/file": "client_secret_file",
	} {
		if _, err := ParseFlag(v); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("ParseFlag(%q) = %v, want an error about %q", v, err, says)
		}
	}
	if _, err := ParseFlag("g=https://a.example,client_id=x,client_secret=s3cr,et"); err == nil || strings.Contains(err.Error(), "et") && strings.Contains(err.Error(), `"et"`) {
		t.Errorf("a malformed part is echoed: %v", err)
	}
	if c, err := ParseFlag("g=https://a.example,client_id=x,leeway=0s,nonce=raw"); err != nil || c.Leeway != 0 || !c.RawNonce {
		t.Errorf("leeway=0s,nonce=raw = %+v, %v (want no leeway, raw nonce)", c, err)
	}
	if _, err := ParseFlag("dev=http://127.0.0.1:5556/dex,client_id=x"); err != nil {
		t.Errorf("a loopback http issuer is refused: %v", err)
	}
	if _, err := New(Config{Name: "x", Issuer: "https://a.example", ClientIDs: []string{"c"}, Algorithms: []string{"HS256"}}, Options{}); err == nil {
		t.Error("an HMAC algorithm was accepted")
	}
}

func seg(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// precheck refuses malformed tokens before any key is looked up.
func TestPrecheck(t *testing.T) {
	p := testProvider(t, time.Now())
	hdr := seg(map[string]string{"alg": "RS256", "kid": "k"})
	body := seg(map[string]string{"iss": "https://issuer.example"})
	for tok, says := range map[string]string{
		hdr + "." + body + ".c2ln": "",
		hdr + "." + body:           "not a JWT",
		hdr + "." + body + ".":     "no signature",
		seg(map[string]string{"alg": "none"}) + "." + body + ".":                            "alg none",
		seg(map[string]string{"alg": "HS256"}) + "." + body + ".c2ln":                       "HS256",
		seg(map[string]any{"alg": "RS256", "crit": []string{"b64"}}) + "." + body + ".c2ln": "critical",
		hdr + "." + seg(map[string]string{"iss": "https://evil.example"}) + ".c2ln":         "issued by",
		hdr + "." + seg([]int{1}) + ".c2ln":                                                 "payload",
		hdr + "." + body + "=.c2ln":                                                         "base64url",
		"e30." + body + ".c2ln":                                                             "not allowed",
		strings.Repeat("a", MaxTokenBytes+1):                                                "larger than",
	} {
		_, _, err := p.precheck(tok)
		if says == "" {
			if err != nil {
				t.Errorf("precheck(%.40q) refused: %v", tok, err)
			}
			continue
		}
		if !errors.Is(err, latchkey.ErrInvalidToken) || !strings.Contains(err.Error(), says) {
			t.Errorf("precheck(%.40q) = %v, want invalid_token about %q", tok, err, says)
		}
	}
}

// FuzzPrecheck: whatever arrives, the parser answers without panicking, and
// what it accepts is a three-part token of this issuer with an allowed
// algorithm.
func FuzzPrecheck(f *testing.F) {
	f.Add(seg(map[string]string{"alg": "RS256"}) + "." + seg(map[string]string{"iss": "https://issuer.example"}) + ".c2ln")
	f.Add("e30.e30.e30")
	f.Add("..")
	f.Add(`{"payload":"e30"}`)
	p := testProvider(f, time.Now())
	f.Fuzz(func(t *testing.T, tok string) {
		signed, pre, err := p.precheck(tok)
		_ = IssuerOf(tok)
		if err != nil {
			if !errors.Is(err, latchkey.ErrInvalidToken) {
				t.Fatalf("precheck error is not invalid_token: %v", err)
			}
			return
		}
		if pre.Issuer != "https://issuer.example" || strings.Count(tok, ".") != 2 || !strings.HasPrefix(tok, signed+".") {
			t.Fatalf("accepted %q (issuer %q)", tok, pre.Issuer)
		}
	})
}

// FuzzClaims: whatever payload a signed token carries, decoding its claims
// and checking them answers without panicking, and accepts only a subject,
// one of our audiences and live times.
func FuzzClaims(f *testing.F) {
	f.Add(`{"sub":"s","aud":"app","exp":2000003600,"iat":1999999999}`)
	f.Add(`{"sub":"s","aud":["app","x"],"azp":"app","exp":2e9,"iat":1.5e9,"nbf":1,"email_verified":"true","nonce":"n"}`)
	f.Add(`{"aud":7,"exp":"soon"}`)
	now := time.Unix(2_000_000_000, 0)
	p := testProvider(f, now)
	f.Fuzz(func(t *testing.T, payload string) {
		var c idClaims
		if json.Unmarshal([]byte(payload), &c) != nil {
			return
		}
		if err := p.checkClaims(c, "", false); err == nil {
			if c.Subject == "" || c.Expiry == nil || !now.Before(c.Expiry.Time().Add(DefaultLeeway)) ||
				!(len(c.Audience) > 0) || (c.Nonce != nil) {
				t.Fatalf("accepted %s", payload)
			}
		}
	})
}

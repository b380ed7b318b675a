package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/text"
)

// header is the JOSE header of an ID token.
type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

// unverified is what precheck reads from a payload before any signature is
// checked: only to refuse early with a precise message, never to accept.
type unverified struct {
	Issuer string `json:"iss"`
}

// precheck parses an ID token's shape without keys: a compact JWS of at most
// MaxTokenBytes, an allowed algorithm, this provider's issuer. It returns the
// signed part (header.payload).
func (p *Provider) precheck(raw string) (string, unverified, error) {
	var pre unverified
	if len(raw) > MaxTokenBytes {
		return "", pre, invalid(fmt.Sprintf("The ID token is larger than %d bytes.", MaxTokenBytes))
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", pre, invalid("The ID token is not a JWT (three base64url parts separated by dots).")
	}
	hb, err1 := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	_, err3 := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "", pre, invalid("The ID token's parts are not unpadded base64url.")
	}
	var h header
	if err := strictJSON(hb, &h); err != nil {
		return "", pre, invalid("The ID token's header is not a JSON object.")
	}
	switch {
	case strings.EqualFold(h.Alg, "none"):
		return "", pre, invalid("The ID token is unsigned (alg none).")
	case !slices.Contains(p.cfg.Algorithms, h.Alg):
		return "", pre, invalid(fmt.Sprintf("The ID token is signed with %s, which is not allowed (allowed: %s).", text.Quote(h.Alg, 64), strings.Join(p.cfg.Algorithms, ", ")))
	case len(h.Crit) > 0:
		return "", pre, invalid("The ID token has critical header parameters this server does not understand.")
	case parts[2] == "":
		return "", pre, invalid("The ID token has no signature.")
	}
	if err := strictJSON(pb, &pre); err != nil {
		return "", pre, invalid("The ID token's payload is not a JSON object with a string iss.")
	}
	if pre.Issuer != p.cfg.Issuer {
		return "", pre, invalid(fmt.Sprintf("The ID token was issued by %s, not by this provider (%q).", text.Quote(pre.Issuer, 64), p.cfg.Issuer))
	}
	return parts[0] + "." + parts[1], pre, nil
}

// strictJSON decodes one JSON object and nothing after it.
func strictJSON(b []byte, v any) error {
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// audience is "aud": one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// jsonTime is a NumericDate (seconds since the epoch, possibly fractional).
type jsonTime float64

func (t *jsonTime) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if math.IsNaN(f) || f < 0 || f > 1e11 {
		return fmt.Errorf("time %v out of range", f)
	}
	*t = jsonTime(f)
	return nil
}

// Time is the instant t names.
func (t *jsonTime) Time() time.Time {
	sec, frac := math.Modf(float64(*t))
	return time.Unix(int64(sec), int64(frac*1e9))
}

// flexibleBoolean reads true, false, "true" and "false" (Apple sends strings).
type flexibleBoolean bool

func (f *flexibleBoolean) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		*f = flexibleBoolean(x)
	case string:
		*f = flexibleBoolean(x == "true")
	}
	return nil
}

// IssuerOf reads the "iss" of an ID token without verifying anything, to
// route a token to the provider that must then verify it; "" when the token
// has no readable issuer.
func IssuerOf(raw string) string {
	if len(raw) > MaxTokenBytes {
		return ""
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	var pre unverified
	if err != nil || strictJSON(b, &pre) != nil {
		return ""
	}
	return pre.Issuer
}

package accesstoken_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/latchkey/latchkey/accesstoken"
)

// RFC 7515 §4.1.11: a token whose crit header names an extension the verifier
// does not understand must be refused, even with a correct signature. The
// signatures here are genuine (HS256 under the ring's own key), so only the
// header can be the reason.
func TestCriticalHeaderRefused(t *testing.T) {
	r := ring(t, "HS256")
	k := r.SigningKey()
	secret := k.VerificationKey().([]byte)
	sign := func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	p := payload()
	if _, err := accesstoken.Verify(forge(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": k.ID}, p, sign), r, valid); err != nil {
		t.Fatalf("the control token is refused: %v", err)
	}
	for name, h := range map[string]map[string]any{
		"unknown extension": {"crit": []string{"urn:example:must-understand"}, "urn:example:must-understand": true},
		"unencoded payload": {"crit": []string{"b64"}, "b64": false},
		"crit names exp":    {"crit": []string{"exp"}, "exp": 1},
	} {
		h["alg"], h["typ"], h["kid"] = "HS256", "at+jwt", k.ID
		// go-jose refuses an unknown crit when verifying, so the refusal
		// reads as a signature failure.
		if c, err := accesstoken.Verify(forge(h, p, sign), r, valid); !errors.Is(err, accesstoken.ErrSignature) {
			t.Errorf("%s: Verify = %+v, %v; want %v", name, c, err, accesstoken.ErrSignature)
		}
	}
}

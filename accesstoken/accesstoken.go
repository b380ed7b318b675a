package accesstoken

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/latchkey/latchkey/internal/compactjws"
	"github.com/latchkey/latchkey/keys"
)

// MaxLength is the longest token Verify parses; anything longer is refused
// unread.
const MaxLength = 8192

// Type is the JWS "typ" of access tokens (RFC 9068 §2.1).
const Type = "at+jwt"

// Errors returned by Verify; wrapped, so compare with errors.Is.
var (
	ErrMalformed   = errors.New("accesstoken: malformed token")
	ErrUnknownKey  = errors.New("accesstoken: unknown signing key")
	ErrSignature   = errors.New("accesstoken: invalid signature")
	ErrWrongType   = errors.New("accesstoken: not an access token")
	ErrExpired     = errors.New("accesstoken: token expired")
	ErrNotYetValid = errors.New("accesstoken: token not yet valid")
	ErrClaims      = errors.New("accesstoken: invalid claims")
)

// Claims are the claims of an access token.
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub: the user's id
	Audience  string    // aud
	ExpiresAt time.Time // exp
	IssuedAt  time.Time // iat
	ID        string    // jti
	SessionID string    // sid
	Fresh     bool      // fresh: issued straight after a password login
	ClientID  string    // client_id (RFC 9068): the OAuth client the session belongs to; empty for first-party
	Scope     string    // scope (RFC 9068 §2.2.3): what an OAuth client was granted; empty for first-party
	// JKT is cnf.jkt (RFC 9449 §6.1): the thumbprint of the DPoP key the
	// token is bound to; empty for a Bearer token.
	JKT string
}

// confirmation is the cnf claim (RFC 7800) of a DPoP-bound token.
type confirmation struct {
	JKT string `json:"jkt"`
}

// wire is the JSON form of Claims.
type wire struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	IssuedAt  *jwt.NumericDate `json:"iat,omitempty"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	ID        string           `json:"jti"`
	SessionID string           `json:"sid"`
	Fresh     bool             `json:"fresh"`
	ClientID  string           `json:"client_id,omitempty"`
	Scope     string           `json:"scope,omitempty"`
	Cnf       *confirmation    `json:"cnf,omitempty"`
}

// Sign returns c as a compact JWS signed with k, with kid and typ "at+jwt" in
// its header.
func Sign(k *keys.Key, c Claims) (string, error) {
	signer, err := k.Signer()
	if err != nil {
		return "", fmt.Errorf("accesstoken: signer: %w", err)
	}
	payload, err := json.Marshal(wire{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		Audience:  jwt.Audience{c.Audience},
		ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		ID:        c.ID,
		SessionID: c.SessionID,
		Fresh:     c.Fresh,
		ClientID:  c.ClientID,
		Scope:     c.Scope,
		Cnf:       cnf(c.JKT),
	})
	if err != nil {
		return "", fmt.Errorf("accesstoken: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("accesstoken: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// cnf is the cnf claim binding a token to the DPoP key jkt, or nil.
func cnf(jkt string) *confirmation {
	if jkt == "" {
		return nil
	}
	return &confirmation{JKT: jkt}
}

// KeySource finds a published key by id. *keys.Ring is one.
type KeySource interface {
	Key(kid string) (*keys.Key, bool)
}

// Validation is what Verify expects of the claims.
type Validation struct {
	Issuer   string
	Audience string
	Now      time.Time
	// Leeway is the clock skew tolerated on exp and nbf.
	Leeway time.Duration
}

// algorithms lists every algorithm a token may name; the key then pins one.
var algorithms = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256, jose.HS256}

// Verify checks token and returns its claims. An expired but otherwise valid
// token returns its claims together with ErrExpired, so a caller can still read
// the session of an authentic expired token.
func Verify(token string, ks KeySource, v Validation) (Claims, error) {
	if len(token) > MaxLength {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxLength)
	}
	if !compactjws.Valid(token) {
		return Claims{}, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	jws, err := jose.ParseSignedCompact(token, algorithms)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return Claims{}, fmt.Errorf("%w: want one signature", ErrMalformed)
	}
	h := jws.Signatures[0].Protected
	if _, err := h.Certificates(x509.VerifyOptions{}); h.JSONWebKey != nil || !errors.Is(err, jose.ErrMissingX5cHeader) ||
		h.ExtraHeaders["jku"] != nil || h.ExtraHeaders["x5u"] != nil {
		return Claims{}, fmt.Errorf("%w: the header carries key material", ErrMalformed)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if t := strings.ToLower(typ); t != Type && t != "application/"+Type {
		return Claims{}, fmt.Errorf("%w: typ %q", ErrWrongType, typ)
	}
	if h.KeyID == "" {
		return Claims{}, fmt.Errorf("%w: no kid", ErrMalformed)
	}
	k, ok := ks.Key(h.KeyID)
	if !ok {
		return Claims{}, ErrUnknownKey
	}
	if h.Algorithm != k.Algorithm {
		return Claims{}, fmt.Errorf("%w: algorithm %s does not match the key's %s", ErrSignature, h.Algorithm, k.Algorithm)
	}
	payload, err := jws.Verify(k.VerificationKey())
	if err != nil {
		return Claims{}, ErrSignature
	}
	var w wire
	if err := json.Unmarshal(payload, &w); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	switch {
	case w.ExpiresAt == nil:
		return Claims{}, fmt.Errorf("%w: no exp", ErrClaims)
	case w.Issuer != v.Issuer:
		return Claims{}, fmt.Errorf("%w: issuer", ErrClaims)
	case len(w.Audience) != 1 || w.Audience[0] != v.Audience:
		return Claims{}, fmt.Errorf("%w: audience", ErrClaims)
	case w.Subject == "" || w.SessionID == "" || w.ID == "":
		return Claims{}, fmt.Errorf("%w: sub, sid and jti are required", ErrClaims)
	}
	c := Claims{
		Issuer:    w.Issuer,
		Subject:   w.Subject,
		Audience:  w.Audience[0],
		ExpiresAt: w.ExpiresAt.Time(),
		ID:        w.ID,
		SessionID: w.SessionID,
		Fresh:     w.Fresh,
		ClientID:  w.ClientID,
		Scope:     w.Scope,
	}
	if w.Cnf != nil {
		if w.Cnf.JKT == "" {
			return Claims{}, fmt.Errorf("%w: cnf without jkt", ErrClaims)
		}
		c.JKT = w.Cnf.JKT
	}
	if w.IssuedAt != nil {
		c.IssuedAt = w.IssuedAt.Time()
	}
	if w.NotBefore != nil && v.Now.Add(v.Leeway).Before(w.NotBefore.Time()) {
		return Claims{}, ErrNotYetValid
	}
	if !v.Now.Before(c.ExpiresAt.Add(v.Leeway)) {
		return c, ErrExpired
	}
	return c, nil
}

// UnverifiedExpiry reads the exp claim of a compact JWS without verifying
// anything. It serves only to word an error: a token whose key is no longer
// published can still be told apart as expired rather than invalid.
func UnverifiedExpiry(token string) (time.Time, bool) {
	if len(token) > MaxLength {
		return time.Time{}, false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var w struct {
		ExpiresAt *jwt.NumericDate `json:"exp"`
	}
	if json.Unmarshal(raw, &w) != nil || w.ExpiresAt == nil {
		return time.Time{}, false
	}
	return w.ExpiresAt.Time(), true
}

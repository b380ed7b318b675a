package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// Params are what a proof is made for.
type Params struct {
	// Method is the HTTP method of the request (htm).
	Method string
	// URL is the absolute http or https URL of the request; its query and
	// fragment are left out of htu.
	URL string
	// Nonce is the server's latest DPoP-Nonce, if it gave one.
	Nonce string
	// AccessToken is the access token the request presents, if any; the
	// proof then carries its hash (ath), as a resource server requires.
	AccessToken string
	// ID is the proof's jti; empty means 128 random bits. Set it only in
	// tests: a server accepts each jti once.
	ID string
	// IssuedAt is the proof's iat; zero means now.
	IssuedAt time.Time
}

// NewProof returns a DPoP proof for one request, signed by key: an
// *ecdsa.PrivateKey (P-256, P-384, P-521), an ed25519.PrivateKey, an
// *rsa.PrivateKey of at least 2048 bits, or any crypto.Signer whose public key
// is one of those. The algorithm follows from the key (ES256/384/512, EdDSA,
// PS256); the header carries the public key only. A proof is good for one
// request: make a new one for each.
func NewProof(key crypto.Signer, p Params) (string, error) {
	alg, err := algorithmFor(key.Public())
	if err != nil {
		return "", err
	}
	if p.Method == "" {
		return "", errors.New("dpop: Params.Method is empty")
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return "", errors.New("dpop: Params.URL is not a URL")
	}
	if _, err := canonicalURL(u); err != nil {
		return "", fmt.Errorf("dpop: Params.URL: %v", err)
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	c := struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath,omitempty"`
		Nonce string `json:"nonce,omitempty"`
	}{JTI: p.ID, HTM: p.Method, HTU: u.String(), IAT: p.IssuedAt.Unix(), Nonce: p.Nonce}
	if c.JTI == "" {
		c.JTI = rand.Text()
	}
	if p.IssuedAt.IsZero() {
		c.IAT = time.Now().Unix()
	}
	if p.AccessToken != "" {
		sum := sha256.Sum256([]byte(p.AccessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: cryptosigner.Opaque(key)},
		(&jose.SignerOptions{EmbedJWK: true}).WithType(Type))
	if err != nil {
		return "", fmt.Errorf("dpop: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of a public key,
// base64url without padding: the value of cnf.jkt for tokens bound to it.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	if !jwk.IsPublic() {
		return "", errors.New("dpop: Thumbprint takes a public key")
	}
	t, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// algorithmFor is the JWS algorithm a proof by this public key uses.
func algorithmFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
	case ed25519.PublicKey:
		return "EdDSA", nil
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return "", fmt.Errorf("dpop: an RSA key of %d bits (want %d to %d)", n, MinRSABits, MaxRSABits)
		}
		return "PS256", nil
	}
	return "", fmt.Errorf("dpop: unsupported key type %T", pub)
}

package dpop

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// A client keeps one DPoP key for as long as it keeps the tokens bound to it:
// losing the key loses the session, and a key that leaves the client is as
// good as the tokens themselves. Store it the way a refresh token is stored.

// GenerateKey returns a new ECDSA P-256 key, the kind every DPoP server
// accepts (ES256).
func GenerateKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// MarshalPEM encodes a private key as a PKCS #8 "PRIVATE KEY" PEM block.
func MarshalPEM(key crypto.Signer) ([]byte, error) {
	if _, err := algorithmFor(key.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("dpop: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalJWK encodes a private key as a JSON Web Key (RFC 7517), private
// members included.
func MarshalJWK(key crypto.Signer) ([]byte, error) {
	if _, err := algorithmFor(key.Public()); err != nil {
		return nil, err
	}
	b, err := (&jose.JSONWebKey{Key: key}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("dpop: marshal key: %w", err)
	}
	return b, nil
}

// ParseKey decodes a private key written by MarshalPEM or MarshalJWK: a PKCS
// #8 PEM block or a private JSON Web Key, of a type NewProof signs with.
func ParseKey(data []byte) (crypto.Signer, error) {
	data = bytes.TrimSpace(data)
	var key any
	if bytes.HasPrefix(data, []byte("{")) {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(data); err != nil {
			return nil, errors.New("dpop: the key is not a valid JSON Web Key")
		}
		if jwk.IsPublic() {
			return nil, errors.New("dpop: the JSON Web Key is a public key; a private one is needed")
		}
		key = jwk.Key
	} else {
		b, rest := pem.Decode(data)
		if b == nil || b.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, errors.New(`dpop: the key is neither a JSON Web Key nor one PEM "PRIVATE KEY" block`)
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("dpop: parse key: %w", err)
		}
		key = k
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dpop: unsupported key type %T", key)
	}
	if _, err := algorithmFor(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

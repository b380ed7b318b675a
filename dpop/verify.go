package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/internal/compactjws"
	"github.com/latchkey/latchkey/store"
)

// Type is the JWS "typ" of a DPoP proof (RFC 9449 §4.2).
const Type = "dpop+jwt"

// Defaults of Config, and limits on proofs.
const (
	// DefaultMaxAge is Config.MaxAge when zero.
	DefaultMaxAge = 60 * time.Second
	// DefaultLeeway is Config.Leeway when zero.
	DefaultLeeway = 5 * time.Second
	// DefaultMaxSize is Config.MaxSize when zero.
	DefaultMaxSize = 8192
	// DefaultNonceStep is Config.NonceStep when zero.
	DefaultNonceStep = 5 * time.Minute
	// MaxIDLength is the longest jti accepted, in bytes.
	MaxIDLength = 256
	// MinRSABits is the smallest RSA proof key accepted or signed with.
	MinRSABits = 2048
	// MaxRSABits is the largest RSA proof key accepted or signed with.
	MaxRSABits = 8192
)

// supported lists the algorithms Config.Algorithms may name: asymmetric
// signatures only.
var supported = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// Config configures a Verifier. Zero values take the documented defaults.
type Config struct {
	// Markers records each accepted proof (its key's thumbprint and its jti)
	// until it is too old to be accepted anyway, so a proof is accepted once
	// on every node that shares the store. Required.
	Markers store.Markers
	// Algorithms are the JWS algorithms a proof may be signed with; nil means
	// ES256, EdDSA, RS256 and PS256. Only ES256/384/512, EdDSA,
	// RS256/384/512 and PS256/384/512 may be named: New refuses "none", HMAC
	// and anything else.
	Algorithms []string
	// MaxAge is how long after its iat a proof is still accepted, and how long
	// its jti is remembered; default 60 s, at most 10 minutes.
	MaxAge time.Duration
	// Leeway is how far ahead of this server's clock a proof's iat may be
	// (a client's clock running fast); default 5 s, at most MaxAge.
	Leeway time.Duration
	// MaxSize is the longest proof, in bytes, that is parsed; longer ones are
	// refused unread. Default 8192; between 1024 and 65536.
	MaxSize int
	// NonceKey is the secret server nonces are made and checked with. It
	// must be the same on every node, at least MinNonceKeyLength bytes, and
	// used for nothing else (derive it from the server's key material with a
	// label). Empty means no nonces: Nonce returns "" and a Request with
	// RequireNonce fails. Changing it invalidates every nonce in circulation;
	// clients recover with one use_dpop_nonce retry.
	NonceKey []byte
	// NonceStep is the period after which a new nonce is issued. A nonce is
	// accepted during the step it was issued in and the next one, so it lives
	// between one and two steps. Default 5 minutes; between 10 s and 1 h.
	NonceStep time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	markers   store.Markers
	algs      []jose.SignatureAlgorithm
	names     []string
	maxAge    time.Duration
	leeway    time.Duration
	maxSize   int
	nonces    *nonces
	now       func() time.Time
	markUntil time.Duration
}

// New returns a Verifier for cfg, or an error naming the first setting that
// makes no sense.
func New(cfg Config) (*Verifier, error) {
	if cfg.Markers == nil {
		return nil, errors.New("dpop: Config.Markers is required (replayed proofs could not be refused)")
	}
	v := &Verifier{markers: cfg.Markers, maxAge: cfg.MaxAge, leeway: cfg.Leeway, maxSize: cfg.MaxSize, now: cfg.Now}
	names := cfg.Algorithms
	if names == nil {
		names = []string{"ES256", "EdDSA", "RS256", "PS256"}
	}
	if len(names) == 0 {
		return nil, errors.New("dpop: Config.Algorithms is empty")
	}
	for _, a := range names {
		if !slices.Contains(supported, a) {
			return nil, fmt.Errorf("dpop: algorithm %q is not allowed for proofs (want one of %s)", a, strings.Join(supported, ", "))
		}
		if !slices.Contains(v.names, a) {
			v.names = append(v.names, a)
			v.algs = append(v.algs, jose.SignatureAlgorithm(a))
		}
	}
	switch {
	case v.maxAge == 0:
		v.maxAge = DefaultMaxAge
	case v.maxAge < time.Second || v.maxAge > 10*time.Minute:
		return nil, fmt.Errorf("dpop: Config.MaxAge %v is outside 1s..10m", v.maxAge)
	}
	switch {
	case v.leeway == 0:
		v.leeway = min(DefaultLeeway, v.maxAge)
	case v.leeway < 0 || v.leeway > v.maxAge:
		return nil, fmt.Errorf("dpop: Config.Leeway %v is outside 0..MaxAge", v.leeway)
	}
	switch {
	case v.maxSize == 0:
		v.maxSize = DefaultMaxSize
	case v.maxSize < 1024 || v.maxSize > 65536:
		return nil, fmt.Errorf("dpop: Config.MaxSize %d is outside 1024..65536", v.maxSize)
	}
	if len(cfg.NonceKey) > 0 {
		if len(cfg.NonceKey) < MinNonceKeyLength {
			return nil, fmt.Errorf("dpop: Config.NonceKey has %d bytes, want at least %d", len(cfg.NonceKey), MinNonceKeyLength)
		}
		step := cfg.NonceStep
		switch {
		case step == 0:
			step = DefaultNonceStep
		case step < 10*time.Second || step > time.Hour:
			return nil, fmt.Errorf("dpop: Config.NonceStep %v is outside 10s..1h", step)
		}
		v.nonces = &nonces{key: slices.Clone(cfg.NonceKey), step: step}
	} else if cfg.NonceStep != 0 {
		return nil, errors.New("dpop: Config.NonceStep is set but Config.NonceKey is empty")
	}
	if v.now == nil {
		v.now = time.Now
	}
	// A proof is accepted until iat+MaxAge; its marker outlives that by a
	// second so that rounding to the store's milliseconds never opens a gap.
	v.markUntil = v.maxAge + time.Second
	return v, nil
}

// Algorithms returns the algorithms proofs may be signed with, as RFC 8414
// metadata's dpop_signing_alg_values_supported lists them.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.names) }

// Nonce returns the current server nonce, for the DPoP-Nonce response header,
// or "" when Config.NonceKey is empty. Every node sharing the key accepts it.
func (v *Verifier) Nonce() string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.issue(v.now())
}

// Request is what a proof must match.
type Request struct {
	// Method is the request's HTTP method, compared with htm exactly.
	Method string
	// URL is the URL the client used, as the server reconstructs it (scheme
	// and host as seen outside any trusted proxy). Its scheme, host, port and
	// path are compared with htu after normalisation; query and fragment are
	// ignored.
	URL *url.URL
	// Proofs are the values of every DPoP header field of the request
	// (http.Header.Values("DPoP")). Exactly one is required.
	Proofs []string
	// AccessToken, when not empty, is the access token the request presents;
	// the proof must then carry ath, its SHA-256 hash.
	AccessToken string
	// RequireNonce makes a proof without a valid server nonce fail with
	// use_dpop_nonce. A nonce in a proof is ignored when it is false.
	RequireNonce bool
}

// Proof is a verified DPoP proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's public key,
	// base64url: what a token bound to this key carries as cnf.jkt.
	JKT string
	// ID is the proof's jti.
	ID string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Algorithm is the JWS algorithm the proof is signed with.
	Algorithm string
	// Key is the proof's public key: *ecdsa.PublicKey, ed25519.PublicKey or
	// *rsa.PublicKey.
	Key crypto.PublicKey
}

// Verify checks the request's one DPoP proof (RFC 9449 §4.3) and records its
// jti so that it is never accepted again. A refused proof returns an *Error
// (compare with errors.Is against ErrInvalidProof or ErrUseNonce); any other
// error is a failure of the store or of the caller's configuration, and the
// proof is refused too.
func (v *Verifier) Verify(ctx context.Context, r Request) (Proof, error) {
	return v.verify(ctx, r, nil)
}

// VerifyBound is Verify for a request to a resource server carrying an
// access token bound to the key with thumbprint jkt (the token's cnf.jkt
// claim, read after the token itself has been verified). The proof must carry
// ath for r.AccessToken, which must not be empty, and be signed by that key;
// otherwise the error is ErrKeyMismatch (invalid_token), which an empty jkt
// (an unbound token) also gets.
func (v *Verifier) VerifyBound(ctx context.Context, r Request, jkt string) (Proof, error) {
	if r.AccessToken == "" {
		return Proof{}, errors.New("dpop: VerifyBound needs Request.AccessToken")
	}
	return v.verify(ctx, r, &jkt)
}

func (v *Verifier) verify(ctx context.Context, r Request, bound *string) (Proof, error) {
	switch len(r.Proofs) {
	case 0:
		return Proof{}, invalid("the request carries no DPoP proof")
	case 1:
	default:
		return Proof{}, invalid("the request carries more than one DPoP header")
	}
	if r.RequireNonce && v.nonces == nil {
		return Proof{}, errors.New("dpop: a nonce is required but Config.NonceKey is empty")
	}
	if r.URL == nil {
		return Proof{}, errors.New("dpop: Request.URL is nil")
	}
	want, err := canonicalURL(r.URL)
	if err != nil {
		return Proof{}, &Error{Code: CodeInvalidProof, Message: "the request URL cannot be compared with htu", Err: err}
	}
	raw := r.Proofs[0]
	if len(raw) > v.maxSize {
		return Proof{}, invalid(fmt.Sprintf("the DPoP proof is longer than %d bytes", v.maxSize))
	}
	if !compactjws.Valid(raw) {
		return Proof{}, invalid("the DPoP proof is not a compact JWS")
	}
	if err := checkHeader(raw[:strings.IndexByte(raw, '.')]); err != nil {
		return Proof{}, err
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		var bad *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &bad) {
			return Proof{}, invalid("the DPoP proof's algorithm is not allowed")
		}
		return Proof{}, invalid("the DPoP proof is malformed")
	}
	if len(jws.Signatures) != 1 {
		return Proof{}, invalid("the DPoP proof must have one signature")
	}
	h := jws.Signatures[0].Protected
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return Proof{}, invalid("the DPoP proof's jwk is not a public key")
	}
	if err := keyFits(h.Algorithm, jwk.Key); err != nil {
		return Proof{}, err
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return Proof{}, invalid("the DPoP proof's signature does not verify with its jwk")
	}
	c, err := readClaims(payload)
	if err != nil {
		return Proof{}, invalid("the DPoP proof's claims are malformed")
	}
	switch {
	case c.JTI == "":
		return Proof{}, invalid("the DPoP proof has no jti")
	case len(c.JTI) > MaxIDLength:
		return Proof{}, invalid("the DPoP proof's jti is too long")
	case c.HTM == "" || c.HTU == "" || c.IAT == nil:
		return Proof{}, invalid("the DPoP proof lacks htm, htu or iat")
	case c.HTM != r.Method:
		return Proof{}, invalid("the DPoP proof is for another HTTP method")
	}
	htu, err := url.Parse(c.HTU)
	if err != nil {
		return Proof{}, invalid("the DPoP proof's htu is not a URL")
	}
	if got, err := canonicalURL(htu); err != nil || got != want {
		return Proof{}, invalid("the DPoP proof is for another URL")
	}
	now := v.now()
	if *c.IAT < 0 || *c.IAT > 1<<40 || math.IsNaN(*c.IAT) {
		return Proof{}, invalid("the DPoP proof's iat is out of range")
	}
	sec, frac := math.Modf(*c.IAT)
	iat := time.Unix(int64(sec), int64(frac*1e9))
	switch {
	case now.Sub(iat) > v.maxAge:
		return Proof{}, invalid("the DPoP proof is too old")
	case iat.Sub(now) > v.leeway:
		return Proof{}, invalid("the DPoP proof is issued in the future")
	}
	if r.AccessToken != "" {
		sum := sha256.Sum256([]byte(r.AccessToken))
		if c.ATH == "" {
			return Proof{}, invalid("the DPoP proof has no ath for the access token")
		}
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return Proof{}, invalid("the DPoP proof's ath does not match the access token")
		}
	}
	if r.RequireNonce {
		if c.Nonce == "" {
			return Proof{}, &Error{Code: CodeUseNonce, Message: "the DPoP proof must carry the server's nonce"}
		}
		if !v.nonces.valid(c.Nonce, now, v.leeway) {
			return Proof{}, &Error{Code: CodeUseNonce, Message: "the DPoP proof's nonce is expired or not ours"}
		}
	}
	jkt, err := Thumbprint(jwk.Key)
	if err != nil {
		return Proof{}, invalid("the DPoP proof's jwk has no thumbprint")
	}
	if bound != nil && (*bound == "" || subtle.ConstantTimeCompare([]byte(jkt), []byte(*bound)) != 1) {
		return Proof{}, ErrKeyMismatch
	}
	if err := v.markers.Mark(ctx, markerKey(jkt, c.JTI), now, iat.Add(v.markUntil)); err != nil {
		if errors.Is(err, store.ErrExists) {
			return Proof{}, invalid("the DPoP proof has been used already")
		}
		return Proof{}, fmt.Errorf("dpop: replay check: %w", err)
	}
	return Proof{JKT: jkt, ID: c.JTI, IssuedAt: iat, Algorithm: h.Algorithm, Key: jwk.Key}, nil
}

// claims are the claims of a proof that Verify reads.
type claims struct {
	JTI, HTM, HTU, ATH, Nonce string
	IAT                       *float64
}

// readClaims decodes the claims of a proof. Member names are matched exactly
// (encoding/json would match "HTU" to a field htu), and a claim of the wrong
// JSON type is an error.
func readClaims(payload []byte) (claims, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return claims{}, err
	}
	get := func(name string, into any) error {
		if v, ok := m[name]; ok {
			return json.Unmarshal(v, into)
		}
		return nil
	}
	var c claims
	err := errors.Join(get("jti", &c.JTI), get("htm", &c.HTM), get("htu", &c.HTU),
		get("ath", &c.ATH), get("nonce", &c.Nonce), get("iat", &c.IAT))
	return c, err
}

// markerKey is the store key recording that the proof jti of the key jkt was
// accepted: fixed length whatever the jti, and apart from every other marker.
func markerKey(jkt, jti string) string {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	return "dpop:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// privateMembers are the JWK members of private or symmetric keys (RFC 7518
// §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// checkHeader reads the protected header before the JOSE library does, for
// what the library would not refuse by itself: a typ other than dpop+jwt, a
// jwk with private members, critical extensions.
func checkHeader(seg string) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return invalid("the DPoP proof's header is not base64url")
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b, &h); err != nil {
		return invalid("the DPoP proof's header is not a JSON object")
	}
	var typ string
	if err := json.Unmarshal(h["typ"], &typ); err != nil || typ != Type {
		return invalid("the DPoP proof's typ is not " + Type)
	}
	if _, ok := h["crit"]; ok {
		return invalid("the DPoP proof has critical header parameters")
	}
	var jwk map[string]json.RawMessage
	if err := json.Unmarshal(h["jwk"], &jwk); err != nil || jwk == nil {
		return invalid("the DPoP proof has no jwk")
	}
	for _, m := range privateMembers {
		if _, ok := jwk[m]; ok {
			return invalid("the DPoP proof's jwk holds a private or symmetric key")
		}
	}
	return nil
}

// keyFits checks that key is of the type alg signs with, and of a sane size.
func keyFits(alg string, key crypto.PublicKey) error {
	ok := false
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			ok = k.Curve == elliptic.P256()
		case "ES384":
			ok = k.Curve == elliptic.P384()
		case "ES512":
			ok = k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		ok = alg == "EdDSA"
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return invalid("the DPoP proof's RSA key has an unsupported size")
		}
		ok = strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	}
	if !ok {
		return invalid("the DPoP proof's algorithm does not match its jwk")
	}
	return nil
}

package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/latchkey/latchkey/store"
)

// Algorithms returns the signing algorithms keys can be made for, the
// default first. It is the one list of them; callers get their own copy.
func Algorithms() []string { return []string{"EdDSA", "ES256", "RS256", "HS256"} }

// Config configures a Ring.
type Config struct {
	// Store persists the keys. Required.
	Store store.Keys
	// EncryptionKey seals private keys with AES-256-GCM; exactly 32 bytes.
	EncryptionKey []byte
	// Algorithm of the keys this ring creates and signs with; default EdDSA.
	Algorithm string
	// Retain is how long a retired key stays published: the access token
	// lifetime plus clock leeway. Required.
	Retain time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReadOnly is for administrative tools, whose flags may not match the
	// servers': Open takes the stored keys as they are (creating, promoting
	// and deleting nothing), and Rotate keeps the current key's algorithm and
	// deletes nothing.
	ReadOnly bool
}

// Key states.
const (
	StateNext    = "next"
	StateCurrent = "current"
	StateRetired = "retired"
)

// Key is an unsealed signing key.
type Key struct {
	// ID is the key id ("kid").
	ID string
	// Algorithm is the JWS algorithm the key is pinned to.
	Algorithm string

	rec     store.Key
	private any // ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey or []byte (HS256)

	signerOnce sync.Once
	signer     jose.Signer
	signerErr  error
}

// Signer returns a JWS signer for the key that sets "kid" and the given type
// header. It is created once and shared.
func (k *Key) Signer() (jose.Signer, error) {
	k.signerOnce.Do(func() {
		opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k.ID)
		k.signer, k.signerErr = jose.NewSigner(jose.SigningKey{
			Algorithm: jose.SignatureAlgorithm(k.Algorithm),
			Key:       jose.JSONWebKey{Key: k.private, KeyID: k.ID, Algorithm: k.Algorithm},
		}, opts)
	})
	return k.signer, k.signerErr
}

// VerificationKey returns what verifies the key's signatures: the public key,
// or for HS256 the shared secret.
func (k *Key) VerificationKey() any {
	switch p := k.private.(type) {
	case ed25519.PrivateKey:
		return p.Public()
	case *ecdsa.PrivateKey:
		return &p.PublicKey
	case *rsa.PrivateKey:
		return &p.PublicKey
	}
	return k.private
}

// Symmetric reports whether the key is a shared secret (HS256), which is never
// published.
func (k *Key) Symmetric() bool { _, ok := k.private.([]byte); return ok }

// KeyInfo describes a key for listings; it holds nothing secret.
type KeyInfo struct {
	ID, Algorithm, State              string
	CreatedAt, ActivatedAt, RetiredAt time.Time
}

func (k *Key) state() string {
	switch {
	case !k.rec.RetiredAt.IsZero():
		return StateRetired
	case !k.rec.ActivatedAt.IsZero():
		return StateCurrent
	}
	return StateNext
}

// snapshot is an immutable view of the ring; readers never wait for I/O.
type snapshot struct {
	byID    map[string]*Key
	current *Key
	jwks    []byte
	info    []KeyInfo
}

// Ring is the set of signing keys of a deployment. It is safe for concurrent use.
type Ring struct {
	cfg  Config
	aead cipher.AEAD
	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // serialises Reload and Rotate
}

// Open loads the keys from the store and makes sure there is a current key and
// a published next key of cfg.Algorithm, creating them on first start. If the
// current key has another algorithm (the configuration changed), a key of the
// new algorithm becomes current at once and the old one is retired; such a
// switch cannot be announced in advance.
func Open(ctx context.Context, cfg Config) (*Ring, error) {
	if cfg.Store == nil {
		return nil, errors.New("keys: Config.Store is required")
	}
	if len(cfg.EncryptionKey) != 32 {
		return nil, errors.New("keys: the encryption key must be 32 bytes")
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = "EdDSA"
	}
	if !slices.Contains(Algorithms(), cfg.Algorithm) {
		return nil, fmt.Errorf("keys: unsupported algorithm %q", cfg.Algorithm)
	}
	if cfg.Retain <= 0 {
		return nil, errors.New("keys: Config.Retain must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	block, err := aes.NewCipher(cfg.EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	r := &Ring{cfg: cfg, aead: aead}
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.ReadOnly {
		r.publish(keys)
		return r, nil
	}
	if err := r.ensure(ctx, keys); err != nil {
		return nil, err
	}
	return r, nil
}

// SigningKey returns the current key.
func (r *Ring) SigningKey() *Key { return r.snap.Load().current }

// Key returns a published key by id: a next key, the current key, or a key
// retired less than Retain ago. It does no I/O.
func (r *Ring) Key(kid string) (*Key, bool) {
	k, ok := r.snap.Load().byID[kid]
	if !ok {
		return nil, false
	}
	if ret := k.rec.RetiredAt; !ret.IsZero() && !r.cfg.Now().Before(ret.Add(r.cfg.Retain)) {
		return nil, false
	}
	return k, true
}

// JWKS returns the JSON Web Key Set of the published asymmetric keys: public
// members only, each with kid, alg and use "sig". HS256 secrets never appear.
func (r *Ring) JWKS() []byte { return r.snap.Load().jwks }

// Info lists the keys in the order of their life: retired, current, next.
func (r *Ring) Info() []KeyInfo { return slices.Clone(r.snap.Load().info) }

// Reload re-reads the keys from the store, to pick up a rotation made by
// another node.
func (r *Ring) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, err := r.load(ctx)
	if err != nil {
		return err
	}
	r.publish(keys)
	return nil
}

// Rotate makes the oldest next key current (refusing while it has been
// published for less than MinPublished), retires the current key (it stays
// published for Retain), publishes a new next key, and deletes keys retired
// longer than Retain ago. If two nodes rotate at once, both results stay
// published; the key activated last is current everywhere after a reload.
func (r *Ring) Rotate(ctx context.Context) error { return r.rotate(ctx, false) }

// ForceRotate is Rotate without the MinPublished wait: verifiers that fetched
// the JWKS within the last minute may refuse new tokens until they refetch.
// For tests, and for replacing a compromised key at once.
func (r *Ring) ForceRotate(ctx context.Context) error { return r.rotate(ctx, true) }

func (r *Ring) rotate(ctx context.Context, force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, err := r.load(ctx)
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	if r.cfg.ReadOnly {
		if cur := current(keys); cur != nil {
			r.cfg.Algorithm = cur.Algorithm // a tool's default flag must not switch the algorithm
		}
	}
	if next := oldestNext(keys, r.cfg.Algorithm); !force && next != nil && now.Sub(next.rec.CreatedAt) < MinPublished {
		return fmt.Errorf("keys: the next key was published %v ago; rotating before %v would sign with a key verifiers may not have fetched yet",
			now.Sub(next.rec.CreatedAt).Round(time.Second), MinPublished)
	}
	if keys, err = r.promote(ctx, keys, now); err != nil {
		return err
	}
	return r.complete(ctx, keys, now)
}

// MinPublished is how long a next key must have been in the JWKS before
// Rotate lets it sign: longer than the JWKS's cache lifetime (60 s).
const MinPublished = 2 * time.Minute

// ensure creates what a working ring needs: a current and a next key of the
// configured algorithm.
func (r *Ring) ensure(ctx context.Context, keys []*Key) error {
	now := r.cfg.Now()
	if cur := current(keys); cur == nil || cur.Algorithm != r.cfg.Algorithm {
		var err error
		if keys, err = r.promote(ctx, keys, now); err != nil {
			return err
		}
	}
	return r.complete(ctx, keys, now)
}

// promote makes the oldest next key of the configured algorithm current
// (creating one if there is none) and retires the current key and any next key
// of another algorithm.
func (r *Ring) promote(ctx context.Context, keys []*Key, now time.Time) ([]*Key, error) {
	next := oldestNext(keys, r.cfg.Algorithm)
	if next == nil {
		var err error
		if next, err = r.create(ctx, now); err != nil {
			return nil, err
		}
		keys = append(keys, next)
	}
	// Activate first, retire after: a node reloading between the two writes
	// sees two current keys (the newest wins), never none.
	var old []*Key
	for _, k := range keys {
		if k.state() == StateCurrent || (k.state() == StateNext && k.Algorithm != r.cfg.Algorithm && k != next) {
			old = append(old, k)
		}
	}
	next.rec.ActivatedAt = now
	if err := r.put(ctx, next); err != nil {
		return nil, err
	}
	for _, k := range old {
		k.rec.RetiredAt = now
		if err := r.put(ctx, k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// complete publishes a next key if there is none, deletes keys retired longer
// than Retain ago, and installs the result.
func (r *Ring) complete(ctx context.Context, keys []*Key, now time.Time) error {
	if oldestNext(keys, r.cfg.Algorithm) == nil {
		k, err := r.create(ctx, now)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	keys, err := r.deleteExpired(ctx, keys, now)
	if err != nil {
		return err
	}
	r.publish(keys)
	return nil
}

func (r *Ring) deleteExpired(ctx context.Context, keys []*Key, now time.Time) ([]*Key, error) {
	if r.cfg.ReadOnly {
		return keys, nil // the tool's Retain may be shorter than the servers'
	}
	kept := keys[:0]
	for _, k := range keys {
		if ret := k.rec.RetiredAt; !ret.IsZero() && !now.Before(ret.Add(r.cfg.Retain)) {
			if err := r.cfg.Store.DeleteKey(ctx, k.ID); err != nil {
				return nil, fmt.Errorf("keys: delete: %w", err)
			}
			continue
		}
		kept = append(kept, k)
	}
	return kept, nil
}

// current is the non-retired key activated last.
func current(keys []*Key) *Key {
	var cur *Key
	for _, k := range keys {
		if k.state() == StateCurrent && (cur == nil || k.rec.ActivatedAt.After(cur.rec.ActivatedAt)) {
			cur = k
		}
	}
	return cur
}

// oldestNext is the next key of alg published longest.
func oldestNext(keys []*Key, alg string) *Key {
	var next *Key
	for _, k := range keys {
		if k.state() == StateNext && k.Algorithm == alg && (next == nil || k.rec.CreatedAt.Before(next.rec.CreatedAt)) {
			next = k
		}
	}
	return next
}

// publish builds and installs a snapshot of keys.
func (r *Ring) publish(keys []*Key) {
	s := &snapshot{byID: map[string]*Key{}, current: current(keys)}
	if s.current == nil {
		// Another node is between two writes of a rotation: keep signing with
		// the key this node has; the next reload sees the finished rotation.
		if prev := r.snap.Load(); prev != nil {
			s.current = prev.current
		}
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keys {
		s.byID[k.ID] = k
		s.info = append(s.info, KeyInfo{ID: k.ID, Algorithm: k.Algorithm, State: k.state(),
			CreatedAt: k.rec.CreatedAt, ActivatedAt: k.rec.ActivatedAt, RetiredAt: k.rec.RetiredAt})
		if !k.Symmetric() {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.VerificationKey(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
		}
	}
	rank := map[string]int{StateRetired: 0, StateCurrent: 1, StateNext: 2}
	slices.SortStableFunc(s.info, func(a, b KeyInfo) int {
		if d := rank[a.State] - rank[b.State]; d != 0 {
			return d
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	s.jwks, _ = json.Marshal(set)
	r.snap.Store(s)
}

// load reads and unseals every stored key, oldest first.
func (r *Ring) load(ctx context.Context) ([]*Key, error) {
	recs, err := r.cfg.Store.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	keys := make([]*Key, 0, len(recs))
	for _, rec := range recs {
		k, err := r.unseal(rec)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (r *Ring) put(ctx context.Context, k *Key) error {
	if err := r.cfg.Store.PutKey(ctx, k.rec); err != nil {
		return fmt.Errorf("keys: put: %w", err)
	}
	return nil
}

// create generates, seals and stores a new next key.
func (r *Ring) create(ctx context.Context, now time.Time) (*Key, error) {
	priv, der, err := generate(r.cfg.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("keys: generate: %w", err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	k := &Key{ID: base64.RawURLEncoding.EncodeToString(id), Algorithm: r.cfg.Algorithm, private: priv}
	nonce := make([]byte, r.aead.NonceSize())
	rand.Read(nonce)
	k.rec = store.Key{
		ID:        k.ID,
		Algorithm: k.Algorithm,
		Sealed:    r.aead.Seal(nonce, nonce, der, aad(k.ID, k.Algorithm)),
		CreatedAt: now,
	}
	if err := r.put(ctx, k); err != nil {
		return nil, err
	}
	return k, nil
}

func aad(kid, alg string) []byte { return []byte("latchkey signing key v1\x00" + kid + "\x00" + alg) }

// unseal decrypts a stored key; a wrong secret or a blob moved to another row
// fails authentication.
func (r *Ring) unseal(rec store.Key) (*Key, error) {
	ns := r.aead.NonceSize()
	if len(rec.Sealed) < ns+r.aead.Overhead() {
		return nil, fmt.Errorf("keys: key %s: sealed data is truncated", rec.ID)
	}
	der, err := r.aead.Open(nil, rec.Sealed[:ns], rec.Sealed[ns:], aad(rec.ID, rec.Algorithm))
	if err != nil {
		return nil, fmt.Errorf("keys: key %s cannot be unsealed: the deployment secret differs from the one it was sealed with", rec.ID)
	}
	priv, err := parse(rec.Algorithm, der)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", rec.ID, err)
	}
	return &Key{ID: rec.ID, Algorithm: rec.Algorithm, rec: rec, private: priv}, nil
}

// generate makes a private key for alg and its serialised form.
func generate(alg string) (any, []byte, error) {
	var priv any
	var err error
	switch alg {
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "HS256":
		secret := make([]byte, 32)
		rand.Read(secret)
		return secret, secret, nil
	default:
		return nil, nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	return priv, der, err
}

// parse reverses generate's serialisation and checks the key fits alg.
func parse(alg string, der []byte) (any, error) {
	if alg == "HS256" {
		if len(der) < 32 {
			return nil, errors.New("HS256 secret is too short")
		}
		return der, nil
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ok := false
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		ok = alg == "EdDSA"
	case *ecdsa.PrivateKey:
		ok = alg == "ES256" && p.Curve == elliptic.P256()
	case *rsa.PrivateKey:
		ok = alg == "RS256" && p.N.BitLen() >= 2048
	}
	if !ok {
		return nil, fmt.Errorf("stored key does not fit algorithm %s", alg)
	}
	return priv, nil
}

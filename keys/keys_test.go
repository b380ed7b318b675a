package keys_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/sqlite"
)

type fixture struct {
	db    *sqlite.DB
	enc   []byte
	clock *fakeclock.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	enc := make([]byte, 32)
	rand.Read(enc)
	return &fixture{db: db, enc: enc, clock: fakeclock.New(time.Unix(1_800_000_000, 0))}
}

func (f *fixture) open(t *testing.T, alg string) (*keys.Ring, error) {
	t.Helper()
	return keys.Open(context.Background(), keys.Config{Store: f.db, EncryptionKey: f.enc, Algorithm: alg, Retain: 15 * time.Minute, Now: f.clock.Now})
}

func (f *fixture) mustOpen(t *testing.T, alg string) *keys.Ring {
	t.Helper()
	r, err := f.open(t, alg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func kids(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			if _, ok := k[private]; ok {
				t.Fatalf("JWKS publishes private member %q", private)
			}
		}
		if k["use"] != "sig" || k["alg"] == nil {
			t.Fatalf("JWKS key lacks use/alg: %v", k)
		}
		ids = append(ids, k["kid"].(string))
	}
	return ids
}

func TestFirstStartPublishesCurrentAndNext(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t)
			r := f.mustOpen(t, alg)
			info := r.Info()
			if len(info) != 2 || info[0].State != keys.StateCurrent || info[1].State != keys.StateNext {
				t.Fatalf("Info = %+v, want a current and a next key", info)
			}
			if ids := kids(t, r.JWKS()); len(ids) != 2 {
				t.Fatalf("JWKS has %d keys, want 2", len(ids))
			}
			// A second node on the same store shares the keys instead of making more.
			r2 := f.mustOpen(t, alg)
			if r2.SigningKey().ID != r.SigningKey().ID || len(r2.Info()) != 2 {
				t.Fatal("a second Open made new keys")
			}
		})
	}
}

func TestHS256IsNeverPublished(t *testing.T) {
	f := newFixture(t)
	r := f.mustOpen(t, "HS256")
	if ids := kids(t, r.JWKS()); len(ids) != 0 {
		t.Fatalf("JWKS publishes HS256 keys %v", ids)
	}
	if !r.SigningKey().Symmetric() {
		t.Fatal("HS256 key is not symmetric")
	}
}

// Rotation promotes the key that was already published, keeps the old one
// verifiable for Retain, then drops it.
func TestRotation(t *testing.T) {
	f := newFixture(t)
	r := f.mustOpen(t, "EdDSA")
	old := r.SigningKey().ID
	next := ""
	for _, k := range r.Info() {
		if k.State == keys.StateNext {
			next = k.ID
		}
	}
	f.clock.Add(time.Hour)
	if err := r.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.SigningKey().ID != next {
		t.Fatalf("after rotation the signing key is %s, want the published next key %s", r.SigningKey().ID, next)
	}
	if _, ok := r.Key(old); !ok {
		t.Fatal("the retired key no longer verifies right after rotation")
	}
	ids := kids(t, r.JWKS())
	if len(ids) != 3 || !strings.Contains(strings.Join(ids, ","), old) {
		t.Fatalf("JWKS after rotation = %v, want retired, current and a new next", ids)
	}
	// Another node picks the rotation up on reload.
	other := f.mustOpen(t, "EdDSA")
	if other.SigningKey().ID != next {
		t.Fatal("another node does not sign with the rotated key")
	}
	f.clock.Add(15 * time.Minute)
	if _, ok := r.Key(old); ok {
		t.Fatal("a key retired longer than Retain still verifies")
	}
	if err := r.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, k := range r.Info() {
		if k.ID == old {
			t.Fatal("an expired retired key was not deleted")
		}
	}
}

func TestAlgorithmSwitch(t *testing.T) {
	f := newFixture(t)
	ed := f.mustOpen(t, "EdDSA").SigningKey().ID
	r := f.mustOpen(t, "ES256")
	if r.SigningKey().Algorithm != "ES256" {
		t.Fatalf("signing algorithm = %s", r.SigningKey().Algorithm)
	}
	if k, ok := r.Key(ed); !ok || k.Algorithm != "EdDSA" {
		t.Fatal("the EdDSA key is not kept for its outstanding tokens")
	}
}

func TestWrongSecretFailsCleanly(t *testing.T) {
	f := newFixture(t)
	f.mustOpen(t, "EdDSA")
	f.enc = make([]byte, 32)
	rand.Read(f.enc)
	if _, err := f.open(t, "EdDSA"); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open with another secret = %v, want an error naming the secret", err)
	}
}

// A sealed key copied into another row (another kid) does not unseal.
func TestSealedKeyBoundToItsID(t *testing.T) {
	f := newFixture(t)
	r := f.mustOpen(t, "EdDSA")
	ks, err := f.db.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	moved := store.Key{ID: "attacker-kid", Algorithm: ks[0].Algorithm, Sealed: ks[0].Sealed, CreatedAt: ks[0].CreatedAt, ActivatedAt: f.clock.Now()}
	if err := f.db.PutKey(context.Background(), moved); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(context.Background()); err == nil {
		t.Fatal("a sealed key moved to another id was accepted")
	}
	// Nor does the database hold the key in the clear.
	for _, k := range ks {
		if strings.Contains(string(k.Sealed), "PRIVATE") {
			t.Fatal("sealed blob looks like plaintext")
		}
	}
}

func TestConfigErrors(t *testing.T) {
	f := newFixture(t)
	for name, cfg := range map[string]keys.Config{
		"no store":  {EncryptionKey: f.enc, Retain: time.Minute},
		"short key": {Store: f.db, EncryptionKey: f.enc[:16], Retain: time.Minute},
		"bad alg":   {Store: f.db, EncryptionKey: f.enc, Algorithm: "none", Retain: time.Minute},
		"no retain": {Store: f.db, EncryptionKey: f.enc},
	} {
		if _, err := keys.Open(context.Background(), cfg); err == nil {
			t.Errorf("Open(%s) succeeded", name)
		}
	}
}

// Another node rotating writes "activate next" and "retire current" one after
// the other; a reload between them must never leave this node without a key
// to sign with.
func TestReloadMidRotationKeepsASigningKey(t *testing.T) {
	f := newFixture(t)
	r := f.mustOpen(t, "EdDSA")
	ks, err := f.db.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if k.ID == r.SigningKey().ID {
			k.RetiredAt = f.clock.Now() // the other node retired it before activating the next
			if err := f.db.PutKey(context.Background(), k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.SigningKey() == nil {
		t.Fatal("no signing key after a reload in the middle of a rotation")
	}
}

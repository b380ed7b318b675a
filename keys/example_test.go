package keys_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/store/sqlite"
)

func Example() {
	dir, _ := os.MkdirTemp("", "keys-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(context.Background(), filepath.Join(dir, "keys.db"))
	defer db.Close()
	sealKey := make([]byte, 32) // derived from the deployment secret in latchkey
	rand.Read(sealKey)

	ring, _ := keys.Open(context.Background(), keys.Config{Store: db, EncryptionKey: sealKey, Retain: 15 * time.Minute})
	for _, k := range ring.Info() {
		fmt.Println(k.Algorithm, k.State)
	}
	_ = ring.ForceRotate(context.Background())
	for _, k := range ring.Info() {
		fmt.Println(k.Algorithm, k.State)
	}
	// Output:
	// EdDSA current
	// EdDSA next
	// EdDSA retired
	// EdDSA current
	// EdDSA next
}

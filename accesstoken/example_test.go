package accesstoken_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/latchkey/latchkey/accesstoken"
	"github.com/latchkey/latchkey/keys"
	"github.com/latchkey/latchkey/store/sqlite"
)

func Example() {
	dir, _ := os.MkdirTemp("", "accesstoken-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(context.Background(), filepath.Join(dir, "keys.db"))
	defer db.Close()
	sealKey := make([]byte, 32)
	rand.Read(sealKey)
	ring, _ := keys.Open(context.Background(), keys.Config{Store: db, EncryptionKey: sealKey, Retain: 15 * time.Minute})

	now := time.Now()
	tok, _ := accesstoken.Sign(ring.SigningKey(), accesstoken.Claims{
		Issuer: "https://auth.example", Subject: "user-1", Audience: "api",
		IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute), ID: "j1", SessionID: "s1",
	})
	c, err := accesstoken.Verify(tok, ring, accesstoken.Validation{Issuer: "https://auth.example", Audience: "api", Now: now})
	fmt.Println(c.Subject, c.SessionID, err)

	_, err = accesstoken.Verify(tok, ring, accesstoken.Validation{Issuer: "https://auth.example", Audience: "api", Now: now.Add(time.Hour)})
	fmt.Println(err)
	// Output:
	// user-1 s1 <nil>
	// accesstoken: token expired
}

package latchkey_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/sqlite"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "latchkey-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	defer db.Close()
	secret := make([]byte, 32) // in production: latchkey.ParseSecret(os.Getenv("APP_SECRET"))
	rand.Read(secret)

	auth, err := latchkey.New(ctx, latchkey.Config{Store: db, Secret: secret})
	if err != nil {
		panic(err)
	}
	defer auth.Close()

	// After checking the user's password:
	pair, _ := auth.Login(ctx, "user-42", latchkey.LoginOptions{Fresh: true})
	p, _ := auth.Verify(ctx, pair.AccessToken)
	fmt.Println(p.UserID, p.Fresh)

	// Refresh rotates the refresh token.
	next, _ := auth.Refresh(ctx, pair.RefreshToken, latchkey.RefreshOptions{})
	fmt.Println(next.RefreshToken != pair.RefreshToken)

	// Logging out revokes the session's tokens.
	_ = auth.Logout(ctx, p, latchkey.LogoutLocal)
	_, err = auth.Verify(ctx, next.AccessToken)
	fmt.Println(err.(*latchkey.Error).Code)
	// Output:
	// user-42 true
	// true
	// token_revoked
}

package users_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

func Example() {
	dir, _ := os.MkdirTemp("", "users-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(context.Background(), filepath.Join(dir, "users.db"))
	defer db.Close()
	svc, _ := users.New(users.Config{Store: db})
	ctx := context.Background()

	u, _ := svc.Register(ctx, "Alice", "correct horse battery")
	fmt.Println(u.Username)

	_, err := svc.Authenticate(ctx, "alice", "wrong password")
	fmt.Println(errors.Is(err, latchkey.ErrInvalidCredentials))
	_, err = svc.Authenticate(ctx, "nobody", "wrong password")
	fmt.Println(errors.Is(err, latchkey.ErrInvalidCredentials))
	// Output:
	// alice
	// true
	// true
}

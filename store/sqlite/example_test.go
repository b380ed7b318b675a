package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/sqlite"
)

func Example() {
	dir, _ := os.MkdirTemp("", "sqlite-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "latchkey.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	now := time.Now()
	db.CreateSession(ctx, store.Session{ID: "s1", UserID: "u1", RotatedAt: now, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour)})
	s, _ := db.RotateSession(ctx, "s1", store.Rotation{From: 0, At: now, IdleExpiresAt: now.Add(time.Hour)})
	fmt.Println(s.Generation)
	_, err = db.RotateSession(ctx, "s1", store.Rotation{From: 0, At: now})
	fmt.Println(err)
	// Output:
	// 1
	// store: conflict
}

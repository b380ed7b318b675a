package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/internal/batch"
)

// A pipeline of rotations still succeeds after Redis forgot the rotation
// script (a restart, SCRIPT FLUSH): each rotation that met NOSCRIPT is sent
// the script itself, and each keeps its own result — one winner per session,
// ErrConflict for its rival, ErrNotFound for a missing session.
func TestRotateBatchAfterScriptFlush(t *testing.T) {
	db, err := Open(context.Background(), testenv.Redis(t), Options{})
	if err != nil {
		t.Fatalf("the Redis under test is unreachable: %v", err)
	}
	defer db.Close()
	ctx := t.Context()
	at := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 8
	var rs []rotation
	for i := range n {
		id := fmt.Sprintf("flush-%d", i)
		x := store.Session{ID: id, UserID: "u", CreatedAt: at, RotatedAt: at, LastUsedAt: at,
			IdleExpiresAt: at.Add(time.Hour), ExpiresAt: at.Add(time.Hour)}
		if err := db.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
		r := rotation{key: db.sessionKey(id), r: store.Rotation{At: at.Add(time.Minute)}}
		rs = append(rs, r, r)
	}
	rs = append(rs, rotation{key: db.sessionKey("flush-missing"), r: store.Rotation{At: at}})
	if err := db.c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	out, err := db.rotateBatch(ctx, rs)
	if err != nil {
		t.Fatalf("rotateBatch after SCRIPT FLUSH = %v", err)
	}
	for i := range n {
		a, b := out[2*i], out[2*i+1]
		if a.err != nil || a.s.Generation != 1 || !errors.Is(b.err, store.ErrConflict) {
			t.Fatalf("session %d: first rotation %+v, %v; second %v; want generation 1, then ErrConflict", i, a.s.Generation, a.err, b.err)
		}
	}
	if last := out[len(out)-1]; !errors.Is(last.err, store.ErrNotFound) {
		t.Fatalf("rotation of a missing session = %v, want ErrNotFound", last.err)
	}
}

// Unbatched makes db send every rotation on its own (batches of one, as many
// at once as the client has connections), the baseline of group commit.
func Unbatched(db *DB) {
	db.rotations.Close()
	db.rotations = batch.New(32, 1, 0, db.rotateBatch) // the benchmarks open 32 connections
}

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
// ErrConflict for its rival, ErrNotFound for a missing session, Redis's own
// error for a script that fails, without failing the scripts around it.
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
	// A key that is not a hash: its script fails on its own (WRONGTYPE), and
	// the rotations around it in the pipeline still count — a pipeline is not
	// a transaction, so they were written and must be answered as such.
	broken := db.sessionKey("flush-not-a-hash")
	if err := db.c.Set(ctx, broken, "x", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	rs = append(rs[:2], append([]rotation{{key: broken, r: store.Rotation{At: at}}}, rs[2:]...)...)
	if err := db.c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	out, err := db.rotateBatch(ctx, rs)
	if err != nil {
		t.Fatalf("rotateBatch after SCRIPT FLUSH = %v", err)
	}
	if e := out[2].err; e == nil || errors.Is(e, store.ErrConflict) || errors.Is(e, store.ErrNotFound) {
		t.Fatalf("rotation of a key that is not a hash = %v, want Redis's error", e)
	}
	out = append(out[:2], out[3:]...)
	for i := range n {
		a, b := out[2*i], out[2*i+1]
		if a.err != nil || a.s.Generation != 1 || !errors.Is(b.err, store.ErrConflict) {
			t.Fatalf("session %d: first rotation %+v, %v; second %v; want generation 1, then ErrConflict", i, a.s.Generation, a.err, b.err)
		}
	}
	if last := out[len(out)-1]; !errors.Is(last.err, store.ErrNotFound) {
		t.Fatalf("rotation of a missing session = %v, want ErrNotFound", last.err)
	}
	// Again with the script known: now the broken key fails inside the
	// pipeline itself, and the rotations after it still get their sessions.
	next := []rotation{{key: db.sessionKey("flush-0"), r: store.Rotation{From: 1, At: at.Add(2 * time.Minute)}},
		{key: broken, r: store.Rotation{At: at}},
		{key: db.sessionKey("flush-1"), r: store.Rotation{From: 1, At: at.Add(2 * time.Minute)}}}
	out, err = db.rotateBatch(ctx, next)
	if err != nil {
		t.Fatalf("rotateBatch with a failing script in the middle = %v", err)
	}
	if out[0].err != nil || out[0].s.Generation != 2 || out[1].err == nil || out[2].err != nil || out[2].s.Generation != 2 {
		t.Fatalf("rotations around a failing script = %+v; want generation 2, an error, generation 2", out)
	}
}

// Unbatched makes db send every rotation on its own (batches of one, as many
// at once as the client has connections), the baseline of group commit.
func Unbatched(db *DB) {
	db.rotations.Close()
	db.rotations = batch.New(32, 1, 0, db.rotateBatch) // the benchmarks open 32 connections
}

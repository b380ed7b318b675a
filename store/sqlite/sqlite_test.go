package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "latchkey.db"))
	})
}

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

var now = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

func newSession(t *testing.T, db store.Store, id string) {
	t.Helper()
	err := db.CreateSession(t.Context(), store.Session{ID: id, UserID: "u", RotatedAt: now, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
}

// Two DBs on one file, as two processes during a rolling restart, behave as
// one store.
func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		path := filepath.Join(t.TempDir(), "shared.db")
		return open(t, path), open(t, path)
	})
}

const (
	childEnv  = "LATCHKEY_SQLITE_ROTATOR" // path of the database, in the child process
	rotations = 200                       // generations the two processes advance together
	rotators  = 16                        // goroutines per process
)

// Two processes on one file race to rotate one session, generation after
// generation. Every generation is won exactly once, by one process or the
// other: SQLite's file locks make the swap atomic between processes.
func TestTwoProcessesOneFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second process")
	}
	path := filepath.Join(t.TempDir(), "shared.db")
	db := open(t, path)
	newSession(t, db, "s")

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRotatorProcess$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("child process did not get ready: %q, %v", lines.Text(), lines.Err())
	}
	fmt.Fprintln(stdin, "go")
	mine := rotate(t.Context(), db)
	var theirs []uint64
	for lines.Scan() {
		if g, err := strconv.ParseUint(lines.Text(), 10, 64); err == nil {
			theirs = append(theirs, g)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child process: %v", err)
	}
	won := make(map[uint64]string)
	for who, gens := range map[string][]uint64{"parent": mine, "child": theirs} {
		for _, g := range gens {
			if prev, dup := won[g]; dup {
				t.Fatalf("generation %d won twice, by the %s and by the %s", g, prev, who)
			}
			won[g] = who
		}
	}
	for g := uint64(1); g <= rotations; g++ {
		if _, ok := won[g]; !ok {
			t.Fatalf("generation %d won by nobody", g)
		}
	}
	if len(won) != rotations {
		t.Fatalf("%d generations won, want %d", len(won), rotations)
	}
	t.Logf("parent won %d generations, child %d", len(mine), len(theirs))
}

// TestRotatorProcess is the child process of TestTwoProcessesOneFile: it
// rotates the session in the file named by childEnv and prints every
// generation it wins.
func TestRotatorProcess(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("only runs as the child of TestTwoProcessesOneFile")
	}
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	for _, g := range rotate(t.Context(), db) {
		fmt.Println(g)
	}
}

// rotate rotates session "s" from whatever generation it is at with several
// goroutines, until it reaches the target, and returns the generations won.
func rotate(ctx context.Context, db *sqlite.DB) []uint64 {
	var mu sync.Mutex
	var won []uint64
	var wg sync.WaitGroup
	for range rotators {
		wg.Go(func() {
			for {
				s, err := db.Session(ctx, "s")
				if err != nil {
					panic(err)
				}
				if s.Generation >= rotations {
					return
				}
				got, err := db.RotateSession(ctx, "s", store.Rotation{From: s.Generation, At: now, IdleExpiresAt: now.Add(time.Hour)})
				switch {
				case err == nil:
					mu.Lock()
					won = append(won, got.Generation)
					mu.Unlock()
				case !errors.Is(err, store.ErrConflict):
					panic(err)
				}
			}
		})
	}
	wg.Wait()
	return won
}

// A DB reopened finds what it stored, and a revocation made through one DB is
// in the feed another DB reads.
func TestReopenAndShareFeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reopen.db")
	ctx := t.Context()
	first, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	newSession(t, first, "s")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	a, b := open(t, path), open(t, path)
	if _, err := a.Session(ctx, "s"); err != nil {
		t.Fatalf("Session after reopening = %v", err)
	}
	if err := a.RevokeSession(ctx, store.Revocation{SessionID: "s", At: now, Until: now.Add(time.Hour)}, "logout"); err != nil {
		t.Fatal(err)
	}
	feed, err := b.RevocationsAfter(ctx, 0, now, 10)
	if err != nil || len(feed) != 1 || feed[0].SessionID != "s" {
		t.Fatalf("feed seen by the other DB = %+v, %v; want the revocation of s", feed, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database\n", 300)), 0o600); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"Empty", "", "want the path of a file"},
		{"Memory", ":memory:", "want the path of a file"},
		{"URI", "file:x.db?mode=memory", "want the path of a file"},
		{"MissingDirectory", filepath.Join(dir, "missing", "x.db"), "no such file or directory"},
		{"UnderAFile", filepath.Join(regular, "x.db"), "not a directory"},
		{"Directory", dir, "not a regular file"},
		{"Garbage", garbage, "not an SQLite database"},
	}
	if runtime.GOOS != "windows" && os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "read-only")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct{ name, path, want string }{"UnwritableDirectory", filepath.Join(ro, "x.db"), "permission denied"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sqlite.Open(t.Context(), tc.path)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.path)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "sqlite: open") || !strings.Contains(msg, tc.want) {
				t.Fatalf("Open(%q) = %q, want an error starting \"sqlite: open\" and mentioning %q", tc.path, msg, tc.want)
			}
		})
	}
}

// A file written by a newer latchkey is refused, not downgraded.
func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "newer.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err := sqlite.Open(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded on a file with schema version 99")
	}
	if !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("Open = %v, want it to name schema version 99", err)
	}
}

// Odd characters in the path are part of the file name, not URI syntax.
func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag%20", "latch key?.db")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	db := open(t, path)
	newSession(t, db, "s")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
}

func TestNewFileIsPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	path := filepath.Join(t.TempDir(), "private.db")
	db := open(t, path)
	newSession(t, db, "s") // creates the -wal file
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group or other access", p, fi.Mode().Perm())
		}
	}
}

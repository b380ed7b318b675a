package latchkey_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey"
)

// BenchmarkRefresh is one refresh on SQLite: decode and MAC check, session
// read, rotation (one conditional UPDATE), an EdDSA access token, the next
// refresh token. Compare with BenchmarkBareWriteTx in the same run.
func BenchmarkRefresh(b *testing.B) {
	ctx := context.Background()
	f := newFixture(b, nil)
	tok, err := f.auth.Login(ctx, "user-1", latchkey.LoginOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rt := tok.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		next, err := f.auth.Refresh(ctx, rt, latchkey.RefreshOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rt = next.RefreshToken
	}
}

// BenchmarkBareWriteTx is the floor for a refresh on SQLite: a single-row
// UPDATE of a one-row table in the same kind of file with the same pragmas.
func BenchmarkBareWriteTx(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bare.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO t VALUES ('row', 0)`); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := db.Exec(`UPDATE t SET n = ? WHERE id = 'row' AND n = ?`, i+1, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerify is one access-token verification through Auth (signature,
// claims, revocation check).
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	f := newFixture(b, nil)
	tok, err := f.auth.Login(ctx, "user-1", latchkey.LoginOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.auth.Verify(ctx, tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

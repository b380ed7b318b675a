package latchkey_test

// The refresh-token properties of PRODUCT.md ("Refresh tokens: the required
// properties"), one or more tests each, named after the property they prove.
// Tests elsewhere that prove a property say so in their doc comment:
// TestForgedTokenTouchesNoState (4), TestStoreDumpIsUselessForRefresh (2),
// TestConcurrentRefreshAdvancesOnce (6), TestRevocationReachesVerifier and
// TestRevocationReachesOtherNode (9), and in refreshtoken the format, checksum
// and MAC tests (1) and TestClassify (4, 5).

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/refreshtoken"
	"github.com/latchkey/latchkey/store/sqlite"
)

// nodesOnFile returns node A (a fixture) and node B: a second Auth with its
// own connection to the same SQLite file, as another process would have. Both
// are configured by edit (if not nil) with a revocation delay of 100 ms, and
// share the fake clock.
func nodesOnFile(t *testing.T, edit func(*latchkey.Config)) (*fixture, *latchkey.Auth) {
	t.Helper()
	conf := func(c *latchkey.Config) {
		c.RevocationDelay = 100 * time.Millisecond
		if edit != nil {
			edit(c)
		}
	}
	f := newFixture(t, conf)
	db, err := sqlite.Open(context.Background(), f.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := latchkey.Config{Store: db, Secret: f.secret, Now: f.clock.Now}
	conf(&cfg)
	b, err := latchkey.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return f, b
}

// mustRefresh refreshes token on a, failing the test on an error.
func mustRefresh(t testing.TB, a *latchkey.Auth, token string, opt latchkey.RefreshOptions) *latchkey.Tokens {
	t.Helper()
	next, err := a.Refresh(context.Background(), token, opt)
	if err != nil {
		t.Fatalf("Refresh(%.12q…) = %v, want success", token, err)
	}
	return next
}

// wantErr fails the test unless err is want (errors.Is, which compares codes).
func wantErr(t testing.TB, what string, err error, want *latchkey.Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %s", what, err, want.Code)
	}
}

// wantLive fails the test unless token verifies on every node.
func wantLive(t testing.TB, token string, nodes ...*latchkey.Auth) {
	t.Helper()
	for i, a := range nodes {
		if _, err := a.Verify(context.Background(), token); err != nil {
			t.Fatalf("Verify on node %d = %v, want success", i, err)
		}
	}
}

// generation is the session's stored generation.
func generation(t testing.TB, f *fixture, sid string) uint64 {
	t.Helper()
	s, err := f.store.Store.Session(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	return s.Generation
}

// table is one table of a database as a reader of a stolen copy sees it.
type table struct {
	columns []string
	rows    [][]any
}

// readDB reads every row and column of every table of the SQLite file at
// path, over its own read-only connection.
func readDB(t testing.TB, path string) map[string]table {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		if err := names.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := names.Close(); err != nil {
		t.Fatal(err)
	}
	out := map[string]table{}
	for _, name := range tables {
		rows, err := db.Query(`SELECT * FROM "` + name + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		tb := table{columns: cols}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			tb.rows = append(tb.rows, vals)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		out[name] = tb
	}
	if len(out["sessions"].rows) == 0 {
		t.Fatalf("no sessions in %s: tables %v", path, tables)
	}
	return out
}

// column is the value of column name in row of tb.
func (tb table) column(row []any, name string) any {
	for i, c := range tb.columns {
		if c == name {
			return row[i]
		}
	}
	return nil
}

var urlSafeToken = regexp.MustCompile(`^lk_rt_[A-Za-z0-9_-]+$`)

// Property 1: refresh tokens are opaque and recognisable. Not a JWT (no dots,
// not parseable as a JWS), URL-safe, prefixed lk_rt_, and carrying a checksum:
// a token with any one character changed is refused as invalid without a
// single store read or write. (The ≥256 bits of secret material, and that the
// checksum rather than the MAC refuses a changed character, are proven in
// refreshtoken: TestSecretMaterialIsAtLeast256Bits,
// TestEverySingleCharacterChangeIsRejected.)
func TestProperty1OpaqueRecognisableChecksummed(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	login := f.login(t)
	next := mustRefresh(t, f.auth, login.RefreshToken, latchkey.RefreshOptions{})
	for _, tok := range []string{login.RefreshToken, next.RefreshToken} {
		if !urlSafeToken.MatchString(tok) {
			t.Fatalf("refresh token %q is not lk_rt_ + URL-safe characters", tok)
		}
		if strings.Contains(tok, ".") || strings.HasPrefix(tok, "eyJ") {
			t.Fatalf("refresh token %q looks like a JWT", tok)
		}
		algs := []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256, jose.HS256, jose.PS256}
		if _, err := jose.ParseSignedCompact(tok, algs); err == nil {
			t.Fatalf("refresh token %q parses as a compact JWS", tok)
		}
		if _, err := jose.ParseSignedJSON(tok, algs); err == nil {
			t.Fatalf("refresh token %q parses as a JSON JWS", tok)
		}
		body, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, refreshtoken.Prefix))
		if err != nil || json.Valid(body) {
			t.Fatalf("refresh token body: %v (JSON: %v); want opaque bytes", err, json.Valid(body))
		}
	}

	tok := next.RefreshToken
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	reads, writes := f.store.sessionReads.Load(), f.store.writes.Load()
	for i := range len(tok) {
		// The next character of the alphabet; the prefix gets one too.
		c := alphabet[(strings.IndexByte(alphabet, tok[i])+1)%len(alphabet)]
		mut := tok[:i] + string(c) + tok[i+1:]
		_, err := f.auth.Refresh(ctx, mut, latchkey.RefreshOptions{})
		wantErr(t, fmt.Sprintf("Refresh(token with character %d changed)", i), err, latchkey.ErrInvalidToken)
		_, err = f.auth.Inspect(ctx, mut)
		if err == nil {
			t.Fatalf("Inspect(token with character %d changed) succeeded", i)
		}
	}
	if r, w := f.store.sessionReads.Load()-reads, f.store.writes.Load()-writes; r != 0 || w != 0 {
		t.Fatalf("changed tokens caused %d session reads and %d writes, want none", r, w)
	}
	// And nothing was spent: the real token still rotates.
	mustRefresh(t, f.auth, tok, latchkey.RefreshOptions{})
}

// Property 2: a full dump of the store does not let anyone refresh. Every
// value of every row of the SQLite file is tried as a refresh token (as is,
// and dressed as one), and for every stored session the attacker builds
// well-formed tokens for its id and generation under MAC keys guessed from
// the dump (each value, its hash, HKDF of it with latchkey's label) or made
// up: none refreshes, none reaches the store, and every real token still
// works afterwards (nothing was revoked).
func TestProperty2StoreDumpCannotRefresh(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var current []string
	for range 3 {
		tok := f.login(t)
		next := mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{AccessToken: tok.AccessToken})
		current = append(current, next.RefreshToken)
	}
	db := readDB(t, f.dbPath)

	var values [][]byte
	for _, tb := range db {
		for _, row := range tb.rows {
			for _, v := range row {
				switch v := v.(type) {
				case string:
					values = append(values, []byte(v))
				case []byte:
					values = append(values, v)
				}
			}
		}
	}
	var candidates []string
	for _, v := range values {
		if len(v) == 0 {
			continue
		}
		candidates = append(candidates, string(v), refreshtoken.Prefix+string(v),
			refreshtoken.Prefix+base64.RawURLEncoding.EncodeToString(v))
	}
	keys := [][]byte{make([]byte, 32)}
	random := make([]byte, 32)
	rand.Read(random)
	keys = append(keys, random)
	for _, v := range values {
		h := sha256.Sum256(v)
		keys = append(keys, h[:])
		if len(v) == 32 {
			keys = append(keys, v)
		}
		if k, err := hkdf.Key(sha256.New, v, nil, "latchkey refresh token mac v1", 32); err == nil {
			keys = append(keys, k)
		}
	}
	sessions := db["sessions"]
	for _, row := range sessions.rows {
		id, _ := sessions.column(row, "id").(string)
		gen, _ := sessions.column(row, "generation").(int64)
		sid, err := refreshtoken.ParseSessionID(id)
		if err != nil {
			t.Fatalf("stored session id %q: %v", id, err)
		}
		for _, k := range keys {
			c, err := refreshtoken.New(k)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range []int64{gen, gen - 1, gen + 1} {
				candidates = append(candidates, c.Encode(refreshtoken.Token{Session: sid, Generation: uint64(g)}))
			}
		}
	}
	t.Logf("%d values in the dump, %d candidate tokens", len(values), len(candidates))
	reads, writes := f.store.sessionReads.Load(), f.store.writes.Load()
	for _, c := range candidates {
		if _, err := f.auth.Refresh(ctx, c, latchkey.RefreshOptions{}); err == nil {
			t.Fatalf("Refresh(%.40q, from the dump) succeeded", c)
		}
	}
	if r, w := f.store.sessionReads.Load()-reads, f.store.writes.Load()-writes; r != 0 || w != 0 {
		t.Fatalf("%d tokens made from the dump caused %d session reads and %d writes, want none", len(candidates), r, w)
	}
	for _, tok := range current {
		mustRefresh(t, f.auth, tok, latchkey.RefreshOptions{})
	}
}

// Property 3: each refresh returns a new refresh token, different from every
// one issued before, and the presented one stops being the session's token at
// once: Inspect no longer calls it active, and presented again outside the
// grace window it does not rotate (it is answered refresh_reused and the
// session stays at the generation it had).
func TestProperty3RotationReplacesTheToken(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	lineage := []*latchkey.Tokens{f.login(t)}
	seen := map[string]bool{lineage[0].RefreshToken: true}
	for i := range 5 {
		f.clock.Add(time.Minute)
		prev := lineage[len(lineage)-1]
		next := mustRefresh(t, f.auth, prev.RefreshToken, latchkey.RefreshOptions{})
		if seen[next.RefreshToken] {
			t.Fatalf("refresh %d returned a refresh token issued before", i)
		}
		seen[next.RefreshToken] = true
		lineage = append(lineage, next)
		if _, err := f.auth.Inspect(ctx, prev.RefreshToken); !errors.Is(err, latchkey.ErrInvalidToken) {
			t.Fatalf("Inspect(rotated token) = %v, want invalid_token (rotated)", err)
		}
		if info, err := f.auth.Inspect(ctx, next.RefreshToken); err != nil || info.SessionID != next.SessionID {
			t.Fatalf("Inspect(new token) = %+v, %v", info, err)
		}
		if g := generation(t, f, next.SessionID); g != uint64(i+1) {
			t.Fatalf("after %d refreshes the generation is %d", i+1, g)
		}
	}
	f.clock.Add(latchkey.DefaultReuseGrace)
	_, err := f.auth.Refresh(ctx, lineage[len(lineage)-2].RefreshToken, latchkey.RefreshOptions{})
	wantErr(t, "Refresh(rotated token, outside the grace window)", err, latchkey.ErrRefreshReused)
	if g := generation(t, f, lineage[0].SessionID); g != 5 {
		t.Fatalf("the rotated token moved the session to generation %d, want 5", g)
	}
}

// Property 4: presenting ANY earlier token of a session (every generation from
// 0 to the parent, not only the parent) outside the grace window answers
// refresh_reused and revokes the whole session: its current refresh token is
// refused, and its access tokens (current and earlier) are refused by Verify at
// once on this node and within the revocation delay on another node sharing
// the SQLite file.
func TestProperty4ReuseOfAnyEarlierGenerationRevokesTheSession(t *testing.T) {
	f, b := nodesOnFile(t, nil)
	ctx := context.Background()
	const n = 6 // rotations
	for k := range n {
		t.Run(fmt.Sprintf("generation %d of %d", k, n), func(t *testing.T) {
			lineage := []*latchkey.Tokens{f.login(t)}
			for range n {
				f.clock.Add(time.Minute)
				lineage = append(lineage, mustRefresh(t, f.auth, lineage[len(lineage)-1].RefreshToken, latchkey.RefreshOptions{}))
			}
			cur := lineage[n]
			wantLive(t, cur.AccessToken, f.auth, b) // node B has it cached
			wantLive(t, lineage[0].AccessToken, f.auth, b)

			f.clock.Add(latchkey.DefaultReuseGrace)
			_, err := f.auth.Refresh(ctx, lineage[k].RefreshToken, latchkey.RefreshOptions{})
			wantErr(t, fmt.Sprintf("Refresh(generation %d of %d)", k, n), err, latchkey.ErrRefreshReused)

			for name, a := range map[string]*latchkey.Auth{"A": f.auth, "B": b} {
				_, err = a.Refresh(ctx, cur.RefreshToken, latchkey.RefreshOptions{})
				wantErr(t, "Refresh(current token) on node "+name+" after reuse", err, latchkey.ErrRefreshReused)
			}
			for _, at := range []string{cur.AccessToken, lineage[0].AccessToken} {
				_, err = f.auth.Verify(ctx, at)
				wantErr(t, "Verify(access token of the reused session) on node A", err, latchkey.ErrTokenRevoked)
				waitRevoked(t, b, at)
			}
		})
	}
}

// Property 4: storage per session is constant however many rotations happen:
// after 1 and after 100 rotations the database holds the same number of rows
// in every table, the session is one row with the same columns, and that
// row's text and blobs are no larger.
func TestProperty4StoragePerSessionIsConstant(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.login(t)
	type shape struct {
		rows    map[string]int
		columns string
		bytes   int
	}
	measure := func() shape {
		db := readDB(t, f.dbPath)
		s := shape{rows: map[string]int{}}
		for name, tb := range db {
			s.rows[name] = len(tb.rows)
		}
		sessions := db["sessions"]
		found := 0
		for _, row := range sessions.rows {
			if sessions.column(row, "id") != tok.SessionID {
				continue
			}
			found++
			s.columns = strings.Join(sessions.columns, ",")
			for _, v := range row {
				switch v := v.(type) {
				case string:
					s.bytes += len(v)
				case []byte:
					s.bytes += len(v)
				}
			}
		}
		if found != 1 {
			t.Fatalf("the session has %d rows, want 1", found)
		}
		return s
	}
	cur := tok.RefreshToken
	rotate := func(times int) {
		for range times {
			f.clock.Add(time.Minute)
			cur = mustRefresh(t, f.auth, cur, latchkey.RefreshOptions{}).RefreshToken
		}
	}
	rotate(1)
	after1 := measure()
	rotate(99)
	after100 := measure()
	if g := generation(t, f, tok.SessionID); g != 100 {
		t.Fatalf("generation = %d, want 100", g)
	}
	if fmt.Sprint(after1.rows) != fmt.Sprint(after100.rows) {
		t.Fatalf("rows per table after 1 rotation %v, after 100 %v", after1.rows, after100.rows)
	}
	if after1.columns != after100.columns || after100.bytes > after1.bytes {
		t.Fatalf("session row after 1 rotation: %s (%d bytes); after 100: %s (%d bytes)",
			after1.columns, after1.bytes, after100.columns, after100.bytes)
	}
}

// Property 5: within the grace window the token just rotated away, presented
// again — one after another, concurrently, and on another node — always gets
// the SAME new refresh token, each access token so issued verifies on both
// nodes, and exactly one rotation happens (the session stays at generation 1,
// and the successor then rotates to generation 2).
func TestProperty5GraceAnswersTheSameSuccessor(t *testing.T) {
	f, b := nodesOnFile(t, nil)
	ctx := context.Background()
	t0 := f.login(t)
	t1 := mustRefresh(t, f.auth, t0.RefreshToken, latchkey.RefreshOptions{})
	f.clock.Add(2 * time.Second)

	var got []*latchkey.Tokens
	for range 3 {
		got = append(got, mustRefresh(t, f.auth, t0.RefreshToken, latchkey.RefreshOptions{}))
		got = append(got, mustRefresh(t, b, t0.RefreshToken, latchkey.RefreshOptions{}))
	}
	const parallel = 16
	conc := make([]*latchkey.Tokens, parallel)
	errs := make([]error, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		a := []*latchkey.Auth{f.auth, b}[i%2]
		wg.Go(func() { conc[i], errs[i] = a.Refresh(ctx, t0.RefreshToken, latchkey.RefreshOptions{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent grace refresh %d = %v, want success", i, err)
		}
	}
	got = append(got, conc...)
	for i, g := range got {
		if g.RefreshToken != t1.RefreshToken {
			t.Fatalf("grace refresh %d returned another refresh token than the first refresh: a fork", i)
		}
		wantLive(t, g.AccessToken, f.auth, b)
	}
	if g := generation(t, f, t0.SessionID); g != 1 {
		t.Fatalf("after grace refreshes the generation is %d, want 1", g)
	}
	if _, err := f.auth.Inspect(ctx, t1.RefreshToken); err != nil {
		t.Fatalf("Inspect(successor) = %v, want active", err)
	}
	t2 := mustRefresh(t, b, t1.RefreshToken, latchkey.RefreshOptions{})
	if t2.RefreshToken == t1.RefreshToken {
		t.Fatal("the successor did not rotate")
	}
	if g := generation(t, f, t0.SessionID); g != 2 {
		t.Fatalf("generation = %d, want 2", g)
	}
}

// Property 5: only the immediate predecessor qualifies for the grace window,
// and only strictly inside it; a revocation never reopens it.
func TestProperty5GraceOnlyForThePredecessorInsideTheWindow(t *testing.T) {
	f, b := nodesOnFile(t, nil)
	ctx := context.Background()
	grace := latchkey.DefaultReuseGrace

	t.Run("two generations back inside the window is reuse", func(t *testing.T) {
		t0 := f.login(t)
		t1 := mustRefresh(t, f.auth, t0.RefreshToken, latchkey.RefreshOptions{})
		t2 := mustRefresh(t, f.auth, t1.RefreshToken, latchkey.RefreshOptions{})
		f.clock.Add(time.Second)
		_, err := f.auth.Refresh(ctx, t0.RefreshToken, latchkey.RefreshOptions{})
		wantErr(t, "Refresh(generation 0 at generation 2, inside the window)", err, latchkey.ErrRefreshReused)
		_, err = f.auth.Refresh(ctx, t2.RefreshToken, latchkey.RefreshOptions{})
		wantErr(t, "Refresh(current token) after reuse", err, latchkey.ErrRefreshReused)
	})

	t.Run("the window closes at ReuseGrace", func(t *testing.T) {
		t0 := f.login(t)
		t1 := mustRefresh(t, f.auth, t0.RefreshToken, latchkey.RefreshOptions{})
		f.clock.Add(grace - time.Millisecond)
		if g := mustRefresh(t, b, t0.RefreshToken, latchkey.RefreshOptions{}); g.RefreshToken != t1.RefreshToken {
			t.Fatal("a grace refresh just inside the window forked the lineage")
		}
		f.clock.Add(time.Millisecond)
		_, err := b.Refresh(ctx, t0.RefreshToken, latchkey.RefreshOptions{})
		wantErr(t, "Refresh(predecessor at the end of the window)", err, latchkey.ErrRefreshReused)
		_, err = f.auth.Refresh(ctx, t1.RefreshToken, latchkey.RefreshOptions{})
		wantErr(t, "Refresh(successor) after reuse", err, latchkey.ErrRefreshReused)
	})

	for _, tc := range []struct {
		name   string
		revoke func(p latchkey.Principal) error
	}{
		{"logout", func(p latchkey.Principal) error { return f.auth.Logout(ctx, p, latchkey.LogoutLocal) }},
		{"logout on the other node", func(p latchkey.Principal) error { return b.Logout(ctx, p, latchkey.LogoutGlobal) }},
		{"revoke", func(p latchkey.Principal) error {
			return f.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: p.SessionID, Reason: latchkey.ReasonAdmin})
		}},
	} {
		t.Run("a revocation never reopens it: "+tc.name, func(t *testing.T) {
			t0 := f.login(t)
			t1 := mustRefresh(t, f.auth, t0.RefreshToken, latchkey.RefreshOptions{})
			p, err := f.auth.Verify(ctx, t1.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Add(time.Second)
			if err := tc.revoke(p); err != nil {
				t.Fatal(err)
			}
			for name, a := range map[string]*latchkey.Auth{"A": f.auth, "B": b} {
				_, err = a.Refresh(ctx, t0.RefreshToken, latchkey.RefreshOptions{})
				wantErr(t, "Refresh(predecessor inside the window, after revocation) on node "+name, err, latchkey.ErrTokenRevoked)
				_, err = a.Refresh(ctx, t1.RefreshToken, latchkey.RefreshOptions{})
				wantErr(t, "Refresh(current token, after revocation) on node "+name, err, latchkey.ErrTokenRevoked)
			}
		})
	}
}

// Property 6: 64 refreshes of one token at once, half on each of two nodes
// with their own connections to one SQLite file, all succeed with the same
// successor and advance the session exactly one generation — round after
// round.
func TestProperty6ConcurrentRefreshAcrossNodesAdvancesOnce(t *testing.T) {
	f, b := nodesOnFile(t, nil)
	ctx := context.Background()
	cur := f.login(t)
	const n = 64
	for round := 1; round <= 3; round++ {
		got := make([]*latchkey.Tokens, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			a := []*latchkey.Auth{f.auth, b}[i%2]
			wg.Go(func() {
				<-start
				got[i], errs[i] = a.Refresh(ctx, cur.RefreshToken, latchkey.RefreshOptions{})
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: refresh %d (node %c) = %v, want success", round, i, "AB"[i%2], errs[i])
			}
			if got[i].RefreshToken != got[0].RefreshToken {
				t.Fatalf("round %d: refresh %d forked the lineage", round, i)
			}
		}
		if got[0].RefreshToken == cur.RefreshToken {
			t.Fatalf("round %d: no rotation", round)
		}
		if g := generation(t, f, cur.SessionID); g != uint64(round) {
			t.Fatalf("round %d: generation = %d, want exactly %d", round, g, round)
		}
		wantLive(t, got[n-1].AccessToken, f.auth, b)
		cur = got[0]
		f.clock.Add(time.Minute)
	}
}

// Property 7: the access TTL is honoured. expires_in is the TTL, the token
// verifies until then and is token_expired (not invalid_token) from then on.
func TestProperty7AccessTTL(t *testing.T) {
	const ttl = 5 * time.Minute
	f := newFixture(t, func(c *latchkey.Config) { c.AccessTTL = ttl })
	ctx := context.Background()
	login := f.clock.Now()
	tok := f.login(t)
	if tok.ExpiresIn != int64(ttl/time.Second) || tok.ExpiresAt != login.Add(ttl).Unix() {
		t.Fatalf("expires_in = %d, expires_at = %d; want %d, %d", tok.ExpiresIn, tok.ExpiresAt, int64(ttl/time.Second), login.Add(ttl).Unix())
	}
	f.clock.Add(ttl - time.Second)
	wantLive(t, tok.AccessToken, f.auth)
	f.clock.Add(time.Second)
	_, err := f.auth.Verify(ctx, tok.AccessToken)
	wantErr(t, "Verify(access token at its expiry)", err, latchkey.ErrTokenExpired)
	next := mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{})
	if next.ExpiresIn != int64(ttl/time.Second) {
		t.Fatalf("refreshed expires_in = %d, want %d", next.ExpiresIn, int64(ttl/time.Second))
	}
}

// Property 7: the refresh idle timeout slides with each refresh, the
// absolute lifetime never does, and a locked expiry stays where login put it.
// Every end is session_expired (refresh) or token_expired (access), never
// invalid_token.
func TestProperty7RefreshLifetimes(t *testing.T) {
	const (
		idle     = time.Hour
		lifetime = 3 * time.Hour
	)
	ctx := context.Background()
	lifetimes := func(c *latchkey.Config) { c.RefreshTTL, c.SessionLifetime = idle, lifetime }

	t.Run("idle timeout slides", func(t *testing.T) {
		f := newFixture(t, lifetimes)
		tok := f.login(t)
		f.clock.Add(50 * time.Minute)
		tok = mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{})
		if want := f.clock.Now().Add(idle).Unix(); tok.RefreshExpiresAt != want {
			t.Fatalf("refresh_expires_at = %d, want %d (slid)", tok.RefreshExpiresAt, want)
		}
		f.clock.Add(20 * time.Minute) // past the login's idle deadline
		tok = mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{})
		f.clock.Add(idle) // idle for the whole timeout
		_, err := f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{})
		wantErr(t, "Refresh(after the idle timeout)", err, latchkey.ErrSessionExpired)
		_, err = f.auth.Verify(ctx, tok.AccessToken)
		wantErr(t, "Verify(access token of the expired session)", err, latchkey.ErrTokenExpired)
	})

	t.Run("absolute lifetime never slides", func(t *testing.T) {
		f := newFixture(t, lifetimes)
		tok := f.login(t)
		end := f.clock.Now().Add(lifetime)
		for f.clock.Now().Add(50 * time.Minute).Before(end) {
			f.clock.Add(50 * time.Minute)
			tok = mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{})
			if tok.RefreshExpiresAt > end.Unix() || tok.ExpiresAt > end.Unix() {
				t.Fatalf("at %v: refresh_expires_at %d, expires_at %d beyond the session's end %d",
					f.clock.Now(), tok.RefreshExpiresAt, tok.ExpiresAt, end.Unix())
			}
		}
		f.clock.Add(end.Sub(f.clock.Now()) - time.Second)
		tok = mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{})
		if tok.ExpiresAt != end.Unix() || tok.RefreshExpiresAt != end.Unix() {
			t.Fatalf("a second before the end: expires_at %d, refresh_expires_at %d, want both %d", tok.ExpiresAt, tok.RefreshExpiresAt, end.Unix())
		}
		f.clock.Add(time.Second)
		_, err := f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{})
		wantErr(t, "Refresh(at the absolute end, refreshed steadily)", err, latchkey.ErrSessionExpired)
		_, err = f.auth.Verify(ctx, tok.AccessToken)
		wantErr(t, "Verify(access token at the absolute end)", err, latchkey.ErrTokenExpired)
	})

	t.Run("locked expiry is fixed at login", func(t *testing.T) {
		f := newFixture(t, func(c *latchkey.Config) { lifetimes(c); c.LockedExpiry = true })
		tok := f.login(t)
		deadline := f.clock.Now().Add(idle)
		if tok.RefreshExpiresAt != deadline.Unix() {
			t.Fatalf("refresh_expires_at = %d, want %d", tok.RefreshExpiresAt, deadline.Unix())
		}
		for range 3 {
			f.clock.Add(15 * time.Minute)
			tok = mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{})
			if tok.RefreshExpiresAt != deadline.Unix() {
				t.Fatalf("refresh_expires_at moved to %d, want the login's %d", tok.RefreshExpiresAt, deadline.Unix())
			}
		}
		f.clock.Add(deadline.Sub(f.clock.Now()))
		_, err := f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{})
		wantErr(t, "Refresh(at the login's idle deadline, locked)", err, latchkey.ErrSessionExpired)
	})
}

// PRODUCT.md, "Expired sessions are remembered for at least 24 hours": a
// session that expired almost ExpiredRetention ago, after the store has been
// purged with that retention (as every node does), still answers its refresh
// token session_expired and its access token token_expired, not invalid_token.
func TestExpiredSessionIsRemembered(t *testing.T) {
	f := newFixture(t, func(c *latchkey.Config) { c.RefreshTTL = time.Hour })
	ctx := context.Background()
	tok := f.login(t)
	f.clock.Add(time.Hour + latchkey.ExpiredRetention - time.Second)
	if _, err := f.store.Purge(ctx, f.clock.Now(), latchkey.ExpiredRetention); err != nil {
		t.Fatal(err)
	}
	_, err := f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{})
	wantErr(t, "Refresh(session expired 24h-1s ago)", err, latchkey.ErrSessionExpired)
	_, err = f.auth.Verify(ctx, tok.AccessToken)
	wantErr(t, "Verify(access token of it)", err, latchkey.ErrTokenExpired)
}

// withClaim returns token with one payload claim changed and the signature
// kept: a forgery.
func withClaim(t testing.TB, token, claim, value string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims[claim] = value
	raw, _ = json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
}

// Property 8: with Config.BindAccess a refresh must present the session's own
// access token: none is missing_token, another session's or a forged one is
// invalid_token (and the refresh token is not spent), the session's expired
// one is fine. The access token presented is revoked once the new pair is
// issued.
func TestProperty8BindingRequiresTheSessionsAccessToken(t *testing.T) {
	f, b := nodesOnFile(t, func(c *latchkey.Config) { c.BindAccess = true })
	ctx := context.Background()
	tok := f.login(t)
	other := f.login(t) // the same user's other session
	sig := tok.AccessToken[:len(tok.AccessToken)-10] + "AAAAAAAAAA"
	if sig == tok.AccessToken {
		sig = tok.AccessToken[:len(tok.AccessToken)-10] + "BBBBBBBBBB"
	}
	for _, tc := range []struct {
		name, access string
		want         *latchkey.Error
	}{
		{"none", "", latchkey.ErrMissingToken},
		{"another session's", other.AccessToken, latchkey.ErrInvalidToken},
		{"another session's with this sid", withClaim(t, other.AccessToken, "sid", tok.SessionID), latchkey.ErrInvalidToken},
		{"forged signature", sig, latchkey.ErrInvalidToken},
		{"garbage", "not.a.jwt", latchkey.ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.auth.Refresh(ctx, tok.RefreshToken, latchkey.RefreshOptions{AccessToken: tc.access})
			wantErr(t, fmt.Sprintf("Refresh(access token: %s)", tc.name), err, tc.want)
		})
	}
	if g := generation(t, f, tok.SessionID); g != 0 {
		t.Fatalf("refused refreshes moved the session to generation %d", g)
	}
	f.clock.Add(latchkey.DefaultAccessTTL + time.Minute)
	_, err := f.auth.Verify(ctx, tok.AccessToken)
	wantErr(t, "Verify(access token after its TTL)", err, latchkey.ErrTokenExpired)
	next := mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{AccessToken: tok.AccessToken})
	// The new pair's access token binds the next refresh, which revokes it.
	mustRefresh(t, b, next.RefreshToken, latchkey.RefreshOptions{AccessToken: next.AccessToken})
	_, err = b.Verify(ctx, next.AccessToken)
	wantErr(t, "Verify(access token presented with a refresh) on the refreshing node", err, latchkey.ErrTokenRevoked)
	waitRevoked(t, f.auth, next.AccessToken)
}

// Property 8: without BindAccess the access token is optional; when it is
// presented, it must still be the session's, and it is revoked once the new
// pair is issued (on every node within the revocation delay).
func TestProperty8AccessTokenIsOptionalWithoutBinding(t *testing.T) {
	f, b := nodesOnFile(t, nil)
	ctx := context.Background()
	tok := f.login(t)
	other := f.login(t)
	next := mustRefresh(t, f.auth, tok.RefreshToken, latchkey.RefreshOptions{})
	wantLive(t, tok.AccessToken, f.auth, b) // not presented: not revoked
	_, err := f.auth.Refresh(ctx, next.RefreshToken, latchkey.RefreshOptions{AccessToken: other.AccessToken})
	wantErr(t, "Refresh(with another session's access token)", err, latchkey.ErrInvalidToken)
	mustRefresh(t, f.auth, next.RefreshToken, latchkey.RefreshOptions{AccessToken: next.AccessToken})
	_, err = f.auth.Verify(ctx, next.AccessToken)
	wantErr(t, "Verify(access token presented with the refresh)", err, latchkey.ErrTokenRevoked)
	waitRevoked(t, b, next.AccessToken)
	wantLive(t, other.AccessToken, f.auth, b)
}

// Property 9: every way of ending sessions — logout of this session, of all,
// of all others; revoke by session id, by user, by user but one, by session
// id of a user — ends exactly the sessions it names: their refresh tokens are
// refused token_revoked on every node, their access tokens at once on this
// node and within the revocation delay on another sharing the SQLite file;
// every other session stays live. A session id of another user's session is
// not_found and ends nothing.
func TestProperty9RevocationEndsExactlyTheNamedSessions(t *testing.T) {
	f, b := nodesOnFile(t, nil)
	ctx := context.Background()
	for i, tc := range []struct {
		name    string
		end     func(user string, mine []*latchkey.Tokens, p latchkey.Principal, theirs *latchkey.Tokens) error
		want    error // of end
		revoked []int // indexes into mine; theirs is never revoked
	}{
		{"logout local", func(_ string, _ []*latchkey.Tokens, p latchkey.Principal, _ *latchkey.Tokens) error {
			return f.auth.Logout(ctx, p, latchkey.LogoutLocal)
		}, nil, []int{0}},
		{"logout global", func(_ string, _ []*latchkey.Tokens, p latchkey.Principal, _ *latchkey.Tokens) error {
			return f.auth.Logout(ctx, p, latchkey.LogoutGlobal)
		}, nil, []int{0, 1, 2}},
		{"logout others", func(_ string, _ []*latchkey.Tokens, p latchkey.Principal, _ *latchkey.Tokens) error {
			return f.auth.Logout(ctx, p, latchkey.LogoutOthers)
		}, nil, []int{1, 2}},
		{"revoke session", func(_ string, mine []*latchkey.Tokens, _ latchkey.Principal, _ *latchkey.Tokens) error {
			return f.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: mine[1].SessionID, Reason: latchkey.ReasonAdmin})
		}, nil, []int{1}},
		{"revoke user", func(user string, _ []*latchkey.Tokens, _ latchkey.Principal, _ *latchkey.Tokens) error {
			return f.auth.Revoke(ctx, latchkey.RevokeOptions{UserID: user, Reason: latchkey.ReasonAdmin})
		}, nil, []int{0, 1, 2}},
		{"revoke user except one", func(user string, mine []*latchkey.Tokens, _ latchkey.Principal, _ *latchkey.Tokens) error {
			return f.auth.Revoke(ctx, latchkey.RevokeOptions{UserID: user, Except: mine[2].SessionID, Reason: latchkey.ReasonLogout})
		}, nil, []int{0, 1}},
		{"revoke session of user", func(user string, mine []*latchkey.Tokens, _ latchkey.Principal, _ *latchkey.Tokens) error {
			return f.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: mine[1].SessionID, UserID: user, Reason: latchkey.ReasonLogout})
		}, nil, []int{1}},
		{"revoke another user's session", func(user string, _ []*latchkey.Tokens, _ latchkey.Principal, theirs *latchkey.Tokens) error {
			return f.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: theirs.SessionID, UserID: user, Reason: latchkey.ReasonLogout})
		}, latchkey.ErrNotFound, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, stranger := fmt.Sprintf("user-%d", i), fmt.Sprintf("stranger-%d", i)
			var mine []*latchkey.Tokens
			for range 3 {
				tok, err := f.auth.Login(ctx, user, latchkey.LoginOptions{})
				if err != nil {
					t.Fatal(err)
				}
				mine = append(mine, tok)
			}
			theirs, err := f.auth.Login(ctx, stranger, latchkey.LoginOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.auth.Verify(ctx, mine[0].AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			all := append([]*latchkey.Tokens{theirs}, mine...)
			for _, tok := range all {
				wantLive(t, tok.AccessToken, f.auth, b) // cached on both nodes
			}

			err = tc.end(user, mine, p, theirs)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("%s = %v, want %v", tc.name, err, tc.want)
			}
			ended := map[string]bool{}
			for _, k := range tc.revoked {
				ended[mine[k].SessionID] = true
				_, err := f.auth.Verify(ctx, mine[k].AccessToken)
				wantErr(t, fmt.Sprintf("Verify(access token of ended session %d) on node A", k), err, latchkey.ErrTokenRevoked)
				waitRevoked(t, b, mine[k].AccessToken)
				for name, a := range map[string]*latchkey.Auth{"A": f.auth, "B": b} {
					_, err := a.Refresh(ctx, mine[k].RefreshToken, latchkey.RefreshOptions{})
					wantErr(t, fmt.Sprintf("Refresh(ended session %d) on node %s", k, name), err, latchkey.ErrTokenRevoked)
				}
			}
			// Node B has applied every revocation up to a later one of its
			// feed: the sessions left live are still accepted there.
			barrier, err := f.auth.Login(ctx, "barrier", latchkey.LoginOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: barrier.SessionID, Reason: latchkey.ReasonAdmin}); err != nil {
				t.Fatal(err)
			}
			waitRevoked(t, b, barrier.AccessToken)
			live, err := f.auth.Sessions(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			if len(live)+len(ended) != len(mine) {
				t.Fatalf("Sessions lists %d live sessions, want %d", len(live), len(mine)-len(ended))
			}
			for _, s := range live {
				if ended[s.ID] {
					t.Fatalf("Sessions lists ended session %s", s.ID)
				}
			}
			for _, tok := range all {
				if ended[tok.SessionID] {
					continue
				}
				wantLive(t, tok.AccessToken, f.auth, b)
				mustRefresh(t, b, tok.RefreshToken, latchkey.RefreshOptions{})
			}
		})
	}
}

// Property 9: a session id that cannot be one (wrong length, case, a NUL) is
// not_found without any store call, alone or with a user.
func TestProperty9MalformedSessionIDAsksNoStore(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := f.login(t)
	reads, writes := f.store.sessionReads.Load(), f.store.writes.Load()
	for _, id := range []string{"x\x00y", strings.ToUpper(tok.SessionID), tok.SessionID + "0", tok.SessionID[:31] + "\x00", "../" + tok.SessionID[3:]} {
		for _, user := range []string{"", "user-1"} {
			err := f.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: id, UserID: user, Reason: latchkey.ReasonAdmin})
			wantErr(t, fmt.Sprintf("Revoke(session %q, user %q)", id, user), err, latchkey.ErrNotFound)
		}
	}
	if r, w := f.store.sessionReads.Load()-reads, f.store.writes.Load()-writes; r != 0 || w != 0 {
		t.Fatalf("malformed session ids caused %d session reads and %d writes, want none", r, w)
	}
	wantLive(t, tok.AccessToken, f.auth)
}

package audit_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/sqlite"
)

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Security events are stored and written as JSON lines; metrics-only events
// (refreshes, verifications, store calls) are not.
func TestRecorderKeepsSecurityEvents(t *testing.T) {
	db := openStore(t)
	var lines testenv.Buffer
	at := time.Unix(1_900_000_000, 0)
	r := audit.New(audit.Config{Store: db, Lines: &lines, Now: func() time.Time { return at }})
	ctx := context.Background()
	r.Observe(ctx, latchkey.Event{Kind: latchkey.EventSignIn, At: at, Outcome: latchkey.OutcomeFailure, Grant: "password", Message: "wrong", IP: "192.0.2.9", UserAgent: "ua"})
	r.Observe(ctx, latchkey.Event{Kind: latchkey.EventSignIn, At: at, Outcome: latchkey.OutcomeSuccess, Grant: "password", UserID: "u1", SessionID: "s1"})
	r.Observe(ctx, latchkey.Event{Kind: latchkey.EventReuse, At: at, Actor: "system", UserID: "u1", SessionID: "s1", Generation: 1, Current: 3})
	r.Observe(ctx, latchkey.Event{Kind: latchkey.EventRevoke, At: at, Actor: "system", Reason: latchkey.ReasonReused, UserID: "u1", SessionID: "s1"})
	r.Observe(ctx, latchkey.Event{Kind: latchkey.EventRefresh, At: at, Outcome: "rotated", UserID: "u1"})
	r.Observe(ctx, latchkey.Event{Kind: latchkey.EventVerify, At: at, Outcome: "ok", UserID: "u1"})
	r.Record(store.Event{Kind: audit.KindUserDisabled, Actor: "admin", UserID: "u1"})
	r.Close()

	all, err := db.Events(ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, ev := range all {
		kinds[ev.Kind]++
	}
	want := map[string]int{"login_failed": 1, "login": 1, "refresh_reused": 1, "session_revoked": 1, "user_disabled": 1}
	if len(kinds) != len(want) {
		t.Fatalf("stored kinds %v, want %v", kinds, want)
	}
	for k, n := range want {
		if kinds[k] != n {
			t.Fatalf("stored kinds %v, want %v", kinds, want)
		}
	}
	mine, err := db.Events(ctx, store.EventFilter{UserID: "u1"})
	if err != nil || len(mine) != 4 {
		t.Fatalf("u1's events: %d, %v", len(mine), err)
	}
	var n int
	for _, l := range strings.Split(strings.TrimSpace(lines.String()), "\n") {
		var line audit.Line
		if err := json.Unmarshal([]byte(l), &line); err != nil || line.ID == "" || line.Kind == "" {
			t.Fatalf("audit line %q: %v", l, err)
		}
		if line.Kind == "login_failed" {
			if !strings.Contains(string(line.Detail), `"grant":"password"`) || line.IP != "192.0.2.9" {
				t.Fatalf("login_failed line = %s", l)
			}
		}
		if line.Kind == "refresh_reused" && !strings.Contains(string(line.Detail), `"current_generation":3`) {
			t.Fatalf("refresh_reused line = %s", l)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("%d JSON lines, want 5:\n%s", n, lines.String())
	}
}

// A store that cannot take events loses none silently: each is logged in
// full; and recording never blocks the caller.
func TestRecorderLogsWhatItCannotStore(t *testing.T) {
	db := openStore(t)
	db.Close() // the store is down
	var log testenv.Buffer
	r := audit.New(audit.Config{Store: db, Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	start := time.Now()
	for range 10_000 {
		r.Observe(context.Background(), latchkey.Event{Kind: latchkey.EventPasswordChanged, At: start, UserID: "u9"})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("10000 events took %s to observe: recording blocks", d)
	}
	r.Close()
	got := strings.Count(log.String(), "audit event not stored")
	if got != 10_000 || !strings.Contains(log.String(), `password_changed`) {
		t.Fatalf("%d of 10000 lost events were logged", got)
	}
}

// Purge drops events older than the retention and keeps the rest.
func TestRecorderPurge(t *testing.T) {
	db := openStore(t)
	now := time.Unix(1_900_000_000, 0)
	r := audit.New(audit.Config{Store: db, Retention: time.Hour, Now: func() time.Time { return now }})
	r.Record(store.Event{Kind: audit.KindKeyRotated, Actor: "admin", At: now.Add(-2 * time.Hour)})
	r.Record(store.Event{Kind: audit.KindKeyRotated, Actor: "admin", At: now.Add(-time.Minute)})
	r.Close()
	if n, err := r.Purge(context.Background()); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	left, _ := db.Events(context.Background(), store.EventFilter{})
	if len(left) != 1 || !left[0].At.Equal(now.Add(-time.Minute)) {
		t.Fatalf("left %+v", left)
	}
}

func TestDescribe(t *testing.T) {
	ev, ok := audit.Convert(latchkey.Event{Kind: latchkey.EventReuse, UserID: "u"})
	if !ok || !strings.Contains(audit.Describe(ev), "replayed") {
		t.Fatalf("reuse = %q", audit.Describe(ev))
	}
	ev, _ = audit.Convert(latchkey.Event{Kind: latchkey.EventSignIn, Outcome: latchkey.OutcomeSuccess, Grant: "password"})
	if audit.Describe(ev) != "Signed in with a password." {
		t.Fatalf("sign-in = %q", audit.Describe(ev))
	}
	if _, ok := audit.Convert(latchkey.Event{Kind: latchkey.EventStore}); ok {
		t.Fatal("a store call became an audit event")
	}
}

// A user agent of any bytes is kept as valid UTF-8 (PostgreSQL's text takes
// nothing else; one bad event must not sink a batch), cut on a character
// boundary; and recording after Close neither panics nor blocks.
func TestRecorderCleansTextAndSurvivesClose(t *testing.T) {
	db := openStore(t)
	r := audit.New(audit.Config{Store: db})
	ua := "\xff\xfe bad\x00 " + strings.Repeat("é", 200)
	r.Observe(context.Background(), latchkey.Event{Kind: latchkey.EventPasswordChanged, At: time.Unix(1_900_000_000, 0), UserID: "u1", UserAgent: ua})
	r.Close()
	r.Observe(context.Background(), latchkey.Event{Kind: latchkey.EventPasswordChanged, UserID: "u1"})
	r.Close()
	evs, err := db.Events(context.Background(), store.EventFilter{UserID: "u1"})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %v, %v", evs, err)
	}
	got := evs[0].UserAgent
	if !utf8.ValidString(got) || strings.Contains(got, "\x00") || len(got) > 256 {
		t.Fatalf("stored user agent %q", got)
	}
}

// On PostgreSQL, whose text refuses invalid UTF-8, a batch with a bad user
// agent is stored whole.
func TestRecorderBadUserAgentOnPostgres(t *testing.T) {
	db, err := postgres.Open(context.Background(), testenv.Postgres(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := audit.New(audit.Config{Store: db})
	at := time.Unix(1_900_000_000, 0)
	r.Observe(context.Background(), latchkey.Event{Kind: latchkey.EventPasswordChanged, At: at, UserID: "u1", UserAgent: "ok"})
	r.Observe(context.Background(), latchkey.Event{Kind: latchkey.EventPasswordChanged, At: at, UserID: "u1", UserAgent: "\xff\xfe"})
	r.Close()
	if evs, err := db.Events(context.Background(), store.EventFilter{UserID: "u1"}); err != nil || len(evs) != 2 {
		t.Fatalf("stored %d events, %v; want both", len(evs), err)
	}
}

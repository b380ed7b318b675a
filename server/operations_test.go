package server_test

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/redis"
)

// sharedStores open a new handle on one shared store per call: each node of
// a test gets its own, as separate processes would.
var sharedStores = []struct {
	name string
	dsn  func(t testing.TB) string
	open func(t testing.TB, dsn string) serverStore
}{
	{"PostgreSQL", testenv.Postgres, func(t testing.TB, dsn string) serverStore {
		db, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		return closing(t, db, err)
	}},
	{"Redis", testenv.Redis, openRedisNode},
	{"RedisCluster", testenv.RedisCluster, openRedisNode},
}

func openRedisNode(t testing.TB, dsn string) serverStore {
	db, err := redis.Open(t.Context(), dsn, redis.Options{})
	return closing(t, db, err)
}

// nodes starts n servers on one shared store, as one deployment.
func nodes(t *testing.T, n int, dsn string, open func(testing.TB, string) serverStore, opts ...func(*setup)) []*env {
	secret := make([]byte, 32)
	rand.Read(secret)
	var out []*env
	for range n {
		out = append(out, newEnv(t, append([]func(*setup){func(s *setup) {
			s.store = func(t testing.TB) serverStore { return open(t, dsn) }
			s.secret = secret
			s.sharedLimits = true
		}}, opts...)...))
	}
	return out
}

// attemptsUntilLimited makes wrong-password logins for "test", round robin
// over the nodes, from one address, until one is refused with 429; it
// returns how many were let through.
func attemptsUntilLimited(t *testing.T, es []*env) int {
	t.Helper()
	for i := range 100 {
		r := es[i%len(es)].call("POST", "/login", "", `{"username":"test","password":"wrong password"}`)
		if r.status == http.StatusTooManyRequests {
			return i
		}
		r.want(t, 401, "invalid_credentials")
	}
	t.Fatal("100 wrong passwords were never limited")
	return 0
}

// On a shared store the login limiter's buckets live in the store: three
// nodes allow what one allows, and the owner still signs in from another
// address.
func TestLimitsHoldAcrossNodes(t *testing.T) {
	one := attemptsUntilLimited(t, []*env{newEnv(t)})
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			dsn := st.dsn(t)
			es := nodes(t, 3, dsn, st.open)
			if got := attemptsUntilLimited(t, es); got != one {
				t.Fatalf("three nodes let %d wrong passwords through before refusing; one node lets %d", got, one)
			}
			// The owner, from another address, still signs in: only the
			// (account, address) pair is drained, not the account.
			trusted, _ := httpauth.ParseTrustedProxies("127.0.0.0/8, ::1")
			elsewhere := newEnv(t, func(s *setup) {
				s.store = func(t testing.TB) serverStore { return st.open(t, dsn) }
				s.secret, s.sharedLimits, s.trustedProxies = es[0].secret, true, trusted
			})
			elsewhere.call("POST", "/login", "", `{"username":"test","password":"test"}`, "X-Forwarded-For", "203.0.113.9").want(t, 200, "")
			es[1].call("POST", "/login", "", `{"username":"test","password":"test"}`).want(t, 429, "rate_limited")
		})
	}
}

// A shared store that does not answer: the node falls back to its own
// buckets — still limiting, never refusing everyone.
func TestLimitsWhenTheSharedStoreIsDown(t *testing.T) {
	shared, err := postgres.Open(t.Context(), testenv.Postgres(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	shared.Close() // the limiter's store stops answering; the accounts' does not
	e := newEnv(t, func(s *setup) { s.buckets = shared })
	e.login("test", "test")
	if got := attemptsUntilLimited(t, []*env{e}); got != 5 {
		t.Fatalf("with the shared store down, %d wrong passwords went through before a refusal; the in-process limit is 5", got)
	}
}

// The session cap holds under concurrent logins over HTTP on every store:
// 50 logins at once against a cap of 10 leave exactly 10 live sessions.
func TestSessionCapOverHTTP(t *testing.T) {
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			es := nodes(t, 2, st.dsn(t), st.open, func(s *setup) {
				s.cfg = func(c *latchkey.Config) { c.MaxSessions = 10 }
			})
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					es[i%2].call("POST", "/login", "", `{"username":"test","password":"test"}`)
				})
			}
			wg.Wait()
			first := es[0].call("POST", "/login", "", `{"username":"test","password":"test"}`).want(t, 200, "")
			ss := es[0].call("GET", "/sessions", first.str("access_token"), "").want(t, 200, "")
			if n := len(ss.body["sessions"].([]any)); n != 10 {
				t.Fatalf("%d live sessions after 51 logins against a cap of 10", n)
			}
		})
	}
}

// Users see their own security events: GET /me/events and the account page.
func TestMyEvents(t *testing.T) {
	e := newEnv(t, func(s *setup) { s.audit = true })
	e.call("POST", "/login", "", `{"username":"test","password":"wrong password"}`).want(t, 401, "invalid_credentials")
	p := e.login("test", "test")
	e.refresh(p.refresh).want(t, 200, "")
	e.clock.Add(time.Minute) // past the grace window
	e.refresh(p.refresh).want(t, 401, "refresh_reused")
	fresh := e.login("test", "test")
	var events []any
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := e.call("GET", "/me/events", fresh.access, "").want(t, 200, "")
		events = r.body["events"].([]any)
		if len(events) >= 5 || time.Now().After(deadline) {
			break
		}
	}
	var kinds []string
	text := ""
	for _, ev := range events {
		m := ev.(map[string]any)
		kinds = append(kinds, m["kind"].(string))
		text += m["description"].(string) + "\n"
	}
	for _, want := range []string{"login_failed", "login", "refresh_reused", "session_revoked"} {
		if !strings.Contains(strings.Join(kinds, " "), want) {
			t.Fatalf("GET /me/events kinds %v lack %s", kinds, want)
		}
	}
	if !strings.Contains(text, "replayed; that device was signed out") {
		t.Fatalf("descriptions:\n%s", text)
	}
	// Only the caller's own events.
	e.call("POST", "/register", "", `{"username":"someone","password":"long enough"}`).want(t, 201, "")
	o := e.login("someone", "long enough")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := e.call("GET", "/me/events", o.access, "").want(t, 200, "")
		evs := r.body["events"].([]any)
		for _, ev := range evs {
			if k := ev.(map[string]any)["kind"]; k == "refresh_reused" || k == "login_failed" {
				t.Fatalf("another user's event %v is shown", k)
			}
		}
		if len(evs) > 0 || time.Now().After(deadline) {
			break
		}
	}
	e.call("GET", "/me/events", "", "").want(t, 401, "missing_token")
}

// The account page shows the user's recent security events.
func TestAccountPageEvents(t *testing.T) {
	e := newEnv(t, func(s *setup) { s.audit = true })
	e.call("POST", "/login", "", `{"username":"test","password":"wrong password"}`).want(t, 401, "invalid_credentials")
	j := servertest.NewJar(nil)
	body, hdr := form(url.Values{"username": {"test"}, "password": {"test"}})
	e.browse(j, "POST", "/account/login", body, append(hdr, "Origin", e.url)...).want(t, 303, "")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		page := string(e.browse(j, "GET", "/account", "").raw)
		if strings.Contains(page, `id="events"`) && strings.Contains(page, "A sign-in failed with a password.") &&
			strings.Contains(page, "Signed in with a password.") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the account page lacks the recent events:\n%.2000s", page)
		}
	}
}

package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/internal/testenv"
	"github.com/latchkey/latchkey/store"
	"github.com/latchkey/latchkey/store/postgres"
	"github.com/latchkey/latchkey/store/redis"
	"github.com/latchkey/latchkey/store/sqlite"
)

// watched counts the session reads and revocations that reach a store.
type watched struct {
	serverStore
	sessionCalls atomic.Int64
}

func (w *watched) Session(ctx context.Context, id string) (store.Session, error) {
	w.sessionCalls.Add(1)
	return w.serverStore.Session(ctx, id)
}

func (w *watched) RevokeSession(ctx context.Context, rev store.Revocation, reason string) error {
	w.sessionCalls.Add(1)
	return w.serverStore.RevokeSession(ctx, rev, reason)
}

// stores opens each backend the environment provides; the shared ones skip
// with a line saying why when their variable is unset.
var stores = []struct {
	name string
	open func(t testing.TB) serverStore
}{
	{"SQLite", func(t testing.TB) serverStore {
		db, err := sqlite.Open(t.Context(), t.TempDir()+"/edge.db")
		return closing(t, db, err)
	}},
	{"PostgreSQL", func(t testing.TB) serverStore {
		db, err := postgres.Open(t.Context(), testenv.Postgres(t), postgres.Options{})
		return closing(t, db, err)
	}},
	{"Redis", func(t testing.TB) serverStore {
		db, err := redis.Open(t.Context(), testenv.Redis(t), redis.Options{})
		return closing(t, db, err)
	}},
	{"RedisCluster", func(t testing.TB) serverStore {
		db, err := redis.Open(t.Context(), testenv.RedisCluster(t), redis.Options{})
		return closing(t, db, err)
	}},
}

func closing[S serverStore](t testing.TB, db S, err error) serverStore {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// badIDs are route parameters no session id has: bytes PostgreSQL's text
// cannot hold (NUL, invalid UTF-8), an encoded slash, a megabyte-long value,
// and near misses of the real shape.
var badIDs = []string{"\x00", "a\x00b", "\xff\xfe", "%", "a/b", strings.Repeat("A", 4096), "é", " ", "..",
	"AAAAAAAAAAAAAAAAAAAAAA\x00", "AAAAAAAAAAAAAAAAAAAAAAA"}

// A session id from a request is checked for shape before any store sees it,
// on every store: a malformed one is 404 not_found, never 503 (PostgreSQL
// refuses NUL and invalid UTF-8 in text), and the store is not asked.
func TestRouteParamsCheckedBeforeStore(t *testing.T) {
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			var w *watched
			e := newEnv(t, func(s *setup) {
				s.insecureCookies = true
				s.store = func(t testing.TB) serverStore {
					w = &watched{serverStore: sc.open(t)}
					return w
				}
			})
			me := e.login("test", "test")
			j := servertest.NewJar(nil)
			body, hdr := form(url.Values{"username": {"test"}, "password": {"test"}})
			e.browse(j, "POST", "/account/login", body, hdr...)
			csrf, _ := form(url.Values{"csrf_token": {j.Get("lk_csrf")}})
			before := w.sessionCalls.Load()
			for _, id := range badIDs {
				p := url.PathEscape(id)
				e.call("DELETE", "/sessions/"+p, me.access, "").want(t, 404, "not_found")
				r := e.browse(j, "POST", "/account/sessions/"+p+"/revoke", csrf, hdr...)
				if r.status != 404 || r.str("error") != "not_found" {
					t.Fatalf("account revoke of %q = %d %.200s, want 404 not_found", id, r.status, r.raw)
				}
			}
			if n := w.sessionCalls.Load() - before; n != 0 {
				t.Fatalf("malformed session ids reached the store %d times", n)
			}
			// Nothing was revoked by them, and a well-formed id still works.
			e.call("GET", "/me", me.access, "").want(t, 200, "")
			other := e.login("test", "test")
			e.call("DELETE", "/sessions/"+other.session, me.access, "").want(t, 204, "")
			e.refresh(other.refresh).want(t, 401, "token_revoked")
			// Credentials with bytes a database cannot store are refused as
			// such, not as an outage.
			e.call("POST", "/login", "", `{"username":"te\u0000st","password":"test1234"}`).want(t, 401, "invalid_credentials")
			e.call("POST", "/register", "", `{"username":"a\u0000b","password":"long enough"}`).want(t, 400, "invalid_request")
		})
	}
}

// FuzzSessionRouteParam sends any value as the {id} of DELETE /sessions/{id}:
// the answer is 404 not_found (no value a fuzzer finds is a live session of
// the caller), never a 5xx.
func FuzzSessionRouteParam(f *testing.F) {
	for _, id := range badIDs {
		f.Add(id)
	}
	f.Add("AAAAAAAAAAAAAAAAAAAAAA")
	e := newEnv(f)
	me := e.login("test", "test")
	f.Fuzz(func(t *testing.T, id string) {
		for _, path := range []string{"/sessions/" + url.PathEscape(id), "/sessions/" + id} {
			req := httptest.NewRequest("DELETE", "http://latchkey.test/", nil)
			req.URL.Path, req.URL.RawPath = strings.SplitN(path, "?", 2)[0], ""
			req.Header.Set("Authorization", "Bearer "+me.access)
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("DELETE %q = %d %s", path, rec.Code, rec.Body)
			}
			if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("DELETE %q = %d %s, want 404", path, rec.Code, rec.Body)
			}
		}
	})
}

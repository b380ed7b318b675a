package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
)

func TestLoginPairShape(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/login", "", `{"username":"test","password":"test"}`).want(t, 200, "")
	for _, k := range []string{"uuid", "session_id", "access_token", "refresh_token"} {
		if r.str(k) == "" {
			t.Errorf("login response lacks %q: %s", k, r.raw)
		}
	}
	if r.str("token_type") != "Bearer" {
		t.Errorf("token_type = %q", r.str("token_type"))
	}
	now := e.clock.Now().Unix()
	if got := r.body["expires_in"].(float64); got != 900 {
		t.Errorf("expires_in = %v, want 900", got)
	}
	if got := int64(r.body["expires_at"].(float64)); got != now+900 {
		t.Errorf("expires_at = %d, want %d", got, now+900)
	}
	if got := int64(r.body["refresh_expires_at"].(float64)); got != now+30*24*3600 {
		t.Errorf("refresh_expires_at = %d, want %d", got, now+30*24*3600)
	}
	user, _ := r.body["user"].(map[string]any)
	if user["username"] != "test" || user["uuid"] != r.str("uuid") {
		t.Errorf("user = %v", user)
	}
	if !strings.HasPrefix(r.str("refresh_token"), "lk_rt_") {
		t.Errorf("refresh token %q lacks the lk_rt_ prefix", r.str("refresh_token"))
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

func TestCurlFlow(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	e.call("GET", "/protected", p.access, "").want(t, 200, "")
	if r := e.call("GET", "/protected", p.access, ""); r.str("message") != "You have access" {
		t.Fatalf("protected = %s", r.raw)
	}
	n := asPair(e.refresh(p.refresh).want(t, 200, ""))
	if n.refresh == p.refresh || n.access == p.access || n.session != p.session {
		t.Fatalf("refresh did not rotate: %+v -> %+v", p, n)
	}
	e.call("GET", "/protected", n.access, "").want(t, 200, "")
	me := e.call("GET", "/me", n.access, "").want(t, 200, "")
	if me.str("username") != "test" || me.str("session_id") != p.session {
		t.Fatalf("me = %s", me.raw)
	}
}

func TestRefreshTokenLocations(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	n := asPair(e.call("POST", "/refresh", "", `{"refresh_token":"`+p.refresh+`"}`).want(t, 200, ""))
	// Armor style: both tokens, refresh in the body and access in the header.
	asPair(e.call("POST", "/refresh", n.access, `{"refresh_token":"`+n.refresh+`"}`).want(t, 200, ""))
	e.call("POST", "/refresh", "", "").want(t, 401, "missing_token")
	// Refresh tokens are never accepted from the query string.
	e.call("POST", "/refresh?refresh_token="+n.refresh, "", "").want(t, 401, "missing_token")
}

func TestErrorsCarryWWWAuthenticate(t *testing.T) {
	e := newEnv(t)
	r := e.call("GET", "/protected", "", "").want(t, 401, "missing_token")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="latchkey"` {
		t.Errorf("missing token: WWW-Authenticate = %q", got)
	}
	r = e.call("GET", "/protected", "garbage", "").want(t, 401, "invalid_token")
	got := r.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(got, `Bearer realm="latchkey", error="invalid_token", error_description="`) || !strings.HasSuffix(got, `"`) {
		t.Errorf("refused token: WWW-Authenticate = %q", got)
	}
	r = e.call("POST", "/login", "", `{"username":"test","password":"nope"}`).want(t, 401, "invalid_credentials")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="latchkey"` {
		t.Errorf("bad login: WWW-Authenticate = %q", got)
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	e := newEnv(t)
	a := e.call("POST", "/login", "", `{"username":"test","password":"wrong-password"}`).want(t, 401, "invalid_credentials")
	b := e.call("POST", "/login", "", `{"username":"nobody-here","password":"wrong-password"}`).want(t, 401, "invalid_credentials")
	if string(a.raw) != string(b.raw) {
		t.Fatalf("unknown user and wrong password answer differently: %s vs %s", a.raw, b.raw)
	}
}

func TestRegister(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/register", "", `{"username":"alice","password":"correct horse"}`).want(t, 201, "")
	if r.str("uuid") == "" || r.str("username") != "alice" {
		t.Fatalf("register = %s", r.raw)
	}
	e.call("POST", "/register", "", `{"username":"alice","password":"correct horse"}`).want(t, 409, "username_taken")
	e.call("POST", "/register", "", `{"username":"ALICE","password":"correct horse"}`).want(t, 409, "username_taken")
	e.call("POST", "/register", "", `{"username":"bob","password":"short"}`).want(t, 400, "weak_password")
	e.call("POST", "/register", "", `{"username":"","password":"correct horse"}`).want(t, 400, "invalid_request")
	e.call("POST", "/register", "", `{"username":"bob"}`).want(t, 400, "invalid_request")
	e.login("alice", "correct horse")

	closed := newEnv(t, func(s *setup) { s.closedSignup = true })
	closed.call("POST", "/register", "", `{"username":"carol","password":"correct horse"}`).want(t, 403, "registration_closed")
}

// Twenty-plus concurrent refreshes of one token all succeed with the same new
// refresh token, every access token they carry works, and the session advances
// exactly one generation.
func TestConcurrentRefreshSameSuccessor(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	const n = 32
	var wg sync.WaitGroup
	results := make([]response, n)
	for i := range n {
		wg.Go(func() { results[i] = e.refresh(p.refresh) })
	}
	wg.Wait()
	next := results[0].str("refresh_token")
	for i, r := range results {
		if r.status != 200 {
			t.Fatalf("refresh %d = %d %s", i, r.status, r.raw)
		}
		if got := r.str("refresh_token"); got != next {
			t.Fatalf("refresh %d returned another refresh token: a fork", i)
		}
		e.call("GET", "/protected", r.str("access_token"), "").want(t, 200, "")
	}
	// Exactly one rotation: the successor rotates to a third token, and the
	// original is now two generations behind.
	third := asPair(e.refresh(next).want(t, 200, ""))
	if third.refresh == next {
		t.Fatal("the successor did not rotate")
	}
	e.clock.Add(11 * time.Second)
	e.refresh(p.refresh).want(t, 401, "refresh_reused")
}

func TestGraceWindow(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	n := asPair(e.refresh(p.refresh).want(t, 200, ""))
	e.clock.Add(9 * time.Second)
	again := asPair(e.refresh(p.refresh).want(t, 200, ""))
	if again.refresh != n.refresh {
		t.Fatal("a retry inside the grace window got a different refresh token")
	}
	e.call("GET", "/protected", again.access, "").want(t, 200, "")
	e.clock.Add(2 * time.Second) // 11 s after the rotation
	e.refresh(p.refresh).want(t, 401, "refresh_reused")
	// The session is dead: its newest refresh token and its access tokens too.
	e.refresh(n.refresh).want(t, 401, "refresh_reused")
	e.call("GET", "/protected", n.access, "").want(t, 401, "token_revoked")
}

// Replaying a token three generations old, after the window, revokes the whole
// session, and its access tokens stop working.
func TestReplayOfOldGenerationRevokesSession(t *testing.T) {
	e := newEnv(t)
	p0 := e.login("test", "test")
	p1 := asPair(e.refresh(p0.refresh).want(t, 200, ""))
	p2 := asPair(e.refresh(p1.refresh).want(t, 200, ""))
	p3 := asPair(e.refresh(p2.refresh).want(t, 200, ""))
	e.call("GET", "/protected", p3.access, "").want(t, 200, "")
	e.clock.Add(time.Minute)
	e.refresh(p0.refresh).want(t, 401, "refresh_reused")
	for _, p := range []pair{p0, p1, p2, p3} {
		e.call("GET", "/protected", p.access, "").want(t, 401, "token_revoked")
	}
	e.refresh(p3.refresh).want(t, 401, "refresh_reused")
	// Another session of the same user is untouched.
	other := e.login("test", "test")
	e.call("GET", "/protected", other.access, "").want(t, 200, "")
}

// Inside the window, only the immediate predecessor qualifies.
func TestGraceOnlyForImmediatePredecessor(t *testing.T) {
	e := newEnv(t)
	p0 := e.login("test", "test")
	p1 := asPair(e.refresh(p0.refresh).want(t, 200, ""))
	asPair(e.refresh(p1.refresh).want(t, 200, ""))
	e.refresh(p0.refresh).want(t, 401, "refresh_reused")
}

// A revocation never reopens the window.
func TestRevokedSessionHasNoGrace(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	n := asPair(e.refresh(p.refresh).want(t, 200, ""))
	e.call("POST", "/logout", n.access, "").want(t, 204, "")
	e.refresh(p.refresh).want(t, 401, "token_revoked")
	e.refresh(n.refresh).want(t, 401, "token_revoked")
	e.call("GET", "/protected", n.access, "").want(t, 401, "token_revoked")
}

// A forged token (valid shape, wrong MAC) for a real session changes nothing.
func TestForgedRefreshChangesNothing(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	tampered := []byte(p.refresh)
	// Change a MAC character and keep the rest: the checksum or the MAC fails.
	i := len(tampered) - 20
	if tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	for _, bad := range []string{string(tampered), p.refresh[:len(p.refresh)-1], p.refresh + "x", "lk_rt_", strings.Repeat("A", 5000)} {
		e.refresh(bad).want(t, 401, "invalid_token")
	}
	// The session is alive and its token still rotates normally.
	e.call("GET", "/protected", p.access, "").want(t, 200, "")
	e.refresh(p.refresh).want(t, 200, "")
}

func TestWrongTokenTypes(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	e.call("GET", "/protected", p.refresh, "").want(t, 401, "wrong_token_type")
	e.refresh(p.access).want(t, 401, "wrong_token_type")
}

func TestAccessTokenExpiry(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	e.clock.Add(15*time.Minute + time.Second)
	r := e.call("GET", "/protected", p.access, "").want(t, 401, "token_expired")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("expired token: WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
	n := asPair(e.refresh(p.refresh).want(t, 200, ""))
	e.call("GET", "/protected", n.access, "").want(t, 200, "")
}

func TestIdleTimeoutSlides(t *testing.T) {
	e := newEnv(t, func(s *setup) {
		s.cfg = func(c *latchkey.Config) { c.RefreshTTL = time.Hour; c.SessionLifetime = 10 * time.Hour }
	})
	p := e.login("test", "test")
	for range 3 { // three refreshes, each 50 min apart: the idle window slides
		e.clock.Add(50 * time.Minute)
		p = asPair(e.refresh(p.refresh).want(t, 200, ""))
	}
	e.clock.Add(61 * time.Minute)
	e.refresh(p.refresh).want(t, 401, "session_expired")
}

func TestLockedExpiryDoesNotSlide(t *testing.T) {
	e := newEnv(t, func(s *setup) {
		s.cfg = func(c *latchkey.Config) { c.RefreshTTL = time.Hour; c.LockedExpiry = true }
	})
	p := e.login("test", "test")
	e.clock.Add(50 * time.Minute)
	r := e.refresh(p.refresh).want(t, 200, "")
	loginExpiry := e.clock.Now().Add(-50*time.Minute).Unix() + 3600
	if got := int64(r.body["refresh_expires_at"].(float64)); got != loginExpiry {
		t.Fatalf("locked refresh_expires_at = %d, want the login's %d", got, loginExpiry)
	}
	e.clock.Add(11 * time.Minute)
	e.refresh(asPair(r).refresh).want(t, 401, "session_expired")
}

func TestAbsoluteLifetimeNeverSlides(t *testing.T) {
	e := newEnv(t, func(s *setup) {
		s.cfg = func(c *latchkey.Config) { c.RefreshTTL = time.Hour; c.SessionLifetime = 2 * time.Hour }
	})
	p := e.login("test", "test")
	login := e.clock.Now()
	var last response
	for _, step := range []time.Duration{40 * time.Minute, 40 * time.Minute, 30 * time.Minute} {
		e.clock.Add(step)
		last = e.refresh(p.refresh).want(t, 200, "")
		p = asPair(last)
	}
	// 110 minutes in, the sliding expiry (170 min) is capped at the absolute end (120 min).
	end := login.Add(2 * time.Hour).Unix()
	if got := int64(last.body["refresh_expires_at"].(float64)); got != end {
		t.Fatalf("refresh_expires_at = %d, want the absolute end %d", got, end)
	}
	e.clock.Add(10 * time.Minute)
	e.refresh(p.refresh).want(t, 401, "session_expired")
	// Expired sessions are remembered: it is "expired", not "invalid", a day later.
	e.clock.Add(23 * time.Hour)
	e.refresh(p.refresh).want(t, 401, "session_expired")
}

func TestBinding(t *testing.T) {
	e := newEnv(t, func(s *setup) { s.cfg = func(c *latchkey.Config) { c.BindAccess = true } })
	p := e.login("test", "test")
	other := e.login("test", "test")
	e.call("POST", "/refresh", "", `{"refresh_token":"`+p.refresh+`"}`).want(t, 401, "missing_token")
	e.call("POST", "/refresh", "", `{"refresh_token":"`+p.refresh+`","access_token":"`+other.access+`"}`).want(t, 401, "invalid_token")
	e.call("POST", "/refresh", "", `{"refresh_token":"`+p.refresh+`","access_token":"garbage"}`).want(t, 401, "invalid_token")
	// Expired is fine: the signature and the session are what count.
	e.clock.Add(20 * time.Minute)
	n := asPair(e.call("POST", "/refresh", "", `{"refresh_token":"`+p.refresh+`","access_token":"`+p.access+`"}`).want(t, 200, ""))
	e.call("POST", "/refresh", n.access, `{"refresh_token":"`+n.refresh+`"}`).want(t, 200, "")
}

// An access token presented with a refresh is revoked once the new pair exists.
func TestRefreshRevokesPresentedAccessToken(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	n := asPair(e.call("POST", "/refresh", "", `{"refresh_token":"`+p.refresh+`","access_token":"`+p.access+`"}`).want(t, 200, ""))
	e.call("GET", "/protected", p.access, "").want(t, 401, "token_revoked")
	e.call("GET", "/protected", n.access, "").want(t, 200, "")
}

func TestLogoutScopes(t *testing.T) {
	e := newEnv(t)
	a, b, c := e.login("test", "test"), e.login("test", "test"), e.login("test", "test")
	e.call("POST", "/logout?scope=bogus", a.access, "").want(t, 400, "invalid_request")
	e.call("POST", "/logout?scope=others", a.access, "").want(t, 204, "")
	e.call("GET", "/protected", a.access, "").want(t, 200, "")
	e.call("GET", "/protected", b.access, "").want(t, 401, "token_revoked")
	e.refresh(c.refresh).want(t, 401, "token_revoked")

	d := e.login("test", "test")
	e.call("POST", "/logout", a.access, "").want(t, 204, "") // local by default
	e.call("GET", "/protected", a.access, "").want(t, 401, "token_revoked")
	e.call("GET", "/protected", d.access, "").want(t, 200, "")

	f := e.login("test", "test")
	e.call("POST", "/logout?scope=global", d.access, "").want(t, 204, "")
	for _, p := range []pair{d, f} {
		e.call("GET", "/protected", p.access, "").want(t, 401, "token_revoked")
		e.refresh(p.refresh).want(t, 401, "token_revoked")
	}
}

func TestSessionsListAndDelete(t *testing.T) {
	e := newEnv(t)
	a := e.login("test", "test")
	b := e.login("test", "test")
	r := e.call("GET", "/sessions", a.access, "").want(t, 200, "")
	list, _ := r.body["sessions"].([]any)
	if len(list) != 2 {
		t.Fatalf("sessions = %s, want 2", r.raw)
	}
	current := 0
	for _, x := range list {
		s := x.(map[string]any)
		for _, k := range []string{"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"} {
			if _, ok := s[k]; !ok {
				t.Fatalf("session lacks %q: %v", k, s)
			}
		}
		if s["current"] == true {
			current++
			if s["id"] != a.session {
				t.Fatalf("current session = %v, want %s", s["id"], a.session)
			}
		}
	}
	if current != 1 {
		t.Fatalf("%d sessions marked current", current)
	}
	e.call("DELETE", "/sessions/"+b.session, a.access, "").want(t, 204, "")
	e.call("GET", "/protected", b.access, "").want(t, 401, "token_revoked")
	e.call("DELETE", "/sessions/"+b.session, a.access, "").want(t, 404, "not_found")
	e.call("DELETE", "/sessions/nonexistent", a.access, "").want(t, 404, "not_found")

	// Another user's session is "not found", and stays alive.
	e.call("POST", "/register", "", `{"username":"mallory","password":"mallory-pass"}`).want(t, 201, "")
	m := e.login("mallory", "mallory-pass")
	e.call("DELETE", "/sessions/"+a.session, m.access, "").want(t, 404, "not_found")
	e.call("GET", "/protected", a.access, "").want(t, 200, "")
}

func TestPasswordChangeNeedsFreshToken(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/register", "", `{"username":"alice","password":"first password"}`).want(t, 201, "")
	p := e.login("alice", "first password")
	other := e.login("alice", "first password")
	refreshed := asPair(e.refresh(p.refresh).want(t, 200, ""))
	e.call("POST", "/password", refreshed.access, `{"old_password":"first password","new_password":"second password"}`).want(t, 403, "fresh_token_required")
	e.call("POST", "/password", p.access, `{"old_password":"wrong","new_password":"second password"}`).want(t, 401, "invalid_credentials")
	e.call("POST", "/password", p.access, `{"old_password":"first password","new_password":"short"}`).want(t, 400, "weak_password")
	e.call("POST", "/password", p.access, `{"old_password":"first password","new_password":"second password"}`).want(t, 204, "")
	e.call("GET", "/protected", other.access, "").want(t, 401, "token_revoked")
	e.call("GET", "/protected", refreshed.access, "").want(t, 200, "") // the caller's own session stays
	e.call("POST", "/login", "", `{"username":"alice","password":"first password"}`).want(t, 401, "invalid_credentials")
	e.login("alice", "second password")
}

func TestLoginRateLimited(t *testing.T) {
	e := newEnv(t)
	var r response
	for i := range 20 {
		r = e.call("POST", "/login", "", `{"username":"test","password":"wrong"}`)
		if r.status == 429 {
			break
		}
		r.want(t, 401, "invalid_credentials")
		if i == 19 {
			t.Fatal("20 failed logins were never rate limited")
		}
	}
	r.want(t, 429, "rate_limited")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	// Even the right password waits: the limit is checked before the hash.
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`).want(t, 429, "rate_limited")
}

func TestJWKSHasNoPrivateParts(t *testing.T) {
	e := newEnv(t)
	r := e.call("GET", "/.well-known/jwks.json", "", "").want(t, 200, "")
	ks, _ := r.body["keys"].([]any)
	if len(ks) < 2 {
		t.Fatalf("jwks = %s, want the current and the next key", r.raw)
	}
	for _, k := range ks {
		m := k.(map[string]any)
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := m[private]; ok {
				t.Fatalf("jwks publishes private member %q", private)
			}
		}
		if m["kid"] == nil || m["alg"] == nil {
			t.Fatalf("key without kid/alg: %v", m)
		}
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	if r := e.call("GET", "/healthz", "", "").want(t, 200, ""); r.str("status") != "ok" {
		t.Fatalf("healthz = %s", r.raw)
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	r := e.call("GET", "/login", "", "").want(t, 405, "method_not_allowed")
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow = %q", r.header.Get("Allow"))
	}
	e.call("GET", "/nowhere", "", "").want(t, 404, "not_found")
	e.call("PUT", "/sessions/x", "", "").want(t, 405, "method_not_allowed")
}

// Whatever arrives, the answer is a 4xx JSON error (call fails the test on 5xx).
func TestMalformedInput(t *testing.T) {
	e := newEnv(t)
	p := e.login("test", "test")
	bodies := []string{
		`{`, `[]`, `"x"`, `null`, `{"username":1}`, `{"username":"test","password":"test"} {}`,
		`{"username":"test","password":"test"}garbage`, strings.Repeat(" ", 70<<10) + "{}",
		`{"username":"` + strings.Repeat("a", 65<<10) + `"}`, "\xff\xfe", `{"username":"\u0000","password":"x"}`,
	}
	for _, path := range []string{"/login", "/register", "/refresh", "/password"} {
		for i, b := range bodies {
			t.Run(fmt.Sprintf("%s/%d", path, i), func(t *testing.T) {
				r := e.call("POST", path, p.access, b)
				if r.status < 400 || r.str("error") == "" {
					t.Fatalf("POST %s %.40q = %d %s", path, b, r.status, r.raw)
				}
			})
		}
	}
	// Wrong content type.
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "Content-Type", "text/plain").want(t, 400, "invalid_request")
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "Content-Type", "application/json; charset=utf-8").want(t, 200, "")
	// Hostile bearer tokens.
	for _, tok := range []string{
		"a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", strings.Repeat("x", 9000),
		p.access[:len(p.access)-3], p.access + "A", "eyJ" + strings.Repeat(".", 10),
	} {
		r := e.call("GET", "/protected", tok, "")
		if r.status != 401 {
			t.Fatalf("token %.30q = %d %s", tok, r.status, r.raw)
		}
	}
	e.call("GET", "/protected", "", "", "Authorization", "Bearer a b c").want(t, 401, "invalid_token")
	e.call("GET", "/protected", "", "", "Authorization", "Basic dGVzdDp0ZXN0").want(t, 401, "missing_token")
	// The server is still alive and the session intact.
	e.call("GET", "/protected", p.access, "").want(t, 200, "")
}

var _ = http.MethodGet

// Guesses sent all at once are limited like guesses sent one by one: each
// attempt holds its place in the limit while its password is hashed.
func TestConcurrentLoginGuessesLimited(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	var evaluated, limited atomic.Int64
	for range 40 {
		wg.Go(func() {
			r := e.call("POST", "/login", "", `{"username":"test","password":"guess"}`)
			switch r.status {
			case 401:
				evaluated.Add(1)
			case 429:
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	if evaluated.Load() > 5 || evaluated.Load()+limited.Load() != 40 {
		t.Fatalf("%d guesses evaluated, %d limited; want at most 5 evaluated", evaluated.Load(), limited.Load())
	}
}

func TestUncleanPathIsJSON404(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"//login", "/sessions/../login", "/./protected"} {
		r := e.call("GET", p, "", "")
		if r.status != 404 || r.str("error") != "not_found" {
			t.Fatalf("GET %s = %d %s", p, r.status, r.raw)
		}
	}
}

// A badly encoded User-Agent is cleaned, not stored as is: PostgreSQL's text
// type refuses invalid UTF-8 and NUL, and login must not fail for it.
func TestBadUserAgentIsCleaned(t *testing.T) {
	e := newEnv(t)
	r := e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "User-Agent", "Mozilla\xff/5").want(t, 200, "")
	s := e.call("GET", "/sessions", r.str("access_token"), "").want(t, 200, "")
	if !strings.Contains(string(s.raw), `"user_agent":"Mozilla/5"`) {
		t.Fatalf("sessions = %s", s.raw)
	}
}

package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/httpauth"
)

// sessionIP logs in through the given X-Forwarded-For header lines and
// returns the address the new session recorded.
func (e *env) sessionIP(xff ...string) string {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader(`{"username":"test","password":"test"}`))
	req.Header.Set("Content-Type", "application/json")
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	var p struct {
		AccessToken string `json:"access_token"`
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode != 200 {
		e.t.Fatalf("login through %q = %d", xff, resp.StatusCode)
	}
	r := e.call("GET", "/sessions", p.AccessToken, "").want(e.t, 200, "")
	for _, s := range r.body["sessions"].([]any) {
		if s := s.(map[string]any); s["current"] == true {
			return s["ip"].(string)
		}
	}
	e.t.Fatal("no current session listed")
	return ""
}

func TestTrustedProxyForwardedFor(t *testing.T) {
	trusted, err := httpauth.ParseTrustedProxies("127.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(s *setup) { s.trustedProxies = trusted })
	for _, tc := range []struct {
		xff  []string
		want string
	}{
		{nil, "127.0.0.1"}, // a direct call from the proxy's host
		{[]string{"203.0.113.9"}, "203.0.113.9"},
		// The client wrote the left part: the rightmost untrusted entry wins.
		{[]string{"198.51.100.1, 203.0.113.9, 127.0.0.5"}, "203.0.113.9"},
		{[]string{"198.51.100.1", "203.0.113.10"}, "203.0.113.10"},
		// Garbage stops the walk at the nearest trusted hop, never at a forged entry.
		{[]string{"198.51.100.1, not-an-address"}, "127.0.0.1"},
	} {
		if got := e.sessionIP(tc.xff...); got != tc.want {
			t.Errorf("X-Forwarded-For %q: session address %q, want %q", tc.xff, got, tc.want)
		}
	}

	// The login limit counts each client behind the proxy on its own: one
	// address locked out leaves another free.
	lockOut(t, e, "203.0.113.20")
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "X-Forwarded-For", "203.0.113.20").want(t, 429, "rate_limited")
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "X-Forwarded-For", "203.0.113.21").want(t, 200, "")
}

// lockOut fails logins from the forwarded address xff until they are refused.
func lockOut(t *testing.T, e *env, xff string) {
	t.Helper()
	for n := 0; e.call("POST", "/login", "", `{"username":"test","password":"wrong"}`, "X-Forwarded-For", xff).status != 429; n++ {
		if n == 20 {
			t.Fatal("never rate limited")
		}
	}
}

// A peer that is not a listed proxy — with no list, or with a list that does
// not name it — cannot choose its address with the header.
func TestForwardedForFromUntrustedPeer(t *testing.T) {
	others, err := httpauth.ParseTrustedProxies("192.0.2.0/24, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for name, trusted := range map[string]httpauth.TrustedProxies{"no list": nil, "another proxy": others} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(s *setup) { s.trustedProxies = trusted })
			if got := e.sessionIP("203.0.113.9"); got != "127.0.0.1" {
				t.Fatalf("session address %q: an untrusted peer's X-Forwarded-For was believed", got)
			}
			lockOut(t, e, "203.0.113.20")
			// Another forwarded address does not escape the lock.
			e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "X-Forwarded-For", "203.0.113.21").want(t, 429, "rate_limited")
		})
	}
}

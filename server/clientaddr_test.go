package server_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/server"
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
	trusted, err := server.ParseTrustedProxies("127.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(s *setup) { s.trustedProxies = trusted })
	for _, tc := range []struct {
		xff  []string
		want string
	}{
		{nil, "127.0.0.1"}, // the proxy itself, or a direct call from a trusted peer
		{[]string{"203.0.113.9"}, "203.0.113.9"},
		// The client wrote the left part: the rightmost untrusted entry wins.
		{[]string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		// Two trusted proxies in a row are skipped.
		{[]string{"198.51.100.1, 203.0.113.9, 127.0.0.5"}, "203.0.113.9"},
		// Several header lines are one list, in order.
		{[]string{"198.51.100.1", "203.0.113.10"}, "203.0.113.10"},
		{[]string{"203.0.113.11:4711"}, "203.0.113.11"},
		{[]string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{[]string{"::ffff:203.0.113.12"}, "203.0.113.12"},
		// Garbage stops the walk at the nearest trusted hop, never at a forged entry.
		{[]string{"198.51.100.1, not-an-address"}, "127.0.0.1"},
		{[]string{"198.51.100.1, not-an-address, 127.0.0.9"}, "127.0.0.9"},
		{[]string{strings.Repeat("127.0.0.2, ", 40) + "127.0.0.3"}, "127.0.0.2"}, // bounded walk
		{[]string{""}, "127.0.0.1"},
	} {
		if got := e.sessionIP(tc.xff...); got != tc.want {
			t.Errorf("X-Forwarded-For %q: session address %q, want %q", tc.xff, got, tc.want)
		}
	}

	// The login limit counts each client behind the proxy on its own: one
	// address locked out leaves another free.
	fail := func(xff string) int {
		return e.call("POST", "/login", "", `{"username":"test","password":"wrong"}`, "X-Forwarded-For", xff).status
	}
	for n := 0; fail("203.0.113.20") != 429; n++ {
		if n == 20 {
			t.Fatal("never rate limited")
		}
	}
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "X-Forwarded-For", "203.0.113.20").want(t, 429, "rate_limited")
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "X-Forwarded-For", "203.0.113.21").want(t, 200, "")
}

// Without trusted proxies the header is the client's word and changes nothing.
func TestForwardedForIgnoredByDefault(t *testing.T) {
	e := newEnv(t)
	if got := e.sessionIP("203.0.113.9"); got != "127.0.0.1" {
		t.Fatalf("session address %q: an untrusted X-Forwarded-For was believed", got)
	}
	for n := 0; e.call("POST", "/login", "", `{"username":"test","password":"wrong"}`, "X-Forwarded-For", "203.0.113.20").status != 429; n++ {
		if n == 20 {
			t.Fatal("never rate limited")
		}
	}
	// Another forwarded address does not escape the lock.
	e.call("POST", "/login", "", `{"username":"test","password":"test"}`, "X-Forwarded-For", "203.0.113.21").want(t, 429, "rate_limited")
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := server.ParseTrustedProxies(" 10.0.0.0/8,192.0.2.7, fd00::/8,::ffff:172.16.0.0/108,,10.1.2.3/8 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("10.0.0.0/8")}
	if !slices.Equal(got, want) {
		t.Fatalf("parsed %v, want %v", got, want)
	}
	for _, bad := range []string{"0.0.0.0/0", "::/0", "proxy.internal", "10.0.0.0/33", "fe80::1%eth0"} {
		if _, err := server.ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

package httpauth_test

import (
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/httpauth"
)

func TestClientIP(t *testing.T) {
	trusted, err := httpauth.ParseTrustedProxies("10.0.0.1, 10.1.0.0/16, 2001:db8::/64")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer, header ignored", "203.0.113.5:1234", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted peer, no header", "10.0.0.1:1234", nil, "10.0.0.1"},
		{"one hop", "10.0.0.1:1234", []string{"203.0.113.9"}, "203.0.113.9"},
		{"forged left part", "10.0.0.1:1234", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"proxy chain", "10.0.0.1:1234", []string{"198.51.100.1, 203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"header lines in order", "10.0.0.1:1234", []string{"198.51.100.1", "203.0.113.10"}, "203.0.113.10"},
		{"port", "10.0.0.1:1234", []string{"203.0.113.11:4711"}, "203.0.113.11"},
		{"IPv6 with port", "10.0.0.1:1234", []string{"[2001:db9::7]:443"}, "2001:db9::7"},
		{"IPv6 proxy", "[2001:db8::1]:1234", []string{"203.0.113.13"}, "203.0.113.13"},
		{"IPv4-mapped entry", "10.0.0.1:1234", []string{"::ffff:203.0.113.12"}, "203.0.113.12"},
		{"IPv4-mapped proxy", "[::ffff:10.0.0.1]:1234", []string{"203.0.113.14"}, "203.0.113.14"},
		{"IPv4-mapped peer, untrusted", "[::ffff:203.0.113.5]:1234", nil, "203.0.113.5"},
		{"zone dropped", "[fe80::1%eth0]:1234", nil, "fe80::1"},
		{"garbage", "10.0.0.1:1234", []string{"198.51.100.1, unknown"}, "10.0.0.1"},
		{"garbage behind a trusted hop", "10.0.0.1:1234", []string{"198.51.100.1, unknown, 10.1.0.9"}, "10.1.0.9"},
		{"empty entry", "10.0.0.1:1234", []string{"198.51.100.1,"}, "10.0.0.1"},
		{"empty header", "10.0.0.1:1234", []string{""}, "10.0.0.1"},
		{"bounded walk", "10.0.0.1:1234", []string{"203.0.113.9, " + strings.Repeat("10.1.0.2, ", 40) + "10.1.0.3"}, "10.1.0.2"},
		{"huge entry", "10.0.0.1:1234", []string{strings.Repeat("1", 1<<16)}, "10.0.0.1"},
		{"not an address peer", "pipe", []string{"203.0.113.9"}, "pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := trusted.ClientIP(r); got != tc.want {
				t.Fatalf("ClientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

// Every logged request asks for its client's address: a direct peer's costs
// no allocation, whether or not proxies are configured.
func TestClientIPDirectPeerAllocatesNothing(t *testing.T) {
	trusted, _ := httpauth.ParseTrustedProxies("10.0.0.1")
	for _, peer := range []string{"203.0.113.5:1234", "[2001:db8::5]:443"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		for _, tp := range []httpauth.TrustedProxies{nil, trusted} {
			if n := testing.AllocsPerRun(100, func() { tp.ClientIP(r) }); n != 0 {
				t.Errorf("ClientIP of direct peer %s with %d proxies: %v allocations", peer, len(tp), n)
			}
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := httpauth.ParseTrustedProxies(" 10.0.0.0/8,192.0.2.7, fd00::/8,::ffff:172.16.0.0/108,,10.1.2.3/8 ")
	if err != nil {
		t.Fatal(err)
	}
	want := httpauth.TrustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("10.0.0.0/8")}
	if !slices.Equal(got, want) {
		t.Fatalf("parsed %v, want %v", got, want)
	}
	for _, bad := range []string{"0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96", "::ffff:0:0/96", "::ffff:1.2.3.4/80",
		"proxy.internal", "10.0.0.0/33", "fe80::1%eth0", "10.0.0.1,everyone"} {
		if _, err := httpauth.ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Whatever the peer and the header hold, ClientIP answers without panicking:
// an untrusted peer's own address, or else an IP address.
func FuzzClientIP(f *testing.F) {
	trusted, _ := httpauth.ParseTrustedProxies("10.0.0.0/8, 2001:db8::/64")
	f.Add("10.0.0.1:80", "203.0.113.9, 10.0.0.2")
	f.Add("[2001:db8::1]:80", "[::ffff:1.2.3.4]:9, unknown")
	f.Add("203.0.113.5:1", "10.0.0.3")
	f.Add("10.0.0.1:80", ",,, ,")
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		got := trusted.ClientIP(r)
		ap, err := netip.ParseAddrPort(peer)
		if err != nil {
			return // not an address: reported as it came
		}
		if a := ap.Addr().Unmap().WithZone(""); !trusted.Contains(a) && got != a.String() {
			t.Fatalf("untrusted peer %q with X-Forwarded-For %q: ClientIP = %q", peer, xff, got)
		}
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("peer %q with X-Forwarded-For %q: ClientIP = %q, not an address", peer, xff, got)
		}
	})
}

// The URL a DPoP proof must name: X-Forwarded-Proto and X-Forwarded-Host
// count only from a trusted proxy (the nearest entry), never from anyone
// else, and never the query.
func TestRequestURL(t *testing.T) {
	trusted, err := httpauth.ParseTrustedProxies("10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer    string
		proto, fwHost []string
		want          string
	}{
		{"direct", "203.0.113.5:1234", nil, nil, "http://api.internal:8080/me"},
		{"untrusted peer's headers ignored", "203.0.113.5:1234", []string{"https"}, []string{"evil.example"}, "http://api.internal:8080/me"},
		{"trusted proxy", "10.0.0.1:1234", []string{"https"}, []string{"auth.example.com"}, "https://auth.example.com/me"},
		{"nearest entry wins", "10.0.0.1:1234", []string{"http, https"}, []string{"a.example, Auth.Example.com"}, "https://auth.example.com/me"},
		{"nonsense scheme ignored", "10.0.0.1:1234", []string{"gopher"}, nil, "http://api.internal:8080/me"},
	} {
		r := httptest.NewRequest("GET", "http://api.internal:8080/me?access_token=x", nil)
		r.RemoteAddr = tc.peer
		for _, v := range tc.proto {
			r.Header.Add("X-Forwarded-Proto", v)
		}
		for _, v := range tc.fwHost {
			r.Header.Add("X-Forwarded-Host", v)
		}
		if got := trusted.RequestURL(r).String(); got != tc.want {
			t.Errorf("%s: RequestURL = %q, want %q", tc.name, got, tc.want)
		}
	}
}

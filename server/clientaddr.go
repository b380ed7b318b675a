package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds how many X-Forwarded-For entries are looked at; a
// real proxy chain is a handful long.
const maxForwardedHops = 32

// ParseTrustedProxies parses a comma-separated list of proxy addresses and
// CIDR prefixes ("10.0.0.0/8, 192.0.2.7, fd00::/8"). A prefix of length zero
// would trust every peer, letting any client choose its own address, and is
// refused.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("trusted proxy %q is neither an IP address nor a CIDR prefix", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			return nil, errors.New("trusted proxy " + f + " would trust every address, so any client could choose its own")
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clientIP is the address of the client behind r. It is the connection's peer
// unless that peer is a trusted proxy: then it is the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy. Entries left of
// it were written by the client and prove nothing. An entry that is no IP
// address ends the walk at the nearest trusted hop.
func (s *Server) clientIP(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if len(s.trusted) == 0 || err != nil {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			return host
		}
		return r.RemoteAddr
	}
	addr := peer.Addr().Unmap().WithZone("")
	if !s.trustedProxy(addr) {
		return addr.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	seen := 0
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			if seen++; seen > maxForwardedHops {
				return addr.String()
			}
			hop, ok := forwardedAddr(entries[j])
			if !ok {
				return addr.String()
			}
			if !s.trustedProxy(hop) {
				return hop.String()
			}
			addr = hop
		}
	}
	return addr.String()
}

// forwardedAddr parses one X-Forwarded-For entry: an address, with or without
// a port (some proxies add one).
func forwardedAddr(entry string) (netip.Addr, bool) {
	entry = strings.TrimSpace(entry)
	a, err := netip.ParseAddr(entry)
	if err != nil {
		ap, err := netip.ParseAddrPort(entry)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

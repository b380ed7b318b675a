package httpauth

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// maxForwardedHops bounds how many X-Forwarded-For entries ClientIP reads; a
// real proxy chain is a handful long.
const maxForwardedHops = 32

// TrustedProxies are the peers whose X-Forwarded-For header is believed. The
// zero value trusts nobody: the client is always the connection's peer.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies parses a comma-separated list of proxy addresses and
// CIDR prefixes ("192.0.2.10, 198.51.100.0/28, 2001:db8::/64"). A prefix that
// covers every IPv4 or IPv6 address would let any client choose its own
// address, and is refused.
func ParseTrustedProxies(list string) (TrustedProxies, error) {
	var out TrustedProxies
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
		if p.Addr().Is4In6() {
			// An IPv4-mapped prefix is the IPv4 prefix it maps, which peers
			// are compared with; one wider than the mapped space is not.
			if p.Bits() < 96 {
				return nil, fmt.Errorf("trusted proxy %q reaches beyond the IPv4-mapped addresses", f)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("trusted proxy %q would trust every address, so any client could choose its own", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Contains reports whether a is one of the trusted proxies.
func (t TrustedProxies) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address of the client behind r. It is the connection's peer
// unless that peer is a trusted proxy: then it is the rightmost
// X-Forwarded-For entry that is not itself a trusted proxy, since entries
// further left were written by the client and prove nothing. An entry that is
// no IP address (with or without a port) ends the walk at the nearest trusted
// hop, and so does reading maxForwardedHops entries. IPv4-mapped IPv6
// addresses are written as IPv4, and zones are dropped, whoever is trusted.
func (t TrustedProxies) ClientIP(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			return host
		}
		return r.RemoteAddr
	}
	addr := peer.Addr().Unmap().WithZone("")
	if len(t) == 0 || !t.Contains(addr) {
		return canonical(r.RemoteAddr, addr)
	}
	hops := r.Header.Values("X-Forwarded-For")
	read := 0
	for i := len(hops) - 1; i >= 0; i-- {
		line := hops[i]
		for {
			if read++; read > maxForwardedHops {
				return addr.String()
			}
			cut := strings.LastIndexByte(line, ',')
			hop, ok := forwardedAddr(line[cut+1:])
			if !ok {
				return addr.String()
			}
			if !t.Contains(hop) {
				return hop.String()
			}
			addr = hop
			if cut < 0 {
				break
			}
			line = line[:cut]
		}
	}
	return addr.String()
}

// canonical is addr as text: the host part of remoteAddr when that already is
// the canonical form, as net/http writes it, so that the common case of every
// request allocates nothing.
func canonical(remoteAddr string, addr netip.Addr) string {
	var buf [64]byte
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil && host == string(addr.AppendTo(buf[:0])) {
		return host
	}
	return addr.String()
}

// forwardedAddr parses one X-Forwarded-For entry: an address, with or without
// a port (some proxies add one).
func forwardedAddr(entry string) (netip.Addr, bool) {
	entry = strings.TrimSpace(entry)
	if len(entry) > len("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%zone]:65535")+32 {
		return netip.Addr{}, false // no address is this long
	}
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

// RequestURL is the URL a client used for r, as DPoP proofs name it (htu):
// scheme and host as the server sees them, or, when the peer is a trusted
// proxy, as the nearest proxy reports them in X-Forwarded-Proto and
// X-Forwarded-Host; the path as requested. Query and fragment are left out.
func (t TrustedProxies) RequestURL(r *http.Request) *url.URL {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || len(t) == 0 || !t.Contains(peer.Addr().Unmap().WithZone("")) {
		return u
	}
	if p := nearest(r.Header.Values("X-Forwarded-Proto")); p == "http" || p == "https" {
		u.Scheme = p
	}
	if h := nearest(r.Header.Values("X-Forwarded-Host")); h != "" {
		u.Host = h
	}
	return u
}

// nearest is the last entry of a comma-separated header field: the one the
// nearest proxy added.
func nearest(values []string) string {
	if len(values) == 0 {
		return ""
	}
	last := values[len(values)-1]
	return strings.ToLower(strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:]))
}

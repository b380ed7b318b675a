// Package origin checks the browser origins that latchkey puts on its
// allow-lists (the server's --cors-origins, an OAuth client's --origin): each
// is written exactly as a browser sends it in the Origin header, so that
// comparing it with that header is a plain string comparison.
package origin

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Check reports whether o is an origin latchkey accepts on an allow-list: a
// scheme (http or https) and a host with an optional port, written as a
// browser sends it in the Origin header ("https://app.example.com",
// "http://localhost:5173"). Paths, wildcards and default ports are refused.
func Check(o string) error {
	u, err := url.Parse(o)
	if err != nil {
		return fmt.Errorf("origin %q: %w", o, err)
	}
	switch {
	case strings.Contains(o, "*"):
		return fmt.Errorf("origin %q: wildcards are not accepted; list each origin", o)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("origin %q: want http:// or https:// followed by a host", o)
	case u.Host == "" || u.Opaque != "" || u.User != nil:
		return fmt.Errorf("origin %q: want scheme://host[:port]", o)
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#"):
		return fmt.Errorf("origin %q: an origin has no path, not even /", o)
	case u.Scheme == "http" && u.Port() == "80", u.Scheme == "https" && u.Port() == "443":
		return fmt.Errorf("origin %q: browsers send it without the default port", o)
	case o != strings.ToLower(o):
		return fmt.Errorf("origin %q: browsers send it in lower case", o)
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if _, _, err := net.SplitHostPort(u.Host); err != nil || p == "" {
			return fmt.Errorf("origin %q: bad port", o)
		}
	}
	return nil
}

// ParseList parses a comma-separated list of origins; blanks are ignored.
func ParseList(list string) ([]string, error) {
	var out []string
	for o := range strings.SplitSeq(list, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if err := Check(o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

package dpop

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// canonicalURL returns the scheme, authority and path of u as one string,
// normalised as RFC 9449 §4.3 asks: RFC 3986 syntax-based normalisation
// (case of scheme and host, case of percent-encodings, percent-encoded
// unreserved characters decoded, dot segments removed) and scheme-based
// normalisation (default port dropped, empty path made "/"). The query and the
// fragment are left out. Only http and https URLs with a host are accepted,
// and none with user information.
func canonicalURL(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	var defaultPort string
	switch scheme {
	case "https":
		defaultPort = "443"
	case "http":
		defaultPort = "80"
	default:
		return "", errors.New("not an http or https URL")
	}
	if u.Opaque != "" || u.User != nil {
		return "", errors.New("not a plain http URL")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("no host")
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(u.Host) + len(u.RawPath) + len(u.Path) + 1)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return "", errors.New("bad port")
		}
		if p = strconv.Itoa(n); p != defaultPort {
			b.WriteByte(':')
			b.WriteString(p)
		}
	}
	path, err := normalisePercent(u.EscapedPath())
	if err != nil {
		return "", err
	}
	path = removeDotSegments(path)
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	return b.String(), nil
}

// normalisePercent writes percent-encodings in upper case and decodes those of
// unreserved characters (RFC 3986 §6.2.2.1 and §6.2.2.2).
func normalisePercent(p string) (string, error) {
	i := strings.IndexByte(p, '%')
	if i < 0 {
		return p, nil
	}
	var b strings.Builder
	b.Grow(len(p))
	b.WriteString(p[:i])
	for ; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", errors.New("bad percent-encoding")
		}
		v := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(v) {
			b.WriteByte(v)
		} else {
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[v>>4])
			b.WriteByte(hex[v&15])
		}
		i += 2
	}
	return b.String(), nil
}

// removeDotSegments is the algorithm of RFC 3986 §5.2.4.
func removeDotSegments(in string) string {
	if !strings.Contains(in, ".") {
		return in
	}
	var out strings.Builder
	out.Grow(len(in))
	dropLast := func() {
		s := out.String()
		j := strings.LastIndexByte(s, '/')
		if j < 0 {
			j = 0
		}
		out.Reset()
		out.WriteString(s[:j])
	}
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			dropLast()
		case in == "/..":
			in = "/"
			dropLast()
		case in == "." || in == "..":
			in = ""
		default:
			j := strings.IndexByte(in[1:], '/')
			if j < 0 {
				j = len(in)
			} else {
				j++
			}
			out.WriteString(in[:j])
			in = in[j:]
		}
	}
	return out.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// isUnreserved reports whether c is an unreserved character of RFC 3986 §2.3.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

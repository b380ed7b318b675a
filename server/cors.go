package server

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/cors"
)

// The CORS answer of every route (Config.CORSOrigins).
var (
	// corsRequestHeaders are the request headers a page on a listed origin
	// may send.
	corsRequestHeaders = []string{"Authorization", "Content-Type", "X-CSRF-Token"}
	// corsExposedHeaders are the response headers such a page must read.
	corsExposedHeaders = []string{"WWW-Authenticate", "Retry-After"}
)

// corsMaxAge is how long (seconds) a browser may cache a preflight's answer:
// short, so that an origin taken off the list loses access soon.
const corsMaxAge = 600

// ParseCORSOrigins parses a comma-separated list of origins for
// Config.CORSOrigins (as --cors-origins takes it); blanks are ignored.
func ParseCORSOrigins(list string) ([]string, error) {
	var out []string
	for o := range strings.SplitSeq(list, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if err := checkOrigin(o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// checkOrigin reports whether o is an origin Config.CORSOrigins accepts: a
// scheme (http or https) and a host with an optional port, written as a
// browser sends it in the Origin header ("https://app.example.com",
// "http://localhost:5173"). Paths, wildcards and default ports are refused.
func checkOrigin(o string) error {
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

// corsRoute answers the CORS requests of one route, which accepts methods
// (those of its Allow header), before next: a preflight from a listed
// origin gets 204 with the route's methods and the headers latchkey reads; one
// from an unlisted origin gets 204 with no Access-Control-Allow-* header, which
// the browser takes as a refusal. Other requests from a listed origin get
// Access-Control-Allow-Origin (that origin, never "*") and
// Access-Control-Allow-Credentials. An OPTIONS request that is no preflight
// goes on to next (405).
func corsRoute(origins, methods []string, next http.Handler) http.Handler {
	c := cors.New(cors.Options{
		AllowedOrigins:     origins,
		AllowedMethods:     methods,
		AllowedHeaders:     corsRequestHeaders,
		ExposedHeaders:     corsExposedHeaders,
		MaxAge:             corsMaxAge,
		AllowCredentials:   true,
		OptionsPassthrough: true,
	})
	allowed, reqHeaders := strings.Join(methods, ", "), strings.Join(corsRequestHeaders, ", ")
	return c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			next.ServeHTTP(w, r)
			return
		}
		// A preflight: rs/cors has decided, echoing the requested method and
		// headers when it allows them; answer with all the route accepts.
		h := w.Header()
		if h.Get("Access-Control-Allow-Origin") != "" {
			h.Set("Access-Control-Allow-Methods", allowed)
			h.Set("Access-Control-Allow-Headers", reqHeaders)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

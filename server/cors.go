package server

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/origin"
	"github.com/latchkey/latchkey/oauth"
	"github.com/rs/cors"
)

// The CORS answer of every route (Config.CORSOrigins).
var (
	// corsRequestHeaders are the request headers a page on a listed origin
	// may send.
	corsRequestHeaders = []string{"Authorization", "Content-Type", "DPoP", "X-CSRF-Token"}
	// corsExposedHeaders are the response headers such a page must read.
	corsExposedHeaders = []string{"WWW-Authenticate", "Retry-After", "DPoP-Nonce"}
)

// corsMaxAge is how long (seconds) a browser may cache a preflight's answer:
// short, so that an origin taken off the list loses access soon.
const corsMaxAge = 600

// ParseCORSOrigins parses a comma-separated list of origins for
// Config.CORSOrigins (as --cors-origins takes it); blanks are ignored.
func ParseCORSOrigins(list string) ([]string, error) {
	return origin.ParseList(list)
}

// corsRoute answers the CORS requests of one route, which accepts methods
// (those of its Allow header), before next. Two kinds of origin are allowed:
// origins, the server's own list (Config.CORSOrigins), with credentials; and,
// when clients is not nil, an origin for which clients answers true (an OAuth
// client's registered origin), without credentials, so that its pages send
// tokens but never cookies. A preflight from an allowed origin gets 204 with
// the route's methods and the headers latchkey reads; one from any other
// origin gets 204 with no Access-Control-Allow-* header, which the browser
// takes as a refusal (without Config.CORSOrigins, 405 as if there were no
// CORS at all). Other requests from an allowed origin get
// Access-Control-Allow-Origin (that origin, never "*"). An OPTIONS request
// that is no preflight goes on to next (405).
func corsRoute(origins []string, clients func(r *http.Request, origin string) bool, methods []string, next http.Handler) http.Handler {
	allowed, reqHeaders := strings.Join(methods, ", "), strings.Join(corsRequestHeaders, ", ")
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})
	options := func(credentials bool) cors.Options {
		return cors.Options{AllowedMethods: methods, AllowedHeaders: corsRequestHeaders, ExposedHeaders: corsExposedHeaders,
			MaxAge: corsMaxAge, AllowCredentials: credentials, OptionsPassthrough: true}
	}
	o := options(true)
	o.AllowedOrigins = origins
	listed := cors.New(o).Handler(inner)
	if clients == nil {
		return listed
	}
	o = options(false)
	o.AllowOriginFunc = func(string) bool { return true } // what clients allowed, below
	registered := cors.New(o).Handler(inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch origin := r.Header.Get("Origin"); {
		case slices.Contains(origins, origin):
			listed.ServeHTTP(w, r)
		case origin != "" && clients(r, origin):
			registered.ServeHTTP(w, r)
		case len(origins) > 0:
			listed.ServeHTTP(w, r) // which answers a preflight with no allow header
		default:
			next.ServeHTTP(w, r) // as without CORS: a preflight is answered 405
		}
	})
}

// clientOriginsTTL is how long the union of the clients' origins is used
// before it is read again: an origin given to a client (or taken away, with
// the client) is seen by every node within this time.
const clientOriginsTTL = 10 * time.Second

// clientOrigins is the union of the origins of every registered OAuth
// client, for the CORS answer of the routes their pages call: a preflight
// does not say which client it is for. The union is read from the store at
// most once per clientOriginsTTL, whatever arrives; while the store cannot be
// read, the last union read is kept.
type clientOrigins struct {
	clients *oauth.Clients
	now     func() time.Time

	mu  sync.Mutex
	set map[string]bool
	at  time.Time // when set was read; zero before the first read
}

// allowed reports whether some registered client lists origin.
func (c *clientOrigins) allowed(r *http.Request, origin string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.at.IsZero() || now.Sub(c.at) >= clientOriginsTTL {
		c.at = now
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
		defer cancel()
		if cs, err := c.clients.List(ctx); err == nil {
			c.set = make(map[string]bool)
			for _, cl := range cs {
				for _, o := range cl.Origins {
					c.set[o] = true
				}
			}
		}
	}
	return c.set[origin]
}

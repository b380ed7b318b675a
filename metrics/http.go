package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/latchkey/latchkey/internal/httpstatus"
	"github.com/prometheus/client_golang/prometheus"
)

// Middleware returns middleware that counts the requests its handler serves
// by route, method and status code, and times them by route and method.
//
// route names a request's route once the handler has served it. nil reads
// r.Pattern, the pattern an http.ServeMux matched ("/sessions/{id}"), so the
// handler must be a ServeMux or pass the mux the very request it was given.
// A route must be drawn from a fixed set, never the raw path: "" is counted
// as Unmatched, and routes beyond the first 128 as Other. Methods other than
// the eight of RFC 9110 and PATCH are counted as Other.
func (m *Metrics) Middleware(route func(*http.Request) string) func(http.Handler) http.Handler {
	if route == nil {
		route = func(r *http.Request) string { return r.Pattern }
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &httpstatus.Writer{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			m.served(route(r), r.Method, sw.Status, time.Since(start))
		})
	}
}

// served counts one request.
func (m *Metrics) served(route, method string, status int, d time.Duration) {
	if route == "" {
		route = Unmatched
	}
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	c := m.routes.get(route).get(methodCode{knownMethod(method), status})
	c.requests.Inc()
	c.duration.Observe(d.Seconds())
}

// routeSeries holds the series of one route.
type routeSeries struct {
	*family[methodCode, httpChild]
}

type methodCode struct {
	method string
	code   int // 0: Other
}

type httpChild struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (m *Metrics) newRoute(name string) *routeSeries {
	return &routeSeries{newFamily(maxPerRoute, methodCode{Other, 0}, func(k methodCode) httpChild {
		code := Other
		if k.code >= 100 && k.code <= 599 {
			code = strconv.Itoa(k.code)
		}
		return httpChild{m.httpRequests.WithLabelValues(name, k.method, code), m.httpDuration.WithLabelValues(name, k.method)}
	})}
}

// knownMethod returns method if it is a standard one, else Other: a client
// chooses the method, and must not choose label values.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return Other
}

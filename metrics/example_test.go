package metrics_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/metrics"
	"github.com/latchkey/latchkey/store/sqlite"
)

// An application that embeds latchkey registers the collector on its own
// registry, next to its own metrics, and serves that registry.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "metrics-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	defer db.Close()
	secret := make([]byte, 32)
	rand.Read(secret)

	m := metrics.New()
	auth, err := latchkey.New(ctx, latchkey.Config{Store: db, Secret: secret, Observer: m, ReuseGrace: -1})
	if err != nil {
		panic(err)
	}
	defer auth.Close()
	m.WatchKeys(auth)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) // serve it on an internal address

	// A login, a refresh, and a replay of the first refresh token.
	pair, _ := auth.Login(ctx, "user-42", latchkey.LoginOptions{})
	auth.Refresh(ctx, pair.RefreshToken, latchkey.RefreshOptions{})
	auth.Refresh(ctx, pair.RefreshToken, latchkey.RefreshOptions{})

	w := httptest.NewRecorder()
	metricsHandler.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(line, "latchkey_refreshes_total{outcome=\"r") ||
			strings.HasPrefix(line, "latchkey_refresh_reuse_detected_total") ||
			strings.HasPrefix(line, "latchkey_sessions_started_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// latchkey_refresh_reuse_detected_total 1
	// latchkey_refreshes_total{outcome="reused"} 1
	// latchkey_refreshes_total{outcome="revoked"} 0
	// latchkey_refreshes_total{outcome="rotated"} 1
	// latchkey_sessions_started_total 1
}

// Middleware labels each request with the ServeMux pattern it matched, so
// every session id in a path counts under one route.
func ExampleMetrics_Middleware() {
	m := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("DELETE /sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	h := m.Middleware(nil)(mux)
	for _, id := range []string{"3f2a", "b77c"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/sessions/"+id, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/elsewhere", nil))

	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() != "latchkey_http_requests_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			fmt.Println(strings.Join(labels, " "), s.GetCounter().GetValue())
		}
	}
	// Output:
	// code=204 method=DELETE route=DELETE /sessions/{id} 2
	// code=404 method=GET route=unmatched 1
}

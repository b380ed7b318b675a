package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/metrics"
	"github.com/latchkey/latchkey/server"
)

// metricsServer is serve's --metrics-addr: Prometheus text at /metrics on a
// listener of its own, so it is never reachable through the public port. A nil
// *metricsServer is metrics switched off; its methods do nothing.
type metricsServer struct {
	metrics *metrics.Metrics
	reg     *prometheus.Registry
	ln      net.Listener
	hs      *http.Server
}

// listenMetrics listens on addr for metrics; "" switches them off.
func listenMetrics(addr string) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on --metrics-addr %s: %w", addr, err)
	}
	s := &metricsServer{metrics: metrics.New(), reg: prometheus.NewRegistry(), ln: ln}
	s.reg.MustRegister(s.metrics,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s, nil
}

// observe adds the metrics to the observers of o's Auth.
func (s *metricsServer) observe(o *options) {
	if s != nil {
		o.observers = append(o.observers, s.metrics)
	}
}

// serverMetrics is server.Config.Metrics: nil when switched off.
func (s *metricsServer) serverMetrics() *metrics.Metrics {
	if s == nil {
		return nil
	}
	return s.metrics
}

// serve starts answering scrapes; a failure to serve is sent to errc.
func (s *metricsServer) serve(auth *latchkey.Auth, log *slog.Logger, errc chan<- error) {
	if s == nil {
		return
	}
	s.metrics.WatchKeys(auth)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError), MaxRequestsInFlight: 4,
	}))
	s.hs = server.HTTPServer(s.ln.Addr().String(), mux, log)
	go func() {
		if err := s.hs.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics: %w", err)
		}
	}()
	log.Info("metrics listening", "url", "http://"+s.ln.Addr().String()+"/metrics")
}

// shutdown stops the metrics server: after the token server, so that a
// scrape during the drain still answers.
func (s *metricsServer) shutdown(ctx context.Context) {
	if s == nil {
		return
	}
	if s.hs != nil {
		s.hs.Shutdown(ctx)
	}
	s.ln.Close()
}

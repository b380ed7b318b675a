package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/metrics"
)

// BenchmarkObserve is the cost of counting one event of the hot path, from
// every CPU at once.
func BenchmarkObserve(b *testing.B) {
	ctx := context.Background()
	m := metrics.New()
	for _, e := range []latchkey.Event{
		{Kind: latchkey.EventVerify, Outcome: latchkey.OutcomeOK},
		{Kind: latchkey.EventStore, Op: "rotate_session", Duration: time.Millisecond},
	} {
		b.Run(string(e.Kind), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.Observe(ctx, e)
				}
			})
		})
	}
}

// clients is how many requests BenchmarkOverhead keeps in flight, as
// latchkey-bench's default of 32 clients does.
const clients = 32

// BenchmarkOverhead serves GET /protected and POST /refresh through the
// whole token server handler (routing, logging, middleware, the store),
// without and with metrics, from 32 concurrent clients. Run it with -count so
// that off and on alternate in one run, and compare ns/op:
//
//	go test -run '^$' -bench Overhead -count 6 ./metrics/
func BenchmarkOverhead(b *testing.B) {
	for _, path := range []string{"/protected", "/refresh"} {
		for _, on := range []bool{false, true} {
			name := path[1:] + "/metrics=off"
			if on {
				name = path[1:] + "/metrics=on"
			}
			b.Run(name, func(b *testing.B) {
				ts := newTokenServer(b, on)
				pairs := make(chan pair, clients)
				for range clients {
					pairs <- ts.login(b)
				}
				b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					p := <-pairs
					for pb.Next() {
						if path == "/protected" {
							protected(b, ts, p.AccessToken)
						} else {
							p.RefreshToken = refresh(b, ts, p.RefreshToken)
						}
					}
				})
			})
		}
	}
}

func protected(b *testing.B, ts *tokenServer, access string) {
	r := httptest.NewRequest("GET", "/protected", nil)
	r.Header.Set("Authorization", "Bearer "+access)
	w := httptest.NewRecorder()
	ts.handler.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatalf("GET /protected = %d", w.Code)
	}
}

func refresh(b *testing.B, ts *tokenServer, token string) string {
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	r := httptest.NewRequest("POST", "/refresh", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	ts.handler.ServeHTTP(w, r)
	var p pair
	if err := json.Unmarshal(w.Body.Bytes(), &p); w.Code != 200 || err != nil {
		b.Fatalf("POST /refresh = %d %s", w.Code, w.Body)
	}
	return p.RefreshToken
}

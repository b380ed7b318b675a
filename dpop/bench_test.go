package dpop_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/dpop"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/store"
)

// memMarkers is a store.Markers in a map, to measure Verify without the
// store's write; the SQLite runs measure it with one.
type memMarkers struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (m *memMarkers) Mark(_ context.Context, key string, now, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.m[key]; ok && u.After(now) {
		return store.ErrExists
	}
	m.m[key] = until
	return nil
}

// BenchmarkVerify measures Verify of a resource request (ath included) and
// reports it as a ratio to go-jose's parse and signature check of the same
// proofs, measured in the same run (x-jose): what the checks around the
// signature cost.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		for _, st := range []string{"memory", "sqlite"} {
			b.Run(alg+"/"+st, func(b *testing.B) {
				var m store.Markers = &memMarkers{m: map[string]time.Time{}}
				if st == "sqlite" {
					m = openSQLite(b, "")
				}
				clock := fakeclock.New(time.Now())
				v, err := dpop.New(dpop.Config{Markers: m, Now: clock.Now})
				if err != nil {
					b.Fatal(err)
				}
				key := keyFor(b, alg)
				proofs := make([]string, b.N)
				for i := range proofs {
					proofs[i], err = dpop.NewProof(key, dpop.Params{Method: testMethod, URL: testURL, AccessToken: "the-token", IssuedAt: clock.Now()})
					if err != nil {
						b.Fatal(err)
					}
				}
				ctx := context.Background()
				algs := []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
				// The baseline runs in chunks between chunks of Verify, with
				// the benchmark timer stopped, so both see the same load.
				var base time.Duration
				baseline := func(from, to int) {
					b.StopTimer()
					start := time.Now()
					for _, proof := range proofs[from:to] {
						jws, err := jose.ParseSignedCompact(proof, algs)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := jws.Verify(jws.Signatures[0].Protected.JSONWebKey.Key); err != nil {
							b.Fatal(err)
						}
					}
					base += time.Since(start)
					b.StartTimer()
				}
				const chunk = 64
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					r := request(proofs[i])
					r.AccessToken = "the-token"
					if _, err := v.Verify(ctx, r); err != nil {
						b.Fatal(err)
					}
					if (i+1)%chunk == 0 || i == b.N-1 {
						baseline(i/chunk*chunk, i+1)
					}
				}
				b.StopTimer()
				verify := b.Elapsed()
				b.ReportMetric(float64(verify)/float64(base), "x-jose")
			})
		}
	}
}

package metrics_test

import (
	"context"
	"flag"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/internal/load"
)

var (
	overhead = flag.Duration("overhead", 0, "TestOverhead: measure each round this long (0 skips the measurement)")
	rounds   = flag.Int("overhead-rounds", 6, "TestOverhead: rounds per mode")
)

// TestOverhead measures what metrics cost a request: two token servers over
// loopback HTTP in this process, one without and one with metrics, each
// driven by the load generator with 32 clients at the same time, round after
// round, on GET /protected and POST /refresh. Run side by side, both meet
// the same interference from the rest of the machine, and share its CPUs:
// the one whose requests cost more serves fewer of them, so the ratio of the
// two rates is the ratio of their costs. It is a measurement, not a test, and
// runs only when asked (docs/benchmarks.md):
//
//	go test ./metrics/ -run Overhead -v -overhead 3s
func TestOverhead(t *testing.T) {
	if *overhead == 0 {
		t.Skip("a measurement: run it with -overhead 3s (docs/benchmarks.md, Metrics)")
	}
	ctx := context.Background()
	var targets [2]string // off, on
	for i, on := range []bool{false, true} {
		hs := httptest.NewServer(newTokenServer(t, on).handler)
		t.Cleanup(hs.Close)
		targets[i] = hs.URL
	}
	for _, mode := range []string{load.ModeProtected, load.ModeRefresh} {
		var total [2]float64
		var ratios []float64
		for r := range *rounds {
			var res [2]load.Result
			var errs [2]error
			var wg sync.WaitGroup
			for i := range targets {
				wg.Go(func() {
					res[i], errs[i] = load.Run(ctx, load.Config{Target: targets[i], Mode: mode, Concurrency: 32,
						Duration: *overhead, Username: "test", Password: "test"})
				})
			}
			wg.Wait()
			for i := range targets {
				if errs[i] != nil || res[i].Errors > 0 {
					t.Fatalf("%s against %s: %v, %d errors: %v", mode, targets[i], errs[i], res[i].Errors, res[i].ByCode)
				}
				total[i] += res[i].PerSecond
			}
			ratio := res[1].PerSecond / res[0].PerSecond
			ratios = append(ratios, ratio)
			t.Logf("%-9s round %2d: off %6.0f/s  on %6.0f/s  on/off %.3f", mode, r+1, res[0].PerSecond, res[1].PerSecond, ratio)
		}
		slices.Sort(ratios)
		median := (ratios[(len(ratios)-1)/2] + ratios[len(ratios)/2]) / 2
		t.Logf("%-9s %d rounds of %v: off %.0f/s, on %.0f/s on average: on/off %.3f (median of the rounds %.3f)",
			mode, *rounds, *overhead, total[0]/float64(*rounds), total[1]/float64(*rounds), total[1]/total[0], median)
	}
}

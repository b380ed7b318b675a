package ago_test

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/ago"
)

// Each boundary, from either side, against a fixed clock.
func TestText(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	s, m, h, d := time.Second, time.Minute, time.Hour, 24*time.Hour
	for _, c := range []struct {
		before time.Duration // how long before now; negative: in the future
		want   string
	}{
		{0, "just now"},
		{59 * s, "just now"},
		{-59 * s, "just now"},
		{m, "1 minute ago"},
		{2*m + 30*s, "2 minutes ago"},
		{59*m + 59*s, "59 minutes ago"},
		{h, "1 hour ago"},
		{23*h + 59*m, "23 hours ago"},
		{d, "yesterday"},
		{2*d - s, "yesterday"},
		{2 * d, "2 days ago"},
		{7*d - s, "6 days ago"},
		{7 * d, "1 week ago"},
		{29 * d, "4 weeks ago"},
		{30 * d, "1 month ago"},
		{364 * d, "12 months ago"},
		{365 * d, "1 year ago"},
		{3 * 365 * d, "3 years ago"},
		{-m, "in 1 minute"},
		{-5 * h, "in 5 hours"},
		{-d, "tomorrow"},
		{-29 * d, "in 29 days"},
		{-90 * d, "in 3 months"},
		{-400 * d, "in 1 year"},
	} {
		if got := ago.Text(now.Add(-c.before), now); got != c.want {
			t.Errorf("Text(now - %v) = %q, want %q", c.before, got, c.want)
		}
	}
}

func TestExact(t *testing.T) {
	at := time.Date(2026, 12, 6, 1, 2, 3, 0, time.FixedZone("CET", 3600))
	if got, want := ago.Exact(at), "6 Dec 2026, 00:02:03 UTC"; got != want {
		t.Errorf("Exact = %q, want %q", got, want)
	}
}

// Package ago writes a moment relative to now the way people say it: "just
// now", "2 minutes ago", "yesterday", "3 weeks ago". The account page renders
// it on the server (the page runs no script) inside a <time> element that
// carries the exact time.
//
// Days are spans of 24 hours, not calendar days: the server does not know the
// reader's time zone, so "yesterday" means 24 to 48 hours ago.
package ago

import (
	"strconv"
	"time"
)

const (
	day   = 24 * time.Hour
	week  = 7 * day
	month = 30 * day
	year  = 365 * day
)

// Text is t relative to now. A moment in the future reads "in …"; less than a
// minute either way is "just now", so small clock skew between nodes does not
// show.
func Text(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return future(-d)
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return count(int(d/time.Minute), "minute") + " ago"
	case d < day:
		return count(int(d/time.Hour), "hour") + " ago"
	case d < 2*day:
		return "yesterday"
	case d < week:
		return count(int(d/day), "day") + " ago"
	case d < month:
		return count(int(d/week), "week") + " ago"
	case d < year:
		return count(int(d/month), "month") + " ago"
	}
	return count(int(d/year), "year") + " ago"
}

func future(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return "in " + count(int(d/time.Minute), "minute")
	case d < day:
		return "in " + count(int(d/time.Hour), "hour")
	case d < 2*day:
		return "tomorrow"
	case d < month:
		return "in " + count(int(d/day), "day")
	case d < year:
		return "in " + count(int(d/month), "month")
	}
	return "in " + count(int(d/year), "year")
}

// count is "1 minute", "2 minutes".
func count(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// Exact is the exact time for a title: "6 Dec 2026, 00:25:45 UTC".
func Exact(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04:05 UTC") }

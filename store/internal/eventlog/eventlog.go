// Package eventlog holds the rules of store.Audit that every backend applies
// the same way: which events are accepted and how many Events returns.
package eventlog

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/latchkey/latchkey/store"
)

// Check validates es before a backend stores them: every event has an ID, a
// Kind of 1 to store.MaxEventKind bytes and a Detail that is empty or a JSON
// object of at most store.MaxEventDetail bytes. Two events with one ID are
// store.ErrExists, as a stored event with the ID would be.
func Check(es []store.Event) error {
	seen := make(map[string]bool, len(es))
	for _, e := range es {
		switch {
		case e.ID == "":
			return fmt.Errorf("an event without an ID")
		case e.Kind == "" || len(e.Kind) > store.MaxEventKind:
			return fmt.Errorf("event %q: kind of %d bytes: want 1 to %d", e.ID, len(e.Kind), store.MaxEventKind)
		case len(e.Detail) > store.MaxEventDetail:
			return fmt.Errorf("event %q: detail of %d bytes: want at most %d", e.ID, len(e.Detail), store.MaxEventDetail)
		case e.Detail != "" && (!strings.HasPrefix(strings.TrimLeft(e.Detail, " \t\r\n"), "{") || !json.Valid([]byte(e.Detail))):
			return fmt.Errorf("event %q: detail is not a JSON object", e.ID)
		}
		if seen[e.ID] {
			return store.ErrExists
		}
		seen[e.ID] = true
	}
	return nil
}

// Limit is the most events f selects: store.DefaultEventLimit for a limit
// of 0 or less, never more than store.MaxEventLimit.
func Limit(f store.EventFilter) int {
	switch {
	case f.Limit <= 0:
		return store.DefaultEventLimit
	case f.Limit > store.MaxEventLimit:
		return store.MaxEventLimit
	}
	return f.Limit
}

// Since is the lower bound of f in Unix milliseconds: f.Since's, or the
// least int64 for the zero time (every event).
func Since(f store.EventFilter) int64 {
	if f.Since.IsZero() {
		return math.MinInt64
	}
	return f.Since.UnixMilli()
}

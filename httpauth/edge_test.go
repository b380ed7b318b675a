package httpauth_test

import (
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
)

// A typed-nil *latchkey.Error is a 500, not a panic; an absurd RetryAfter
// neither overflows nor advises waiting for years.
func TestWriteErrorEdges(t *testing.T) {
	var typedNil *latchkey.Error
	rec := httptest.NewRecorder()
	httpauth.WriteError(rec, httptest.NewRequest("GET", "/", nil), error(typedNil))
	if rec.Code != 500 {
		t.Fatalf("typed-nil error = %d, want 500", rec.Code)
	}
	for d, want := range map[time.Duration]string{time.Duration(math.MaxInt64): "86400", -time.Hour: "1"} {
		rec := httptest.NewRecorder()
		httpauth.WriteError(rec, httptest.NewRequest("POST", "/", nil), &latchkey.Error{Code: latchkey.CodeRateLimited, Message: "m", RetryAfter: d})
		if got := rec.Header().Get("Retry-After"); got != want {
			t.Fatalf("RetryAfter %v: Retry-After %q, want %q", d, got, want)
		}
	}
}

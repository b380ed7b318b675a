package httpstatus_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey/latchkey/internal/httpstatus"
)

func TestWriter(t *testing.T) {
	w := &httpstatus.Writer{ResponseWriter: httptest.NewRecorder()}
	w.WriteHeader(http.StatusEarlyHints) // informational: not the answer
	w.WriteHeader(http.StatusNoContent)
	w.WriteHeader(http.StatusTeapot) // ignored by net/http too
	if w.Status != http.StatusNoContent {
		t.Fatalf("Status = %d, want 204", w.Status)
	}
	w = &httpstatus.Writer{ResponseWriter: httptest.NewRecorder()}
	w.Write([]byte("x"))
	if w.Status != http.StatusOK {
		t.Fatalf("implicit status = %d, want 200", w.Status)
	}
	if http.NewResponseController(w) == nil {
		t.Fatal("no response controller")
	}
}

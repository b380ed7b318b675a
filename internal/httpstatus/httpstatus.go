// Package httpstatus records the status a handler answers with, for the
// request log and the HTTP metrics.
package httpstatus

import "net/http"

// Writer is an http.ResponseWriter that remembers the final status written
// through it (informational 1xx answers do not count).
type Writer struct {
	http.ResponseWriter
	// Status is the status answered; zero until the handler writes.
	Status int
}

// WriteHeader records code, if final, and passes it on.
func (w *Writer) WriteHeader(code int) {
	if w.Status == 0 && code >= 200 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and passes b on.
func (w *Writer) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (Flush, deadlines).
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

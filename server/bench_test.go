package server_test

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkProtectedHandler is GET /protected through the whole server handler
// (routing, logging, middleware, verification, JSON answer), without a network.
func BenchmarkProtectedHandler(b *testing.B) {
	e := newEnv(b)
	p := e.login("test", "test")
	h := e.handler
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("GET", "/protected", nil)
			r.Header.Set("Authorization", "Bearer "+p.access)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

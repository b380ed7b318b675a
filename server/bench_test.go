package server_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
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

// BenchmarkAuditOverhead is POST /login and POST /refresh through the whole
// handler with the audit trail off and on (kept in the SQLite store), so the
// two can be compared in one run: benchstat, or the ns/op ratio.
func BenchmarkAuditOverhead(b *testing.B) {
	for _, path := range []string{"/login", "/refresh"} {
		for _, on := range []bool{false, true} {
			name := path[1:] + "/audit=off"
			if on {
				name = path[1:] + "/audit=on"
			}
			b.Run(name, func(b *testing.B) {
				e := newEnv(b, func(s *setup) { s.audit = on })
				rt := e.login("test", "test").refresh
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					body := `{"username":"test","password":"test"}`
					if path == "/refresh" {
						body = `{"refresh_token":"` + rt + `"}`
					}
					r := httptest.NewRequest("POST", path, strings.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					e.handler.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("%s = %d %s", path, w.Code, w.Body)
					}
					if path == "/refresh" {
						var out struct {
							RefreshToken string `json:"refresh_token"`
						}
						json.Unmarshal(w.Body.Bytes(), &out)
						rt = out.RefreshToken
					}
				}
			})
		}
	}
}

package httpauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey/latchkey"
)

// BenchmarkRequireAccess is the middleware's overhead on a request with a
// valid Bearer token: finding the token, the verified-token cache, the
// revocation check and the principal in the context. "bare" is the same
// handler with no middleware, measured in the same run.
func BenchmarkRequireAccess(b *testing.B) {
	f := newFixture(b)
	tok := f.login(b)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := latchkey.FromContext(r.Context()); !ok && r.URL.Path != "/bare" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	req := httptest.NewRequest("GET", "/protected", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	for _, tc := range []struct {
		name string
		h    http.Handler
		path string
	}{{"bare", next, "/bare"}, {"RequireAccess", f.mw(b).RequireAccess(next), "/protected"}} {
		b.Run(tc.name, func(b *testing.B) {
			r := req.Clone(req.Context())
			r.URL.Path = tc.path
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				tc.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/dpop"
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
					if next := serveBench(b, e, r); next != "" {
						rt = next
					}
				}
			})
		}
	}
}

// BenchmarkDPoP compares, in one run, GET /protected with a Bearer token and
// with a DPoP-bound token plus its proof (ath included), and POST /refresh
// without and with a proof (the server's nonce included), all through the
// whole handler over the SQLite store. Proofs are made with the timer
// stopped: the figures are the server's cost. Each proof's jti is recorded
// in the store's single-use markers, so the DPoP runs include that write.
func BenchmarkDPoP(b *testing.B) {
	for _, path := range []string{"/protected", "/refresh"} {
		for _, bound := range []bool{false, true} {
			name := path[1:] + "/bearer"
			if bound {
				name = path[1:] + "/dpop"
			}
			b.Run(name, func(b *testing.B) { benchDPoP(b, path, bound) })
		}
	}
}

func benchDPoP(b *testing.B, path string, bound bool) {
	e := newEnv(b)
	key, err := dpop.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	var nonce string
	proof := func(method, path, access string) string {
		p, err := dpop.NewProof(key, dpop.Params{Method: method, URL: e.url + path, Nonce: nonce, AccessToken: access, IssuedAt: e.clock.Now()})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	var p pair
	if bound {
		nonce = e.call("POST", "/login", "", testLogin, "DPoP", proof("POST", "/login", "")).want(b, 400, "use_dpop_nonce").header.Get("DPoP-Nonce")
		r := e.call("POST", "/login", "", testLogin, "DPoP", proof("POST", "/login", "")).want(b, 200, "")
		p = pair{access: r.str("access_token"), refresh: r.str("refresh_token")}
	} else {
		p = e.login("test", "test")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var r *http.Request
		if path == "/protected" {
			r = httptest.NewRequest("GET", e.url+path, nil)
			if bound {
				b.StopTimer()
				pf := proof("GET", path, p.access)
				b.StartTimer()
				r.Header.Set("Authorization", "DPoP "+p.access)
				r.Header.Set("DPoP", pf)
			} else {
				r.Header.Set("Authorization", "Bearer "+p.access)
			}
		} else {
			r = httptest.NewRequest("POST", e.url+path, strings.NewReader(`{"refresh_token":"`+p.refresh+`"}`))
			r.Header.Set("Content-Type", "application/json")
			if bound {
				b.StopTimer()
				pf := proof("POST", path, "")
				b.StartTimer()
				r.Header.Set("DPoP", pf)
			}
		}
		if next := serveBench(b, e, r); next != "" {
			p.refresh = next
		}
	}
}

// serveBench serves r through e's handler and fails b unless the answer is
// 200; for POST /refresh it returns the new refresh token, "" otherwise.
func serveBench(b *testing.B, e *env, r *http.Request) string {
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatalf("%s %s = %d %s", r.Method, r.URL.Path, w.Code, w.Body)
	}
	if r.URL.Path != "/refresh" {
		return ""
	}
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(w.Body.Bytes(), &out) != nil || out.RefreshToken == "" {
		b.Fatalf("POST /refresh = 200 without a refresh token: %s", w.Body)
	}
	return out.RefreshToken
}

package httpauth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/httpauth"
)

// Whatever the Authorization header holds, the answer is a success or a 4xx.
func FuzzAuthorizationHeader(f *testing.F) {
	fx := newFixture(f)
	tok := fx.login(f).AccessToken
	h := fx.mw(f).RequireAccess(whoami)
	for _, s := range []string{"Bearer " + tok, "Bearer", "bearer x", "Basic abc", "Bearer a b", "Bearer " + tok[:20], "Bearer lk_rt_x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := req("GET", "/", "")
		r.Header["Authorization"] = []string{header}
		res := serve(h, r)
		if res.status >= 500 || (res.status != 200 && res.status != 401) {
			t.Fatalf("Authorization %q = %d %s", header, res.status, res.body)
		}
	})
}

// Whatever the JSON body holds, a refresh answers a success or a 4xx.
func FuzzJSONBody(f *testing.F) {
	fx := newFixture(f)
	pair := fx.login(f)
	h := fx.mw(f).RequireRefresh(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, s := range []string{`{"refresh_token":"` + pair.RefreshToken + `"}`, `{"refresh_token":1}`, `[]`, `{`, `{"access_token":"x","refresh_token":"lk_rt_"}`, strings.Repeat("{", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		res := serve(h, req("POST", "/", body, "Content-Type", "application/json"))
		if res.status >= 500 {
			t.Fatalf("body %q = %d %s", body, res.status, res.body)
		}
	})
	_ = httpauth.MaxBody
}

package httpauth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
)

// knownCodes are the codes a guard may answer with.
var knownCodes = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range errorCases {
		m[string(c.sentinel.Code)] = true
	}
	return m
}()

// checkRefusal checks that a refusal is a 4xx in the API's error shape, with a
// well-formed challenge on a 401.
func checkRefusal(t *testing.T, input string, res result) {
	t.Helper()
	if res.status < 400 || res.status >= 500 {
		t.Fatalf("%q = %d %s, want a success or a 4xx", input, res.status, res.body)
	}
	if !knownCodes[res.code] || res.msg == "" || res.status != httpauth.Status(latchkey.Code(res.code)) {
		t.Fatalf("%q = %d %s: not the API's error shape", input, res.status, res.body)
	}
	if res.status == 401 {
		if ch := res.header.Get("WWW-Authenticate"); ch != noTokenChallenge && !refusedRE.MatchString(ch) {
			t.Fatalf("%q = 401 with challenge %q", input, ch)
		}
	}
}

// Whatever the Authorization header holds, RequireAccess answers a success
// (for the one user there is) or a 4xx, and never panics.
func FuzzAuthorizationHeader(f *testing.F) {
	fx := newFixture(f)
	pair := fx.login(f)
	tok := pair.AccessToken
	h := fx.mw(f).RequireAccess(whoami)
	for _, s := range []string{
		"Bearer " + tok,
		"bearer " + tok,
		"BEARER  " + tok + "  ",
		"Bearer " + tok + "==",
		"Bearer " + tok[:20],
		"Bearer " + tamper(tok),
		"Bearer " + pair.RefreshToken,
		"Bearer lk_rt_x",
		"Bearer",
		"Bearer ",
		"Bearer a b",
		"Bearer ===",
		"Bearer a=b",
		"Bearer\t" + tok,
		"Bearer tok<script>",
		"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEifQ.",
		"Bearer \x00\r\n",
		"Basic dXNlcjpwYXNz",
		"Digest username=\"u\"",
		"",
		" ",
		"ü",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := req("GET", "/", "")
		r.Header["Authorization"] = []string{header}
		res := serve(h, r)
		if res.status == 200 {
			if res.body != "user-1" {
				t.Fatalf("Authorization %q = 200 %q, want user-1", header, res.body)
			}
			return
		}
		checkRefusal(t, header, res)
		if res.status != 401 {
			t.Fatalf("Authorization %q = %d %s, want 200 or 401", header, res.status, res.body)
		}
	})
}

// Whatever the JSON body holds, RequireRefresh answers a success (a rotated
// pair in the context) or a 4xx, and never panics.
func FuzzJSONBody(f *testing.F) {
	fx := newFixture(f)
	pair := fx.login(f)
	other := fx.login(f)
	h := fx.mw(f).RequireRefresh(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := latchkey.TokensFromContext(r.Context())
		if !ok || t.RefreshToken == "" || t.AccessToken == "" {
			http.Error(w, "no tokens in the context", 500)
			return
		}
		w.Write([]byte("rotated"))
	}))
	for _, s := range []string{
		`{"refresh_token":"` + pair.RefreshToken + `"}`,
		`{"refresh_token":"` + pair.RefreshToken + `","access_token":"` + pair.AccessToken + `"}`,
		`{"refresh_token":"` + other.RefreshToken + `","access_token":"` + pair.AccessToken + `"}`,
		`{"refresh_token":"` + tamper(pair.RefreshToken) + `"}`,
		`{"refresh_token":"` + pair.AccessToken + `"}`,
		`{"access_token":"` + pair.AccessToken + `"}`,
		`{"refresh_token":"lk_rt_"}`,
		`{"refresh_token":""}`,
		`{"refresh_token":1}`,
		`{"refresh_token":null}`,
		`{"refresh_token":"\u0000"}`,
		`{"refresh_token":"x"} {"refresh_token":"y"}`,
		`{"refresh_token":"x"}garbage`,
		`{}`,
		`[]`,
		`"lk_rt_x"`,
		`null`,
		`{`,
		"\xef\xbb\xbf{}",
		strings.Repeat("{", 100),
		strings.Repeat(`[`, 100),
		``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		res := serve(h, req("POST", "/", body, "Content-Type", "application/json"))
		if res.status == 200 {
			if res.body != "rotated" {
				t.Fatalf("body %q = 200 %q", body, res.body)
			}
			return
		}
		checkRefusal(t, body, res)
	})
}

// Whatever a message holds, WriteError's challenge stays one well-formed
// RFC 6750 header value and the body keeps the message.
func FuzzWriteErrorMessage(f *testing.F) {
	for _, s := range []string{"The token has expired.", `"`, `\`, "\r\nSet-Cookie: x=y", "ü", "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		res := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpauth.WriteError(w, r, latchkey.ErrInvalidToken.WithMessage(msg))
		}), req("GET", "/", ""))
		if msg == "" {
			msg = http.StatusText(http.StatusUnauthorized)
		}
		ch := res.header.Values("WWW-Authenticate")
		if len(ch) != 1 || !refusedRE.MatchString(ch[0]) || len(ch[0]) != len(refusedChallenge(msg)) {
			t.Fatalf("message %q gives challenge %q", msg, ch)
		}
		if want := string([]rune(msg)); res.status != 401 || res.code != "invalid_token" || res.msg != want {
			t.Fatalf("message %q gives %d %s", msg, res.status, res.body)
		}
	})
}

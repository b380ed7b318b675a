package httpauth_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/store/sqlite"
)

type fixture struct {
	auth  *latchkey.Auth
	clock *fakeclock.Clock
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "mw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	a, err := latchkey.New(context.Background(), latchkey.Config{Store: db, Secret: secret, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return &fixture{auth: a, clock: clk}
}

func (f *fixture) login(t testing.TB) *latchkey.Tokens {
	t.Helper()
	tok, err := f.auth.Login(context.Background(), "user-1", latchkey.LoginOptions{Fresh: true})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) mw(t testing.TB, locs ...httpauth.Location) *httpauth.Middleware {
	t.Helper()
	m, err := httpauth.New(httpauth.Config{Auth: f.auth, Locations: locs})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// whoami answers with the caller's user id, or "anonymous".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, ok := latchkey.FromContext(r.Context())
	if !ok {
		io.WriteString(w, "anonymous")
		return
	}
	io.WriteString(w, p.UserID)
})

type result struct {
	status int
	header http.Header
	body   string
	code   string
}

func serve(h http.Handler, r *http.Request) result {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	res := result{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	var e struct{ Error string }
	json.Unmarshal(rec.Body.Bytes(), &e)
	res.code = e.Error
	return res
}

func req(method, target, body string, hdr ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

func TestStatusOfEveryCode(t *testing.T) {
	for code, want := range map[latchkey.Code]int{
		latchkey.CodeMissingToken: 401, latchkey.CodeInvalidToken: 401, latchkey.CodeTokenExpired: 401,
		latchkey.CodeTokenRevoked: 401, latchkey.CodeWrongTokenType: 401, latchkey.CodeRefreshReused: 401,
		latchkey.CodeSessionExpired: 401, latchkey.CodeInvalidCredentials: 401, latchkey.CodeFreshTokenRequired: 403,
		latchkey.CodeCSRFFailed: 403, latchkey.CodeRateLimited: 429, latchkey.CodeInvalidRequest: 400,
		latchkey.CodeWeakPassword: 400, latchkey.CodeUsernameTaken: 409, latchkey.CodeRegistrationClosed: 403,
		latchkey.CodeNotFound: 404, latchkey.CodeMethodNotAllowed: 405, latchkey.CodeUnavailable: 503,
		latchkey.CodeInternal: 500,
	} {
		t.Run(string(code), func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpauth.WriteError(rec, req("GET", "/", ""), &latchkey.Error{Code: code, Message: "m", Err: errors.New("secret cause")})
			if rec.Code != want {
				t.Fatalf("status = %d, want %d", rec.Code, want)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != string(code) || body["message"] != "m" || len(body) != 2 {
				t.Fatalf("body = %s", rec.Body)
			}
			if strings.Contains(rec.Body.String(), "secret cause") {
				t.Fatal("the cause leaked into the body")
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("no Cache-Control: no-store")
			}
			hasChallenge := rec.Header().Get("WWW-Authenticate") != ""
			if hasChallenge != (want == 401) {
				t.Fatalf("WWW-Authenticate = %q on a %d", rec.Header().Get("WWW-Authenticate"), want)
			}
		})
	}
}

// The challenge is a valid RFC 6750 header whatever the message holds.
var challengeRE = regexp.MustCompile(`^Bearer realm="latchkey", error="invalid_token", error_description="[\x20\x21\x23-\x5B\x5D-\x7E]*"$`)

func TestChallengeCannotBeBrokenOutOf(t *testing.T) {
	for _, msg := range []string{"plain", `quote " inside`, `back\slash`, "new\r\nSet-Cookie: x=y", "ünïcode", ""} {
		rec := httptest.NewRecorder()
		httpauth.WriteError(rec, req("GET", "/", ""), latchkey.ErrTokenExpired.WithMessage(msg))
		if got := rec.Header().Get("WWW-Authenticate"); !challengeRE.MatchString(got) {
			t.Errorf("message %q gives challenge %q", msg, got)
		}
	}
	rec := httptest.NewRecorder()
	httpauth.WriteError(rec, req("GET", "/", ""), latchkey.ErrMissingToken)
	if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="latchkey"` {
		t.Errorf("missing token challenge = %q", got)
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]string{1500 * time.Millisecond: "2", 0: "1", time.Minute: "60"} {
		rec := httptest.NewRecorder()
		httpauth.WriteError(rec, req("POST", "/", ""), &latchkey.Error{Code: latchkey.CodeRateLimited, Message: "slow down", RetryAfter: d})
		if got := rec.Header().Get("Retry-After"); got != want {
			t.Errorf("RetryAfter %v: header %q, want %q", d, got, want)
		}
	}
}

func TestForeignErrorIsInternal(t *testing.T) {
	rec := httptest.NewRecorder()
	httpauth.WriteError(rec, req("GET", "/", ""), errors.New("database password is hunter2"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "hunter2") {
		t.Fatalf("foreign error = %d %s", rec.Code, rec.Body)
	}
}

func TestBearerParsing(t *testing.T) {
	f := newFixture(t)
	tok := f.login(t).AccessToken
	h := f.mw(t).RequireAccess(whoami)
	for _, tc := range []struct {
		name, header string
		status       int
		code         string
	}{
		{"canonical", "Bearer " + tok, 200, ""},
		{"lowercase scheme", "bearer " + tok, 200, ""},
		{"extra spaces", "Bearer    " + tok + "  ", 200, ""},
		{"scheme alone", "Bearer", 401, "missing_token"},
		{"other scheme", "Basic dXNlcjpwYXNz", 401, "missing_token"},
		{"two tokens", "Bearer a b", 401, "invalid_token"},
		{"bad characters", "Bearer tok<script>", 401, "invalid_token"},
		{"garbage token", "Bearer abc.def.ghi", 401, "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := serve(h, req("GET", "/", "", "Authorization", tc.header))
			if res.status != tc.status || res.code != tc.code {
				t.Fatalf("Authorization %q = %d %s", tc.header, res.status, res.body)
			}
			if tc.status == 200 && res.body != "user-1" {
				t.Fatalf("principal = %q", res.body)
			}
		})
	}
}

func TestLocations(t *testing.T) {
	f := newFixture(t)
	tok := f.login(t).AccessToken
	echoBody := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p, _ := latchkey.FromContext(r.Context())
		io.WriteString(w, p.UserID+"|"+string(b))
	})
	body := `{"access_token":"` + tok + `","other":1}`
	jsonCT := []string{"Content-Type", "application/json"}

	if res := serve(f.mw(t, httpauth.Headers).RequireAccess(echoBody), req("POST", "/", body, jsonCT...)); res.code != "missing_token" {
		t.Fatalf("JSON token accepted with headers only: %d %s", res.status, res.body)
	}
	res := serve(f.mw(t, httpauth.JSON).RequireAccess(echoBody), req("POST", "/", body, jsonCT...))
	if res.status != 200 || res.body != "user-1|"+body {
		t.Fatalf("JSON location = %d %q; the handler must see the whole body", res.status, res.body)
	}
	if res := serve(f.mw(t).RequireAccess(whoami), req("GET", "/?access_token="+tok, "")); res.code != "missing_token" {
		t.Fatalf("query token accepted while query is off: %d %s", res.status, res.body)
	}
	if res := serve(f.mw(t, httpauth.Query).RequireAccess(whoami), req("GET", "/?access_token="+tok, "")); res.status != 200 {
		t.Fatalf("query location = %d %s", res.status, res.body)
	}
}

func TestRefreshTokenSources(t *testing.T) {
	f := newFixture(t)
	pair := f.login(t)
	m := f.mw(t, httpauth.Headers, httpauth.JSON, httpauth.Query)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := latchkey.TokensFromContext(r.Context())
		httpauth.WriteJSON(w, 200, t)
	})
	h := m.RequireRefresh(next)
	// Never from the query, even with the query location on.
	if res := serve(h, req("POST", "/?refresh_token="+pair.RefreshToken, "")); res.code != "missing_token" {
		t.Fatalf("refresh from the query = %d %s", res.status, res.body)
	}
	res := serve(h, req("POST", "/", "", "Authorization", "Bearer "+pair.RefreshToken))
	if res.status != 200 {
		t.Fatalf("refresh from the header = %d %s", res.status, res.body)
	}
	var got latchkey.Tokens
	json.Unmarshal([]byte(res.body), &got)
	// Refresh in the body, access in the header: the access token is the one
	// bound and then revoked.
	res = serve(h, req("POST", "/", `{"refresh_token":"`+got.RefreshToken+`"}`, "Content-Type", "application/json", "Authorization", "Bearer "+got.AccessToken))
	if res.status != 200 {
		t.Fatalf("refresh in body + access in header = %d %s", res.status, res.body)
	}
	if _, err := f.auth.Verify(context.Background(), got.AccessToken); !errors.Is(err, latchkey.ErrTokenRevoked) {
		t.Fatalf("the access token presented with the refresh was not revoked: %v", err)
	}
}

func TestGuards(t *testing.T) {
	f := newFixture(t)
	fresh := f.login(t)
	refreshed, err := f.auth.Refresh(context.Background(), fresh.RefreshToken, latchkey.RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := f.mw(t)
	bearer := func(tok string) *http.Request { return req("POST", "/", "", "Authorization", "Bearer "+tok) }
	if res := serve(m.RequireFresh(whoami), bearer(refreshed.AccessToken)); res.status != 403 || res.code != "fresh_token_required" {
		t.Fatalf("RequireFresh(refreshed) = %d %s", res.status, res.body)
	}
	if res := serve(m.RequireFresh(whoami), bearer(fresh.AccessToken)); res.status != 200 {
		t.Fatalf("RequireFresh(login token) = %d %s", res.status, res.body)
	}
	if res := serve(m.Optional(whoami), req("GET", "/", "")); res.status != 200 || res.body != "anonymous" {
		t.Fatalf("Optional without a token = %d %s", res.status, res.body)
	}
	if res := serve(m.Optional(whoami), bearer("garbage")); res.status != 401 {
		t.Fatalf("Optional with a garbage token = %d %s", res.status, res.body)
	}
	f.clock.Add(time.Hour)
	if res := serve(m.Optional(whoami), bearer(refreshed.AccessToken)); res.code != "token_expired" {
		t.Fatalf("Optional with an expired token = %d %s", res.status, res.body)
	}
	custom, _ := httpauth.New(httpauth.Config{Auth: f.auth, ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(418)
	}})
	if res := serve(custom.RequireAccess(whoami), req("GET", "/", "")); res.status != 418 {
		t.Fatalf("custom error handler not used: %d", res.status)
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	for _, tc := range []struct {
		name, ct, body string
		allowEmpty     bool
		ok             bool
	}{
		{"plain", "application/json", `{"name":"x"}`, false, true},
		{"charset", "application/json; charset=utf-8", `{"name":"x","unknown":1}`, false, true},
		{"wrong type", "text/plain", `{"name":"x"}`, false, false},
		{"no type", "", `{"name":"x"}`, false, false},
		{"two values", "application/json", `{} {}`, false, false},
		{"trailing", "application/json", `{"name":"x"}x`, false, false},
		{"field type", "application/json", `{"name":1}`, false, false},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", 65<<10) + `"}`, false, false},
		{"empty allowed", "application/json", "", true, true},
		{"empty refused", "application/json", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b body
			err := httpauth.DecodeJSON(req("POST", "/", tc.body, "Content-Type", tc.ct), &b, tc.allowEmpty)
			if tc.ok != (err == nil) {
				t.Fatalf("DecodeJSON = %v", err)
			}
			if err != nil && (!errors.Is(err, latchkey.ErrInvalidRequest) || httpauth.AsError(err).Message == latchkey.ErrInvalidRequest.Message) {
				t.Fatalf("error %v is not invalid_request with a specific message", err)
			}
		})
	}
}

func TestParseLocations(t *testing.T) {
	if l, err := httpauth.ParseLocations([]string{"headers", "query"}); err != nil || len(l) != 2 {
		t.Fatalf("ParseLocations = %v, %v", l, err)
	}
	for _, bad := range [][]string{{}, {"smoke-signals"}, {"headers", ""}} {
		if _, err := httpauth.ParseLocations(bad); err == nil {
			t.Errorf("ParseLocations(%q) accepted", bad)
		}
	}
}

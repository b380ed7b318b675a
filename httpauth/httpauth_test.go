package httpauth_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/fakeclock"
	"github.com/latchkey/latchkey/store/sqlite"
)

// fixture is a real latchkey.Auth on a SQLite file in a temporary directory,
// with a clock the test moves.
type fixture struct {
	auth  *latchkey.Auth
	clock *fakeclock.Clock
}

func newFixture(t testing.TB, edit ...func(*latchkey.Config)) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "mw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	clk := fakeclock.New(time.Unix(1_800_000_000, 0))
	cfg := latchkey.Config{Store: db, Secret: secret, Now: clk.Now}
	for _, e := range edit {
		e(&cfg)
	}
	a, err := latchkey.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return &fixture{auth: a, clock: clk}
}

// login starts a session of user-1 with a fresh access token.
func (f *fixture) login(t testing.TB) *latchkey.Tokens {
	t.Helper()
	return f.loginAs(t, "user-1", true)
}

func (f *fixture) loginAs(t testing.TB, user string, fresh bool) *latchkey.Tokens {
	t.Helper()
	tok, err := f.auth.Login(context.Background(), user, latchkey.LoginOptions{Fresh: fresh})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) refresh(t testing.TB, rt string) *latchkey.Tokens {
	t.Helper()
	tok, err := f.auth.Refresh(context.Background(), rt, latchkey.RefreshOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mw returns a Middleware looking for tokens in locs (none: the defaults).
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

// echo answers with the caller's user id (or "anonymous"), "|" and the whole
// request body as the handler reads it.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	who := "anonymous"
	if p, ok := latchkey.FromContext(r.Context()); ok {
		who = p.UserID
	}
	io.WriteString(w, who+"|"+string(b))
})

// result is a response, with its JSON error body decoded when it has one.
type result struct {
	status int
	header http.Header
	body   string
	code   string // "error" of a JSON error body
	msg    string // "message" of a JSON error body
}

func decodeResult(status int, header http.Header, body []byte) result {
	res := result{status: status, header: header, body: string(body)}
	var e struct{ Error, Message string }
	if json.Unmarshal(body, &e) == nil {
		res.code, res.msg = e.Error, e.Message
	}
	return res
}

// serve runs h on r in memory, for fuzzing and for requests no real client
// would send.
func serve(h http.Handler, r *http.Request) result {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return decodeResult(rec.Code, rec.Header(), rec.Body.Bytes())
}

// req builds an in-memory request; hdr holds header name, value pairs.
func req(method, target, body string, hdr ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// newServer serves h over real HTTP for the rest of the test.
func newServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request to srv over the network; hdr holds header name, value pairs.
func do(t testing.TB, srv *httptest.Server, method, target, body string, hdr ...string) result {
	t.Helper()
	r, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return decodeResult(resp.StatusCode, resp.Header, b)
}

// writeError serves WriteError(err) over real HTTP and returns the response.
func writeError(t testing.TB, err error) result {
	t.Helper()
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpauth.WriteError(w, r, err)
	}))
	return do(t, srv, "GET", "/", "")
}

// tamper changes one character in the middle of tok.
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

var jsonCT = []string{"Content-Type", "application/json"}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func hdrs(lists ...[]string) []string { return slices.Concat(lists...) }

// checkErrorBody checks that res is exactly {"error": code, "message": msg},
// uncacheable and marked as JSON.
func checkErrorBody(t *testing.T, res result, code latchkey.Code, msg string) {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(res.body), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", res.body, err)
	}
	want := map[string]any{"error": string(code), "message": msg}
	if len(body) != 2 || body["error"] != want["error"] || body["message"] != want["message"] {
		t.Errorf("body = %s, want %v", res.body, want)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := res.header.Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want application/json; charset=utf-8", got)
	}
	if got := res.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
}

// The challenges of RFC 6750 §3 that WriteError may send.
const noTokenChallenge = `Bearer realm="latchkey"`

// refusedRE matches the challenge for a refused token; its group is the
// error_description, made only of the characters §3 allows in it.
var refusedRE = regexp.MustCompile(`^Bearer realm="latchkey", error="invalid_token", error_description="([\x20\x21\x23-\x5B\x5D-\x7E]*)"$`)

func refusedChallenge(desc string) string {
	return `Bearer realm="latchkey", error="invalid_token", error_description="` + desc + `"`
}

// codesInSource lists the Code constants declared in the root package's
// errors.go, so that a code added there without a row below fails the test.
func codesInSource(t *testing.T) []latchkey.Code {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "errors.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []latchkey.Code
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("Code constant %v is not a literal", vs.Names)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, latchkey.Code(s))
			}
		}
	}
	if len(codes) == 0 {
		t.Fatal("no Code constants found in ../errors.go")
	}
	return codes
}

// errorCases is every code of errors.go with its sentinel, its status, and
// whether it means a presented token was refused.
var errorCases = []struct {
	sentinel *latchkey.Error
	status   int
	refused  bool
}{
	{latchkey.ErrMissingToken, 401, false},
	{latchkey.ErrInvalidToken, 401, true},
	{latchkey.ErrTokenExpired, 401, true},
	{latchkey.ErrTokenRevoked, 401, true},
	{latchkey.ErrWrongTokenType, 401, true},
	{latchkey.ErrRefreshReused, 401, true},
	{latchkey.ErrSessionExpired, 401, true},
	{latchkey.ErrInvalidCredentials, 401, false},
	{latchkey.ErrFreshTokenRequired, 403, false},
	{latchkey.ErrCSRFFailed, 403, false},
	{latchkey.ErrRateLimited, 429, false},
	{latchkey.ErrInvalidRequest, 400, false},
	{latchkey.ErrWeakPassword, 400, false},
	{latchkey.ErrUsernameTaken, 409, false},
	{latchkey.ErrRegistrationClosed, 403, false},
	{latchkey.ErrNotFound, 404, false},
	{latchkey.ErrMethodNotAllowed, 405, false},
	{latchkey.ErrUnavailable, 503, false},
	{latchkey.ErrInternal, 500, false},
	{latchkey.ErrInvalidClient, 401, false},
	{latchkey.ErrUnauthorizedClient, 400, false},
	{latchkey.ErrInvalidDPoPProof, 400, false},
	{latchkey.ErrUseDPoPNonce, 400, false},
}

func TestErrorCasesCoverEveryCode(t *testing.T) {
	var have []latchkey.Code
	for _, c := range errorCases {
		have = append(have, c.sentinel.Code)
	}
	for _, code := range codesInSource(t) {
		if !slices.Contains(have, code) {
			t.Errorf("code %q of errors.go has no row in errorCases", code)
		}
	}
}

func TestStatus(t *testing.T) {
	for _, tc := range errorCases {
		if got := httpauth.Status(tc.sentinel.Code); got != tc.status {
			t.Errorf("Status(%q) = %d, want %d", tc.sentinel.Code, got, tc.status)
		}
	}
	if got := httpauth.Status("no_such_code"); got != 500 {
		t.Errorf("Status(unknown) = %d, want 500", got)
	}
}

func TestWriteError(t *testing.T) {
	const cause = "secret cause: db password hunter2"
	for _, tc := range errorCases {
		code := tc.sentinel.Code
		for _, v := range []struct {
			name string
			err  error
			msg  string
		}{
			{"sentinel", tc.sentinel, tc.sentinel.Message},
			{"with cause", tc.sentinel.WithCause(errors.New(cause)), tc.sentinel.Message},
			{"with message and cause", tc.sentinel.WithMessage("Custom: for " + string(code) + ".").WithCause(errors.New(cause)), "Custom: for " + string(code) + "."},
			{"wrapped", fmt.Errorf("handler: %w", tc.sentinel.WithCause(errors.New(cause))), tc.sentinel.Message},
		} {
			t.Run(string(code)+"/"+v.name, func(t *testing.T) {
				res := writeError(t, v.err)
				if res.status != tc.status {
					t.Errorf("WriteError(%v): status %d, want %d", v.err, res.status, tc.status)
				}
				checkErrorBody(t, res, code, v.msg)
				if strings.Contains(res.body, "hunter2") || strings.Contains(res.body, "handler:") {
					t.Errorf("the cause or wrapping leaked into the body: %s", res.body)
				}
				for name, vals := range res.header {
					if strings.Contains(strings.Join(vals, ","), "hunter2") {
						t.Errorf("the cause leaked into header %s", name)
					}
				}
				challenge := res.header.Values("WWW-Authenticate")
				switch {
				case tc.status != 401:
					if len(challenge) != 0 {
						t.Errorf("WWW-Authenticate = %q on a %d", challenge, tc.status)
					}
				case tc.refused:
					if want := refusedChallenge(v.msg); len(challenge) != 1 || challenge[0] != want {
						t.Errorf("WWW-Authenticate = %q, want %q", challenge, want)
					}
				default:
					if len(challenge) != 1 || challenge[0] != noTokenChallenge {
						t.Errorf("WWW-Authenticate = %q, want %q", challenge, noTokenChallenge)
					}
				}
				if got := res.header.Get("Retry-After"); (got != "") != (tc.status == 429) {
					t.Errorf("Retry-After = %q on a %d", got, tc.status)
				}
			})
		}
	}
}

func TestWriteErrorEmptyMessage(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(string(tc.sentinel.Code), func(t *testing.T) {
			res := writeError(t, &latchkey.Error{Code: tc.sentinel.Code})
			checkErrorBody(t, res, tc.sentinel.Code, http.StatusText(tc.status))
			if tc.refused && !refusedRE.MatchString(res.header.Get("WWW-Authenticate")) {
				t.Errorf("WWW-Authenticate = %q is not a valid challenge", res.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestWriteErrorForeign(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"plain", errors.New("database password is hunter2")},
		{"wrapped plain", fmt.Errorf("query: %w", errors.New("hunter2"))},
		{"context", fmt.Errorf("hunter2: %w", context.DeadlineExceeded)},
		{"nil", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := writeError(t, tc.err)
			if res.status != 500 {
				t.Errorf("WriteError(%v): status %d, want 500", tc.err, res.status)
			}
			checkErrorBody(t, res, latchkey.CodeInternal, latchkey.ErrInternal.Message)
			if strings.Contains(res.body, "hunter2") {
				t.Errorf("err.Error() leaked into the body: %s", res.body)
			}
			if res.header.Get("WWW-Authenticate") != "" {
				t.Errorf("WWW-Authenticate on a 500")
			}
			if e := httpauth.AsError(tc.err); !errors.Is(e, latchkey.ErrInternal) || e.Err != tc.err {
				t.Errorf("AsError(%v) = %#v, want internal_error caused by it", tc.err, e)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		after time.Duration
		want  string
	}{
		{0, "1"},
		{-5 * time.Second, "1"},
		{time.Nanosecond, "1"},
		{999 * time.Millisecond, "1"},
		{time.Second, "1"},
		{time.Second + time.Nanosecond, "2"},
		{1500 * time.Millisecond, "2"},
		{time.Minute, "60"},
		{90*time.Minute + 1, "5401"},
	} {
		t.Run(tc.after.String(), func(t *testing.T) {
			err := latchkey.ErrRateLimited.WithCause(errors.New("bucket empty"))
			err.RetryAfter = tc.after
			res := writeError(t, err)
			if res.status != 429 {
				t.Fatalf("status = %d, want 429", res.status)
			}
			if got := res.header.Values("Retry-After"); len(got) != 1 || got[0] != tc.want {
				t.Errorf("RetryAfter %v: Retry-After %q, want %q", tc.after, got, tc.want)
			}
			checkErrorBody(t, res, latchkey.CodeRateLimited, latchkey.ErrRateLimited.Message)
		})
	}
	// RetryAfter means nothing on another code.
	e := latchkey.ErrUnavailable.WithMessage("later")
	e.RetryAfter = time.Minute
	if got := writeError(t, e).header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After %q on unavailable", got)
	}
}

// Whatever the message holds, the challenge stays one RFC 6750 header: a
// quoted-string of allowed characters, nothing escaping it, while the JSON body
// keeps the message as it is.
func TestChallengeCannotBeBrokenOutOf(t *testing.T) {
	for _, tc := range []struct {
		name, msg, desc string
	}{
		{"plain", "The token has expired.", "The token has expired."},
		{"allowed punctuation", "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~z", "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~z"},
		{"quote", `say "hi"`, `say 'hi'`},
		{"closing quote and attribute", `x", error="insufficient_scope`, `x', error='insufficient_scope`},
		{"backslash", `back\slash\`, `back'slash'`},
		{"CRLF", "a\r\nSet-Cookie: stolen=1", "a??Set-Cookie: stolen=1"},
		{"LF", "a\nX-Injected: 1", "a?X-Injected: 1"},
		{"CR", "a\rX-Injected: 1", "a?X-Injected: 1"},
		{"NUL tab DEL", "a\x00b\tc\x7fd", "a?b?c?d"},
		{"non-ASCII", "ünï", "??n??"},
		{"invalid UTF-8", "a\xffb", "a?b"},
		{"empty", "", "Unauthorized"}, // the body and the challenge both fall back to the status text
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := writeError(t, latchkey.ErrTokenExpired.WithMessage(tc.msg))
			got := res.header.Values("WWW-Authenticate")
			if len(got) != 1 {
				t.Fatalf("message %q: %d WWW-Authenticate headers %q, want 1", tc.msg, len(got), got)
			}
			m := refusedRE.FindStringSubmatch(got[0])
			if m == nil {
				t.Fatalf("message %q gives challenge %q, not an RFC 6750 quoted-string", tc.msg, got[0])
			}
			if m[1] != tc.desc {
				t.Errorf("message %q: error_description %q, want %q", tc.msg, m[1], tc.desc)
			}
			for _, h := range []string{"Set-Cookie", "X-Injected"} {
				if v := res.header.Get(h); v != "" {
					t.Errorf("message %q injected %s: %q", tc.msg, h, v)
				}
			}
			// JSON replaces each byte of invalid UTF-8 with U+FFFD, as []rune
			// does; an empty message becomes the status text.
			want := string([]rune(tc.msg))
			if want == "" {
				want = http.StatusText(http.StatusUnauthorized)
			}
			if res.msg != want {
				t.Errorf("message %q: body message %q, want %q", tc.msg, res.msg, want)
			}
		})
	}
}

func TestBearerParsing(t *testing.T) {
	f := newFixture(t)
	pair := f.login(t)
	tok := pair.AccessToken
	m := f.mw(t)
	srv := newServer(t, m.RequireAccess(whoami))
	for _, tc := range []struct {
		name, header string
		code         latchkey.Code // "" for success
	}{
		{"canonical", "Bearer " + tok, ""},
		{"lower-case scheme", "bearer " + tok, ""},
		{"upper-case scheme", "BEARER " + tok, ""},
		{"extra spaces", "Bearer    " + tok + "   ", ""},
		{"leading spaces", "   Bearer " + tok, ""},
		{"scheme alone", "Bearer", latchkey.CodeMissingToken},
		{"scheme and spaces", "Bearer    ", latchkey.CodeMissingToken},
		{"basic", "Basic dXNlcjpwYXNz", latchkey.CodeMissingToken},
		{"digest", `Digest username="u", realm="r"`, latchkey.CodeMissingToken},
		{"scheme prefix", "Bearerx " + tok, latchkey.CodeMissingToken},
		// RFC 7235 separates scheme and credentials with SP only: a tab makes
		// another (unknown) scheme, not ours to judge.
		{"tab separator", "Bearer\t" + tok, latchkey.CodeMissingToken},
		{"two tokens", "Bearer a b", latchkey.CodeInvalidToken},
		{"token then garbage", "Bearer " + tok + " x", latchkey.CodeInvalidToken},
		{"angle brackets", "Bearer tok<script>", latchkey.CodeInvalidToken},
		{"comma", "Bearer a,b", latchkey.CodeInvalidToken},
		{"quote", `Bearer "` + tok + `"`, latchkey.CodeInvalidToken},
		{"auth-param", `Bearer token="` + tok + `"`, latchkey.CodeInvalidToken},
		{"equals inside", "Bearer a=b", latchkey.CodeInvalidToken},
		{"padding only", "Bearer ===", latchkey.CodeInvalidToken},
		{"non-ASCII", "Bearer tökén", latchkey.CodeInvalidToken},
		{"well-formed garbage", "Bearer abc.def.ghi", latchkey.CodeInvalidToken},
		{"padded token68", "Bearer abc.def.ghi==", latchkey.CodeInvalidToken},
		{"truncated token", "Bearer " + tok[:len(tok)-3], latchkey.CodeInvalidToken},
		{"refresh token", "Bearer " + pair.RefreshToken, latchkey.CodeWrongTokenType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, srv, "GET", "/", "", "Authorization", tc.header)
			wwwAuth := res.header.Get("WWW-Authenticate")
			switch tc.code {
			case "":
				if res.status != 200 || res.body != "user-1" {
					t.Errorf("Authorization %q = %d %s, want 200 user-1", tc.header, res.status, res.body)
				}
				if wwwAuth != "" {
					t.Errorf("WWW-Authenticate %q on a success", wwwAuth)
				}
			case latchkey.CodeMissingToken:
				if res.status != 401 || res.code != string(tc.code) || wwwAuth != noTokenChallenge {
					t.Errorf("Authorization %q = %d %s (WWW-Authenticate %q), want 401 %s", tc.header, res.status, res.body, wwwAuth, tc.code)
				}
			default:
				if res.status != 401 || res.code != string(tc.code) || wwwAuth != refusedChallenge(res.msg) {
					t.Errorf("Authorization %q = %d %s (WWW-Authenticate %q), want 401 %s", tc.header, res.status, res.body, wwwAuth, tc.code)
				}
			}
			// Authenticate agrees, and writes nothing.
			r := req("GET", "/", "", "Authorization", tc.header)
			p, err := m.Authenticate(r)
			if tc.code == "" {
				if err != nil || p.UserID != "user-1" || p.SessionID != pair.SessionID {
					t.Errorf("Authenticate(%q) = %+v, %v", tc.header, p, err)
				}
			} else if !errors.Is(err, &latchkey.Error{Code: tc.code}) {
				t.Errorf("Authenticate(%q) = %v, want %s", tc.header, err, tc.code)
			}
		})
	}
	t.Run("no header", func(t *testing.T) {
		res := do(t, srv, "GET", "/", "")
		if res.status != 401 || res.code != "missing_token" || res.header.Get("WWW-Authenticate") != noTokenChallenge {
			t.Errorf("no Authorization = %d %s %q", res.status, res.body, res.header.Get("WWW-Authenticate"))
		}
		checkErrorBody(t, res, latchkey.CodeMissingToken, "An access token is required.")
	})
}

func TestLocations(t *testing.T) {
	f := newFixture(t)
	pair := f.login(t)
	tok := pair.AccessToken
	other := f.loginAs(t, "user-2", false).AccessToken
	body := `{"access_token":"` + tok + `","other":1}`
	secureCookie := "__Host-" + httpauth.AccessCookie + "=" + tok
	for _, tc := range []struct {
		name   string
		locs   []httpauth.Location
		method string
		target string
		body   string
		hdr    []string
		code   latchkey.Code // "" for success
		who    string        // on success
	}{
		{"headers only ignores JSON", []httpauth.Location{httpauth.Headers}, "POST", "/", body, jsonCT, latchkey.CodeMissingToken, ""},
		{"JSON body", []httpauth.Location{httpauth.JSON}, "POST", "/", body, jsonCT, "", "user-1"},
		{"JSON with charset", []httpauth.Location{httpauth.JSON}, "POST", "/", body, []string{"Content-Type", "application/json; charset=utf-8"}, "", "user-1"},
		{"JSON is a default", nil, "POST", "/", body, jsonCT, "", "user-1"},
		{"JSON needs its media type", []httpauth.Location{httpauth.JSON}, "POST", "/", body, []string{"Content-Type", "text/plain"}, latchkey.CodeMissingToken, ""},
		{"JSON without a media type", []httpauth.Location{httpauth.JSON}, "POST", "/", body, nil, latchkey.CodeMissingToken, ""},
		{"JSON array is the handler's", []httpauth.Location{httpauth.JSON}, "POST", "/", `["` + tok + `"]`, jsonCT, latchkey.CodeMissingToken, ""},
		{"JSON without the field", []httpauth.Location{httpauth.JSON}, "POST", "/", `{"name":"x"}`, jsonCT, latchkey.CodeMissingToken, ""},
		{"JSON field of the wrong type", []httpauth.Location{httpauth.JSON}, "POST", "/", `{"access_token":1}`, jsonCT, latchkey.CodeInvalidRequest, ""},
		{"JSON broken", []httpauth.Location{httpauth.JSON}, "POST", "/", `{"access_token":`, jsonCT, latchkey.CodeInvalidRequest, ""},
		{"JSON two values", []httpauth.Location{httpauth.JSON}, "POST", "/", body + body, jsonCT, latchkey.CodeInvalidRequest, ""},
		{"JSON garbage token", []httpauth.Location{httpauth.JSON}, "POST", "/", `{"access_token":"x y"}`, jsonCT, latchkey.CodeInvalidToken, ""},
		{"query", []httpauth.Location{httpauth.Query}, "GET", "/?access_token=" + tok, "", nil, "", "user-1"},
		{"query off by default", nil, "GET", "/?access_token=" + tok, "", nil, latchkey.CodeMissingToken, ""},
		{"query not enabled", []httpauth.Location{httpauth.Headers, httpauth.JSON, httpauth.Cookies}, "GET", "/?access_token=" + tok, "", nil, latchkey.CodeMissingToken, ""},
		{"query empty", []httpauth.Location{httpauth.Query}, "GET", "/?access_token=", "", nil, latchkey.CodeMissingToken, ""},
		{"query with a refresh token", []httpauth.Location{httpauth.Query}, "GET", "/?access_token=" + pair.RefreshToken, "", nil, latchkey.CodeWrongTokenType, ""},
		{"cookie", nil, "GET", "/", "", []string{"Cookie", secureCookie}, "", "user-1"},
		{"cookie not enabled", []httpauth.Location{httpauth.Headers}, "GET", "/", "", []string{"Cookie", secureCookie}, latchkey.CodeMissingToken, ""},
		{"cookie without its prefix", nil, "GET", "/", "", []string{"Cookie", httpauth.AccessCookie + "=" + tok}, latchkey.CodeMissingToken, ""},
		{"cookie on an unsafe request needs CSRF", nil, "POST", "/", "", []string{"Cookie", secureCookie}, latchkey.CodeCSRFFailed, ""},
		{"header before JSON", []httpauth.Location{httpauth.Headers, httpauth.JSON}, "POST", "/", body, hdrs(jsonCT, bearer(other)), "", "user-2"},
		{"JSON before header", []httpauth.Location{httpauth.JSON, httpauth.Headers}, "POST", "/", body, hdrs(jsonCT, bearer(other)), "", "user-1"},
		{"bad header is not skipped", []httpauth.Location{httpauth.Headers, httpauth.JSON}, "POST", "/", body, hdrs(jsonCT, bearer("garbage")), latchkey.CodeInvalidToken, ""},
		{"header before query", []httpauth.Location{httpauth.Headers, httpauth.Query}, "GET", "/?access_token=" + tok, "", bearer(other), "", "user-2"},
		{"header before cookie", nil, "GET", "/", "", hdrs(bearer(other), []string{"Cookie", secureCookie}), "", "user-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, f.mw(t, tc.locs...).RequireAccess(echo))
			res := do(t, srv, tc.method, tc.target, tc.body, tc.hdr...)
			if tc.code != "" {
				if res.status != httpauth.Status(tc.code) || res.code != string(tc.code) {
					t.Fatalf("%s %s = %d %s, want %d %s", tc.method, tc.target, res.status, res.body, httpauth.Status(tc.code), tc.code)
				}
				return
			}
			// The handler sees the whole body, even when the token came from it.
			if want := tc.who + "|" + tc.body; res.status != 200 || res.body != want {
				t.Fatalf("%s %s = %d %q, want 200 %q", tc.method, tc.target, res.status, res.body, want)
			}
		})
	}
}

// A body the middleware has read is still the handler's, whole, to read and
// to decode, as many times as it likes.
func TestBodyRestored(t *testing.T) {
	f := newFixture(t)
	tok := f.login(t).AccessToken
	type payload struct {
		AccessToken string `json:"access_token"`
		Data        string `json:"data"`
	}
	decodeTwice := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a, b payload
		if err := httpauth.DecodeJSON(r, &a, false); err != nil {
			httpauth.WriteError(w, r, err)
			return
		}
		raw, _ := io.ReadAll(r.Body) // DecodeJSON puts the body back, whole
		if err := httpauth.DecodeJSON(r, &b, false); err != nil {
			httpauth.WriteError(w, r, err)
			return
		}
		fmt.Fprintf(w, "%d|%d|%t|%s", len(a.Data), len(b.Data), a == b, raw)
	})
	m := f.mw(t, httpauth.JSON)
	for _, tc := range []struct {
		name  string
		guard func(http.Handler) http.Handler
		body  string
		want  string
	}{
		{"RequireAccess token in body", m.RequireAccess, `{"access_token":"` + tok + `","data":"abc"}`, "3|3|true|"},
		{"Optional without a token", m.Optional, `{"data":"abcd"}`, "4|4|true|"},
		{"Optional non-object", m.Optional, `"just a string"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.guard(decodeTwice))
			res := do(t, srv, "POST", "/", tc.body, jsonCT...)
			if tc.want == "" {
				// A JSON string is not an object: the handler's DecodeJSON refuses it.
				if res.status != 400 || res.code != "invalid_request" {
					t.Errorf("body %s = %d %s, want 400 invalid_request from the handler", tc.body, res.status, res.body)
				}
				return
			}
			if want := tc.want + tc.body; res.status != 200 || res.body != want {
				t.Errorf("body %s = %d %q, want 200 %q", tc.body, res.status, res.body, want)
			}
		})
	}
	// Right at the limit the body is read and restored; one byte over, the
	// middleware refuses it instead of truncating it.
	srv := newServer(t, m.RequireAccess(echo))
	prefix := `{"access_token":"` + tok + `","data":"`
	atLimit := prefix + strings.Repeat("a", httpauth.MaxBody-len(prefix)-2) + `"}`
	res := do(t, srv, "POST", "/", atLimit, jsonCT...)
	if res.status != 200 || res.body != "user-1|"+atLimit {
		t.Errorf("a %d-byte body = %d, %d bytes", len(atLimit), res.status, len(res.body))
	}
	overLimit := prefix + strings.Repeat("a", httpauth.MaxBody-len(prefix)-1) + `"}`
	res = do(t, srv, "POST", "/", overLimit, jsonCT...)
	if res.status != 400 || res.code != "invalid_request" || !strings.Contains(res.msg, "64 KiB") {
		t.Errorf("a %d-byte body = %d %s, want 400 invalid_request about 64 KiB", len(overLimit), res.status, res.body)
	}
}

func TestRefreshTokenPrecedence(t *testing.T) {
	f := newFixture(t)
	a := f.login(t)
	b := f.loginAs(t, "user-2", false)
	all := []httpauth.Location{httpauth.Headers, httpauth.JSON, httpauth.Cookies, httpauth.Query}
	refreshCookie := []string{"Cookie", "__Host-" + httpauth.RefreshCookie + "=" + b.RefreshToken + "; __Host-" + httpauth.AccessCookie + "=" + b.AccessToken}
	js := func(fields ...string) string {
		o := map[string]string{}
		for i := 0; i+1 < len(fields); i += 2 {
			o[fields[i]] = fields[i+1]
		}
		out, _ := json.Marshal(o)
		return string(out)
	}
	for _, tc := range []struct {
		name                   string
		locs                   []httpauth.Location
		target, body           string
		hdr                    []string
		wantRefresh, wantAcces string
	}{
		{"header", all, "/", "", bearer(a.RefreshToken), a.RefreshToken, ""},
		{"header refresh, JSON access", all, "/", js("access_token", a.AccessToken), hdrs(jsonCT, bearer(a.RefreshToken)), a.RefreshToken, a.AccessToken},
		{"JSON", all, "/", js("refresh_token", a.RefreshToken), jsonCT, a.RefreshToken, ""},
		{"JSON refresh, header access", all, "/", js("refresh_token", a.RefreshToken), hdrs(jsonCT, bearer(a.AccessToken)), a.RefreshToken, a.AccessToken},
		{"JSON refresh and access beat header access", all, "/", js("refresh_token", a.RefreshToken, "access_token", a.AccessToken), hdrs(jsonCT, bearer(b.AccessToken)), a.RefreshToken, a.AccessToken},
		{"header refresh beats JSON refresh", all, "/", js("refresh_token", b.RefreshToken, "access_token", b.AccessToken), hdrs(jsonCT, bearer(a.RefreshToken)), a.RefreshToken, b.AccessToken},
		{"header access alone is what is presented", all, "/", "", bearer(a.AccessToken), a.AccessToken, ""},
		{"never from the query", all, "/?refresh_token=" + a.RefreshToken, "", nil, "", ""},
		{"not even as access_token", all, "/?access_token=" + a.RefreshToken, "", nil, "", ""},
		{"cookie", all, "/", "", refreshCookie, b.RefreshToken, b.AccessToken},
		{"header beats cookie", all, "/", "", hdrs(refreshCookie, bearer(a.RefreshToken)), a.RefreshToken, ""},
		{"JSON beats cookie", all, "/", js("refresh_token", a.RefreshToken), hdrs(refreshCookie, jsonCT), a.RefreshToken, ""},
		{"headers off", []httpauth.Location{httpauth.JSON}, "/", "", bearer(a.RefreshToken), "", ""},
		{"JSON off", []httpauth.Location{httpauth.Headers}, "/", js("refresh_token", a.RefreshToken), jsonCT, "", ""},
		{"cookies off", []httpauth.Location{httpauth.Headers, httpauth.JSON}, "/", "", refreshCookie, "", ""},
		{"JSON needs its media type", all, "/", js("refresh_token", a.RefreshToken), []string{"Content-Type", "text/plain"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, at, err := f.mw(t, tc.locs...).RefreshToken(req("POST", tc.target, tc.body, tc.hdr...))
			if err != nil || rt != tc.wantRefresh || at != tc.wantAcces {
				t.Errorf("RefreshToken = %.20q, %.20q, %v; want %.20q, %.20q", rt, at, err, tc.wantRefresh, tc.wantAcces)
			}
		})
	}
	t.Run("malformed header", func(t *testing.T) {
		_, _, err := f.mw(t).RefreshToken(req("POST", "/", js("refresh_token", a.RefreshToken), hdrs(jsonCT, []string{"Authorization", "Bearer a b"})...))
		if !errors.Is(err, latchkey.ErrInvalidToken) {
			t.Errorf("RefreshToken with a malformed header: %v, want invalid_token", err)
		}
	})
}

func TestRequireRefresh(t *testing.T) {
	tokensOut := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := latchkey.TokensFromContext(r.Context())
		if !ok {
			http.Error(w, "no tokens in context", 500)
			return
		}
		if _, ok := latchkey.FromContext(r.Context()); ok {
			http.Error(w, "a principal in a refresh context", 500)
			return
		}
		httpauth.WriteJSON(w, 200, t)
	})
	call := func(t *testing.T, srv *httptest.Server, target, body string, hdr ...string) (result, latchkey.Tokens) {
		t.Helper()
		res := do(t, srv, "POST", target, body, hdr...)
		var got latchkey.Tokens
		if res.status == 200 {
			if err := json.Unmarshal([]byte(res.body), &got); err != nil {
				t.Fatal(err)
			}
		}
		return res, got
	}

	t.Run("sources", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			body func(p *latchkey.Tokens) string
			hdr  func(p *latchkey.Tokens) []string
			code latchkey.Code
		}{
			{"header", func(*latchkey.Tokens) string { return "" }, func(p *latchkey.Tokens) []string { return bearer(p.RefreshToken) }, ""},
			{"lower-case scheme", func(*latchkey.Tokens) string { return "" }, func(p *latchkey.Tokens) []string { return []string{"Authorization", "bearer " + p.RefreshToken} }, ""},
			{"JSON", func(p *latchkey.Tokens) string { return `{"refresh_token":"` + p.RefreshToken + `"}` }, func(*latchkey.Tokens) []string { return jsonCT }, ""},
			{"nothing", func(*latchkey.Tokens) string { return "" }, func(*latchkey.Tokens) []string { return nil }, latchkey.CodeMissingToken},
			{"empty JSON", func(*latchkey.Tokens) string { return "{}" }, func(*latchkey.Tokens) []string { return jsonCT }, latchkey.CodeMissingToken},
			{"access token", func(*latchkey.Tokens) string { return "" }, func(p *latchkey.Tokens) []string { return bearer(p.AccessToken) }, latchkey.CodeWrongTokenType},
			{"forged", func(*latchkey.Tokens) string { return "" }, func(p *latchkey.Tokens) []string { return bearer(tamper(p.RefreshToken)) }, latchkey.CodeInvalidToken},
			{"JSON refresh of the wrong type", func(*latchkey.Tokens) string { return `{"refresh_token":7}` }, func(*latchkey.Tokens) []string { return jsonCT }, latchkey.CodeInvalidRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				p := f.login(t)
				srv := newServer(t, f.mw(t, httpauth.Headers, httpauth.JSON, httpauth.Query).RequireRefresh(tokensOut))
				res, got := call(t, srv, "/", tc.body(p), tc.hdr(p)...)
				if tc.code != "" {
					if res.status != httpauth.Status(tc.code) || res.code != string(tc.code) {
						t.Fatalf("= %d %s, want %s", res.status, res.body, tc.code)
					}
					return
				}
				if res.status != 200 || got.SessionID != p.SessionID || got.RefreshToken == "" || got.RefreshToken == p.RefreshToken {
					t.Fatalf("= %d %s, want a rotated pair of session %s", res.status, res.body, p.SessionID)
				}
				if pr, err := f.auth.Verify(context.Background(), got.AccessToken); err != nil || pr.Fresh {
					t.Errorf("the new access token: %+v, %v; want valid and not fresh", pr, err)
				}
				if res.header.Get("Cache-Control") != "no-store" {
					t.Errorf("a token response without Cache-Control: no-store")
				}
			})
		}
	})

	t.Run("never from the query", func(t *testing.T) {
		f := newFixture(t)
		p := f.login(t)
		srv := newServer(t, f.mw(t, httpauth.Headers, httpauth.JSON, httpauth.Query).RequireRefresh(tokensOut))
		for _, q := range []string{"refresh_token", "access_token"} {
			res, _ := call(t, srv, "/?"+q+"="+p.RefreshToken, "")
			if res.status != 401 || res.code != "missing_token" || res.msg != "A refresh token is required." {
				t.Errorf("?%s=<refresh token> = %d %s, want 401 missing_token", q, res.status, res.body)
			}
		}
	})

	// The access token presented with the refresh token is the one bound to
	// it: checked against the session, then revoked.
	t.Run("binding", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			bind bool
			req  func(p, other *latchkey.Tokens) (string, []string)
			code latchkey.Code
		}{
			{"JSON refresh, header access", false, func(p, _ *latchkey.Tokens) (string, []string) {
				return `{"refresh_token":"` + p.RefreshToken + `"}`, hdrs(jsonCT, bearer(p.AccessToken))
			}, ""},
			{"header refresh, JSON access", false, func(p, _ *latchkey.Tokens) (string, []string) {
				return `{"access_token":"` + p.AccessToken + `"}`, hdrs(jsonCT, bearer(p.RefreshToken))
			}, ""},
			{"both in JSON", false, func(p, _ *latchkey.Tokens) (string, []string) {
				return `{"refresh_token":"` + p.RefreshToken + `","access_token":"` + p.AccessToken + `"}`, jsonCT
			}, ""},
			{"bound, JSON refresh, header access", true, func(p, _ *latchkey.Tokens) (string, []string) {
				return `{"refresh_token":"` + p.RefreshToken + `"}`, hdrs(jsonCT, bearer(p.AccessToken))
			}, ""},
			{"bound, no access token", true, func(p, _ *latchkey.Tokens) (string, []string) {
				return `{"refresh_token":"` + p.RefreshToken + `"}`, jsonCT
			}, latchkey.CodeMissingToken},
			{"another session's access token", false, func(p, other *latchkey.Tokens) (string, []string) {
				return `{"refresh_token":"` + p.RefreshToken + `"}`, hdrs(jsonCT, bearer(other.AccessToken))
			}, latchkey.CodeInvalidToken},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t, func(c *latchkey.Config) { c.BindAccess = tc.bind })
				p, other := f.login(t), f.login(t)
				srv := newServer(t, f.mw(t).RequireRefresh(tokensOut))
				body, hdr := tc.req(p, other)
				res, got := call(t, srv, "/", body, hdr...)
				if tc.code != "" {
					if res.status != 401 || res.code != string(tc.code) {
						t.Fatalf("= %d %s, want 401 %s", res.status, res.body, tc.code)
					}
					if _, err := f.auth.Verify(context.Background(), p.AccessToken); err != nil {
						t.Errorf("a refused refresh revoked the access token: %v", err)
					}
					return
				}
				if res.status != 200 || got.SessionID != p.SessionID {
					t.Fatalf("= %d %s", res.status, res.body)
				}
				if _, err := f.auth.Verify(context.Background(), p.AccessToken); !errors.Is(err, latchkey.ErrTokenRevoked) {
					t.Errorf("the access token presented with the refresh: Verify = %v, want token_revoked", err)
				}
			})
		}
	})

	t.Run("reuse", func(t *testing.T) {
		f := newFixture(t)
		p := f.login(t)
		srv := newServer(t, f.mw(t).RequireRefresh(tokensOut))
		_, first := call(t, srv, "/", "", bearer(p.RefreshToken)...)
		// Within the grace window the same token yields the same successor.
		res, again := call(t, srv, "/", "", bearer(p.RefreshToken)...)
		if res.status != 200 || again.RefreshToken != first.RefreshToken {
			t.Fatalf("replay within the grace window = %d %s", res.status, res.body)
		}
		f.clock.Add(time.Minute)
		res, _ = call(t, srv, "/", "", bearer(p.RefreshToken)...)
		if res.status != 401 || res.code != "refresh_reused" || res.header.Get("WWW-Authenticate") != refusedChallenge(latchkey.ErrRefreshReused.Message) {
			t.Fatalf("replay after the grace window = %d %s %q", res.status, res.body, res.header.Get("WWW-Authenticate"))
		}
		if res, _ = call(t, srv, "/", "", bearer(first.RefreshToken)...); res.code != "refresh_reused" {
			t.Errorf("the successor after reuse = %d %s, want refresh_reused (session revoked)", res.status, res.body)
		}
	})
}

func TestGuards(t *testing.T) {
	f := newFixture(t)
	fresh := f.login(t)
	stale := f.loginAs(t, "user-3", false)
	refreshed := f.refresh(t, f.login(t).RefreshToken)
	loggedOut := f.login(t)
	if err := f.auth.Logout(context.Background(), latchkey.Principal{SessionID: loggedOut.SessionID}, latchkey.LogoutLocal); err != nil {
		t.Fatal(err)
	}
	expiring := f.login(t)
	m := f.mw(t)

	// principal reports the caller the guard put in the context, and counts
	// its calls (atomically: the server runs it on another goroutine).
	var calls atomic.Int32
	principal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		p, ok := latchkey.FromContext(r.Context())
		if !ok {
			io.WriteString(w, "anonymous|")
			return
		}
		io.WriteString(w, p.UserID+"|"+p.SessionID)
	})
	guards := map[string]http.Handler{
		"RequireAccess": m.RequireAccess(principal),
		"RequireFresh":  m.RequireFresh(principal),
		"Optional":      m.Optional(principal),
	}
	for _, tc := range []struct {
		name, guard, token string
		code               latchkey.Code // "" for success
		who                string
		wantSession        string
	}{
		{"access: valid", "RequireAccess", fresh.AccessToken, "", "user-1", fresh.SessionID},
		{"access: refreshed", "RequireAccess", refreshed.AccessToken, "", "user-1", refreshed.SessionID},
		{"access: none", "RequireAccess", "", latchkey.CodeMissingToken, "", ""},
		{"access: garbage", "RequireAccess", "garbage", latchkey.CodeInvalidToken, "", ""},
		{"access: logged out", "RequireAccess", loggedOut.AccessToken, latchkey.CodeTokenRevoked, "", ""},
		{"fresh: login token", "RequireFresh", fresh.AccessToken, "", "user-1", fresh.SessionID},
		{"fresh: refreshed token", "RequireFresh", refreshed.AccessToken, latchkey.CodeFreshTokenRequired, "", ""},
		{"fresh: login without Fresh", "RequireFresh", stale.AccessToken, latchkey.CodeFreshTokenRequired, "", ""},
		{"fresh: none", "RequireFresh", "", latchkey.CodeMissingToken, "", ""},
		{"fresh: garbage", "RequireFresh", "garbage", latchkey.CodeInvalidToken, "", ""},
		{"optional: none", "Optional", "", "", "anonymous", ""},
		{"optional: valid", "Optional", refreshed.AccessToken, "", "user-1", refreshed.SessionID},
		{"optional: garbage", "Optional", "garbage", latchkey.CodeInvalidToken, "", ""},
		{"optional: refresh token", "Optional", fresh.RefreshToken, latchkey.CodeWrongTokenType, "", ""},
		{"optional: logged out", "Optional", loggedOut.AccessToken, latchkey.CodeTokenRevoked, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, guards[tc.guard])
			var hdr []string
			if tc.token != "" {
				hdr = bearer(tc.token)
			}
			calls.Store(0)
			res := do(t, srv, "POST", "/", "", hdr...)
			if tc.code != "" {
				if res.status != httpauth.Status(tc.code) || res.code != string(tc.code) {
					t.Fatalf("%s = %d %s, want %d %s", tc.guard, res.status, res.body, httpauth.Status(tc.code), tc.code)
				}
				if calls.Load() != 0 {
					t.Errorf("%s called the handler after refusing", tc.guard)
				}
				if tc.code == latchkey.CodeFreshTokenRequired && res.header.Get("WWW-Authenticate") != "" {
					t.Errorf("a 403 with WWW-Authenticate %q", res.header.Get("WWW-Authenticate"))
				}
				return
			}
			if want := tc.who + "|" + tc.wantSession; res.status != 200 || res.body != want || calls.Load() != 1 {
				t.Fatalf("%s = %d %q (%d calls), want 200 %q once", tc.guard, res.status, res.body, calls.Load(), want)
			}
		})
	}

	// Once expired, a token is an error even where none is needed.
	f.clock.Add(latchkey.DefaultAccessTTL + time.Second)
	for name, h := range guards {
		t.Run("expired/"+name, func(t *testing.T) {
			res := do(t, newServer(t, h), "GET", "/", "", bearer(expiring.AccessToken)...)
			if res.status != 401 || res.code != "token_expired" || !refusedRE.MatchString(res.header.Get("WWW-Authenticate")) {
				t.Errorf("%s with an expired token = %d %s %q", name, res.status, res.body, res.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestErrorHandler(t *testing.T) {
	f := newFixture(t)
	refreshed := f.refresh(t, f.login(t).RefreshToken)
	errs := make(chan error, 1) // the handler runs on the server's goroutine
	m, err := httpauth.New(httpauth.Config{Auth: f.auth, ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
		errs <- err
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "custom")
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		guard func(http.Handler) http.Handler
		hdr   []string
		want  *latchkey.Error
	}{
		{"RequireAccess", m.RequireAccess, nil, latchkey.ErrMissingToken},
		{"RequireFresh", m.RequireFresh, bearer(refreshed.AccessToken), latchkey.ErrFreshTokenRequired},
		{"Optional", m.Optional, bearer("garbage"), latchkey.ErrInvalidToken},
		{"RequireRefresh", m.RequireRefresh, bearer("lk_rt_forged"), latchkey.ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, newServer(t, tc.guard(whoami)), "POST", "/", "", tc.hdr...)
			if res.status != http.StatusTeapot || res.body != "custom" {
				t.Fatalf("%s = %d %q: the custom error handler was not used", tc.name, res.status, res.body)
			}
			got := <-errs
			if !errors.Is(got, tc.want) {
				t.Errorf("%s passed %v to the error handler, want %s", tc.name, got, tc.want.Code)
			}
			if res.header.Get("WWW-Authenticate") != "" {
				t.Errorf("%s wrote WWW-Authenticate around the custom handler", tc.name)
			}
		})
	}
}

func TestNew(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		cfg  httpauth.Config
	}{
		{"no Auth", httpauth.Config{}},
		{"unknown location", httpauth.Config{Auth: f.auth, Locations: []httpauth.Location{"header"}}},
		{"empty location", httpauth.Config{Auth: f.auth, Locations: []httpauth.Location{httpauth.Headers, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := httpauth.New(tc.cfg); err == nil {
				t.Errorf("New(%+v) = %v, want an error", tc.cfg, m)
			}
		})
	}
	m, err := httpauth.New(httpauth.Config{Auth: f.auth, Locations: []httpauth.Location{httpauth.Query, httpauth.Query}})
	if err != nil || m.Auth() != f.auth {
		t.Fatalf("New with a repeated location = %v, %v", m, err)
	}
}

func TestParseLocations(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []httpauth.Location
	}{
		{[]string{"headers"}, []httpauth.Location{httpauth.Headers}},
		{[]string{"headers", "cookies", "json", "query"}, []httpauth.Location{httpauth.Headers, httpauth.Cookies, httpauth.JSON, httpauth.Query}},
		{[]string{}, nil},
		{nil, nil},
		{[]string{"smoke-signals"}, nil},
		{[]string{"headers", ""}, nil},
		{[]string{"Headers"}, nil},
	} {
		got, err := httpauth.ParseLocations(tc.in)
		if !slices.Equal(got, tc.want) || (err == nil) != (tc.want != nil) {
			t.Errorf("ParseLocations(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	type body struct {
		Name  string `json:"name"`
		Inner inner  `json:"inner"`
	}
	for _, tc := range []struct {
		name, ct, body string
		allowEmpty     bool
		want           body
		msg            string // a part of the message; "" for success
	}{
		{"plain", "application/json", `{"name":"x"}`, false, body{Name: "x"}, ""},
		{"charset", "application/json; charset=utf-8", `{"name":"x"}`, false, body{Name: "x"}, ""},
		{"media type case", "Application/JSON", `{"name":"x"}`, false, body{Name: "x"}, ""},
		{"unknown fields ignored", "application/json", `{"name":"x","unknown":[1,2]}`, false, body{Name: "x"}, ""},
		{"surrounding whitespace", "application/json", " \n\t{\"name\":\"x\"}\r\n ", false, body{Name: "x"}, ""},
		{"nested", "application/json", `{"inner":{"n":3}}`, false, body{Inner: inner{N: 3}}, ""},
		{"exactly 64 KiB", "application/json", `{"name":"` + strings.Repeat("a", httpauth.MaxBody-11) + `"}`, false, body{Name: strings.Repeat("a", httpauth.MaxBody-11)}, ""},
		{"empty allowed", "application/json", "", true, body{}, ""},
		{"whitespace allowed as empty", "application/json", " \n ", true, body{}, ""},
		{"empty allowed without a media type", "", "", true, body{}, ""},
		{"text/plain", "text/plain", `{"name":"x"}`, false, body{}, "Content-Type: application/json"},
		{"no media type", "", `{"name":"x"}`, false, body{}, "Content-Type: application/json"},
		{"form", "application/x-www-form-urlencoded", `name=x`, false, body{}, "Content-Type: application/json"},
		{"json suffix", "application/merge-patch+json", `{"name":"x"}`, false, body{}, "Content-Type: application/json"},
		{"malformed media type", "application/json; charset", `{"name":"x"}`, false, body{}, "Content-Type: application/json"},
		{"larger than 64 KiB", "application/json", `{"name":"` + strings.Repeat("a", httpauth.MaxBody-10) + `"}`, false, body{}, "64 KiB"},
		{"much larger", "application/json", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, false, body{}, "64 KiB"},
		{"two values", "application/json", `{} {}`, false, body{}, "exactly one JSON value"},
		{"two values no space", "application/json", `{"name":"x"}{"name":"y"}`, false, body{}, "exactly one JSON value"},
		{"trailing garbage", "application/json", `{"name":"x"}x`, false, body{}, "exactly one JSON value"},
		{"trailing bracket", "application/json", `{"name":"x"}]`, false, body{}, "exactly one JSON value"},
		{"empty refused", "application/json", "", false, body{}, "must be a JSON object"},
		{"whitespace refused", "application/json", "  \n", false, body{}, "must be a JSON object"},
		{"truncated", "application/json", `{"name":`, false, body{}, "not valid JSON"},
		{"not JSON", "application/json", `name=x`, false, body{}, "not valid JSON"},
		{"wrong field type", "application/json", `{"name":1}`, false, body{}, "The field name has the wrong type."},
		{"wrong nested field type", "application/json", `{"inner":{"n":"3"}}`, false, body{}, "The field inner.n has the wrong type."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.ct != "" {
				hdr = []string{"Content-Type", tc.ct}
			}
			var got body
			err := httpauth.DecodeJSON(req("POST", "/", tc.body, hdr...), &got, tc.allowEmpty)
			if tc.msg == "" {
				if err != nil || got != tc.want {
					t.Errorf("DecodeJSON(%.40q) = %v, %.40v; want %.40v", tc.body, err, got, tc.want)
				}
				return
			}
			if !errors.Is(err, latchkey.ErrInvalidRequest) {
				t.Fatalf("DecodeJSON(%.40q) = %v, want invalid_request", tc.body, err)
			}
			e := httpauth.AsError(err)
			if !strings.Contains(e.Message, tc.msg) || e.Message == latchkey.ErrInvalidRequest.Message {
				t.Errorf("DecodeJSON(%.40q) message %q, want one saying %q", tc.body, e.Message, tc.msg)
			}
			// The message reaches the client; the decoder's own words do not.
			res := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { httpauth.WriteError(w, r, err) }), req("GET", "/", ""))
			if res.status != 400 || res.code != "invalid_request" || res.msg != e.Message {
				t.Errorf("WriteError(DecodeJSON error) = %d %s", res.status, res.body)
			}
			if e.Err != nil && strings.Contains(res.body, e.Err.Error()) {
				t.Errorf("the decoder's error leaked into the body: %s", res.body)
			}
		})
	}
	// Over the network, the same rules.
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b body
		if err := httpauth.DecodeJSON(r, &b, false); err != nil {
			httpauth.WriteError(w, r, err)
			return
		}
		httpauth.WriteJSON(w, 200, b)
	}))
	if res := do(t, srv, "POST", "/", `{"name":"net"}`, "Content-Type", "application/json; charset=utf-8"); res.status != 200 || !strings.Contains(res.body, `"net"`) {
		t.Errorf("DecodeJSON over HTTP = %d %s", res.status, res.body)
	}
	if res := do(t, srv, "POST", "/", strings.Repeat(" ", httpauth.MaxBody+1), jsonCT...); res.status != 400 || !strings.Contains(res.msg, "64 KiB") {
		t.Errorf("a body of 64 KiB + 1 spaces over HTTP = %d %s", res.status, res.body)
	}
}

package server_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/testenv"
)

// fuzzContentTypes are the Content-Type values a fuzzed request is sent with.
var fuzzContentTypes = []string{"application/json", "application/json; charset=utf-8", "", "text/plain",
	"application/x-www-form-urlencoded", "application/json; charset", "APPLICATION/JSON"}

// serveFuzzed sends req to the server's handler in-process and returns the
// answer; a panic fails the fuzz input like any other failure.
func serveFuzzed(e *env, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

// wantAPIError checks an API refusal: a 4xx whose body is exactly the JSON
// {"error","message"} with a known code, the status the code maps to, and a
// Retry-After on rate_limited.
func wantAPIError(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 || rec.Code < 400 {
		t.Fatalf("%s = %d %s: want a 4xx", what, rec.Code, rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s = %d %q: not JSON", what, rec.Code, rec.Body)
	}
	code, _ := body["error"].(string)
	msg, _ := body["message"].(string)
	if !slices.Contains(testenv.APICodes, latchkey.Code(code)) || msg == "" || len(body) != 2 {
		t.Fatalf("%s = %d %s: want {\"error\": <a known code>, \"message\": <text>}", what, rec.Code, rec.Body)
	}
	if want := httpauth.Status(latchkey.Code(code)); rec.Code != want {
		t.Fatalf("%s = %d %s: %s is answered %d", what, rec.Code, rec.Body, code, want)
	}
	if code == string(latchkey.CodeRateLimited) && rec.Header().Get("Retry-After") == "" {
		t.Fatalf("%s = %d %s without Retry-After", what, rec.Code, rec.Body)
	}
}

// liveUser is an account the fuzzer cannot name (its username is random) and
// its current token pair: fuzzed bodies name the pair as $RT and $AT, so that
// the fuzzer reaches the paths a valid token opens, though it cannot forge
// one. It signs in from an address of its own, which the fuzzer's failed
// sign-ins do not rate-limit.
type liveUser struct {
	e               *env
	name, password  string
	access, refresh string
}

const liveAddr = "198.51.100.7:4000"

func newLiveUser(f *testing.F, e *env) *liveUser {
	u := &liveUser{e: e, name: "live-" + rand.Text(), password: rand.Text()}
	e.call("POST", "/register", "", `{"username":"`+u.name+`","password":"`+u.password+`"}`).want(f, 201, "")
	return u
}

func (u *liveUser) fill(s string) string {
	return strings.NewReplacer("$RT", u.refresh, "$AT", u.access).Replace(s)
}

// signIn replaces the pair with a new one from POST /login, or from the OAuth
// password grant of the public client "app".
func (u *liveUser) signIn(t testing.TB, oauth bool) {
	var req *http.Request
	if oauth {
		form := url.Values{"grant_type": {"password"}, "username": {u.name}, "password": {u.password}, "client_id": {"app"}}
		req = httptest.NewRequest("POST", "http://latchkey.test/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		body, _ := json.Marshal(map[string]string{"username": u.name, "password": u.password})
		req = httptest.NewRequest("POST", "http://latchkey.test/login", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr = liveAddr
	rec := serveFuzzed(u.e, req)
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.RefreshToken == "" {
		t.Fatalf("signing in the live user: %d %s", rec.Code, rec.Body)
	}
	u.access, u.refresh = out.AccessToken, out.RefreshToken
}

// structField is the value encoding/json puts in a struct field called name
// when it decodes body, a JSON object: the last member whose key matches the
// name without regard to case.
func structField(body, name string) any {
	dec := json.NewDecoder(strings.NewReader(body))
	var v any
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var val any
		if dec.Decode(&val) != nil {
			return nil
		}
		if strings.EqualFold(tok.(string), name) {
			v = val
		}
	}
	return v
}

// FuzzJSONRequests sends any body, with any of a few content types, to the
// JSON endpoints POST /login, /register and /refresh. No answer is a 5xx; a
// refusal is the API's JSON error; a success holds what the body asked for:
// the user it named (lower-cased, as usernames are), the refresh token it
// presented rotated, cookies instead of tokens when it said "cookies": true.
func FuzzJSONRequests(f *testing.F) {
	for _, s := range []struct {
		route uint8
		body  string
	}{
		{0, `{"username":"test","password":"test"}`},
		{0, `{"username":"TEST","password":"test","cookies":true}`},
		{0, `{"username":"test","password":"wrong"}`},
		{0, `{"username":1,"password":"test"}`},
		{0, `{"grant":"password","username":"test","password":"test"}`},
		{0, `{"grant":"nope"}`},
		{0, `{"provider":"x","id_token":"e30.e30.e30"}`},
		{0, `{"username":"test","password":"test","cookies":"yes"}`},
		{0, `{"username":"te\u0000st","password":"test"}`},
		{1, `{"username":"Alice","password":"correct horse"}`},
		{1, `{"username":" bob","password":"correct horse"}`},
		{1, `{"username":"carol","password":"short"}`},
		{1, `{"username":"a\u0000b","password":"correct horse"}`},
		{1, `{"username":"test","password":"correct horse"}`},
		{2, `{"refresh_token":"$RT"}`},
		{2, `{"refresh_token":"$RT","access_token":"$AT"}`},
		{2, `{"refresh_token":"$AT"}`},
		{2, `{"refresh_token":"$RT"} {}`},
		{2, `{"refresh_token":["$RT"]}`},
		{2, `{}`},
		{2, ``},
		{0, `[]`},
		{0, `null`},
		{0, "\xef\xbb\xbf{}"},
		{0, `{"username":"test","password":"test"`},
	} {
		f.Add(s.route, uint8(0), s.body)
	}
	f.Add(uint8(0), uint8(3), `{"username":"test","password":"test"}`)
	f.Add(uint8(2), uint8(4), `refresh_token=$RT`)
	e := newEnv(f)
	live := newLiveUser(f, e)
	live.signIn(f, false)
	// The accounts this worker registered, with their passwords.
	registered := map[string]string{"test": "test", strings.ToLower(live.name): live.password}
	routes := []string{"/login", "/register", "/refresh"}
	f.Fuzz(func(t *testing.T, route, ctype uint8, body string) {
		path := routes[int(route)%len(routes)]
		presentedRT := live.refresh
		body = live.fill(body)
		req := httptest.NewRequest("POST", "http://latchkey.test"+path, strings.NewReader(body))
		if ct := fuzzContentTypes[int(ctype)%len(fuzzContentTypes)]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := serveFuzzed(e, req)
		what := "POST " + path + " " + req.Header.Get("Content-Type") + " " + body
		if rec.Code >= 300 {
			wantAPIError(t, what, rec)
			if path == "/refresh" && strings.Contains(body, presentedRT) && rec.Code == 401 {
				live.signIn(t, false) // the fuzzer may have spent the live pair
			}
			return
		}
		var in map[string]any
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatalf("%s = %d %s, but the body is no JSON object: %v", what, rec.Code, rec.Body, err)
		}
		name, _ := in["username"].(string)
		pw, _ := in["password"].(string)
		var out struct {
			UUID         string `json:"uuid"`
			Username     string `json:"username"`
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			User         struct{ Username string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s = %d %q: not JSON", what, rec.Code, rec.Body)
		}
		switch path {
		case "/login":
			want, ok := registered[strings.ToLower(name)]
			if rec.Code != 200 || !ok || pw != want || out.User.Username != strings.ToLower(name) {
				t.Fatalf("%s = %d %s: only a registered username, with its password, signs in, as itself", what, rec.Code, rec.Body)
			}
			cookies, _ := in["cookies"].(bool)
			if gotCookies := len(rec.Result().Cookies()) > 0; cookies != gotCookies || cookies == (out.AccessToken != "") {
				t.Fatalf("%s = %d %s with %d cookies: cookies %v asked", what, rec.Code, rec.Body, len(rec.Result().Cookies()), cookies)
			}
		case "/register":
			// POST /register decodes into a struct, POST /login into a map.
			name, _ = structField(body, "username").(string)
			pw, _ = structField(body, "password").(string)
			_, taken := registered[strings.ToLower(name)]
			if rec.Code != 201 || out.UUID == "" || out.Username != strings.ToLower(name) || taken || len([]rune(pw)) < 8 {
				t.Fatalf("%s = %d %s: want 201 for a new username, lower-cased, with a password of 8 or more", what, rec.Code, rec.Body)
			}
			registered[out.Username] = pw
		case "/refresh":
			if rec.Code != 200 || structField(body, "refresh_token") != presentedRT || out.RefreshToken == "" || out.RefreshToken == presentedRT {
				t.Fatalf("%s = %d %s: a refresh succeeds only for the live token, and rotates it", what, rec.Code, rec.Body)
			}
			live.access, live.refresh = out.AccessToken, out.RefreshToken
		}
	})
}

// oauthCodes are the RFC 6749 error codes the OAuth endpoints answer with.
var oauthCodes = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
	"unsupported_grant_type", "invalid_scope", "temporarily_unavailable"}

// FuzzOAuthForms sends any form body and Basic credentials to POST
// /oauth/token, /oauth/revoke and /oauth/introspect. No answer is a 5xx;
// every answer is uncacheable; a refusal is exactly the RFC 6749
// {"error","error_description"} with a known code (and a challenge on a 401);
// a token is issued only for the password test/test or the live refresh
// token, and introspection calls only a live token active.
func FuzzOAuthForms(f *testing.F) {
	for _, s := range []struct {
		endpoint    uint8
		form, basic string
	}{
		{0, "grant_type=password&username=test&password=test&client_id=app", ""},
		{0, "grant_type=password&username=test&password=test", "rs:$RS"},
		{0, "grant_type=refresh_token&refresh_token=$RT&client_id=app", ""},
		{0, "grant_type=refresh_token&refresh_token=$RT&refresh_token=$RT&client_id=app", ""},
		{0, "grant_type=password&username=test&password=test&client_id=app&scope=account", ""},
		{0, "grant_type=password&username=test&password=test&client_id=app&scope=admin", ""},
		{0, "grant_type=authorization_code&code=x&client_id=app", ""},
		{0, "grant_type=password&client_id=app&client_secret=x", ""},
		{0, "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token=x&subject_token_type=urn:ietf:params:oauth:token-type:id_token&client_id=app", ""},
		{0, "grant_type=password&username=test&password=test", "rs:wrong"},
		{0, "grant_type=password&username=test&password=test", "nobody:x"},
		{0, "%zz", ""},
		{1, "token=$RT&client_id=app", ""},
		{1, "token=$AT&token_type_hint=access_token", "rs:$RS"},
		{1, "token=garbage", "rs:$RS"},
		{1, "", "rs:$RS"},
		{2, "token=$AT", "rs:$RS"},
		{2, "token=$RT&token_type_hint=refresh_token", "rs:$RS"},
		{2, "token=x", "rs:$RS"},
		{2, "token=$AT&client_id=app", ""},
		{2, "token=$AT", "other:$OTHER"},
	} {
		f.Add(s.endpoint, uint8(4), s.form, s.basic)
	}
	f.Add(uint8(0), uint8(0), "grant_type=password&username=test&password=test&client_id=app", "")
	e := newEnv(f)
	live := newLiveUser(f, e)
	live.signIn(f, true)
	fill := func(s string) string {
		return strings.NewReplacer("$RS", e.rsSecret, "$OTHER", e.otherSecret).Replace(live.fill(s))
	}
	endpoints := []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"}
	f.Fuzz(func(t *testing.T, endpoint, ctype uint8, form, basic string) {
		path := endpoints[int(endpoint)%len(endpoints)]
		liveAT, liveRT := live.access, live.refresh
		form, basic = fill(form), fill(basic)
		req := httptest.NewRequest("POST", "http://latchkey.test"+path, strings.NewReader(form))
		if ct := fuzzContentTypes[int(ctype)%len(fuzzContentTypes)]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if basic != "" {
			id, secret, _ := strings.Cut(basic, ":")
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		}
		rec := serveFuzzed(e, req)
		what := "POST " + path + " " + req.Header.Get("Content-Type") + " " + form + " basic " + basic
		if rec.Code >= 500 {
			t.Fatalf("%s = %d %s", what, rec.Code, rec.Body)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s = %d with Cache-Control %q", what, rec.Code, rec.Header().Get("Cache-Control"))
		}
		var out map[string]any
		if rec.Body.Len() > 0 {
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("%s = %d %q: not JSON", what, rec.Code, rec.Body)
			}
		}
		if rec.Code >= 300 {
			code, _ := out["error"].(string)
			desc, _ := out["error_description"].(string)
			if !slices.Contains(oauthCodes, code) || desc == "" || len(out) != 2 {
				t.Fatalf("%s = %d %s: want exactly a known error and its description", what, rec.Code, rec.Body)
			}
			if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("%s = 401 without a challenge", what)
			}
			if code == "invalid_grant" && strings.Contains(form, liveRT) {
				live.signIn(t, true) // the fuzzer may have spent the live pair
			}
			return
		}
		q, err := url.ParseQuery(form)
		if err != nil {
			t.Fatalf("%s = %d %s, but the form does not parse: %v", what, rec.Code, rec.Body, err)
		}
		switch path {
		case "/oauth/token":
			rt, _ := out["refresh_token"].(string)
			at, _ := out["access_token"].(string)
			switch q.Get("grant_type") {
			case "password":
				name, pw := strings.ToLower(q.Get("username")), q.Get("password")
				if !(name == "test" && pw == "test") && !(name == strings.ToLower(live.name) && pw == live.password) {
					t.Fatalf("%s = %d %s: only a registered username, with its password, signs in", what, rec.Code, rec.Body)
				}
			case "refresh_token":
				if q.Get("refresh_token") != liveRT || rt == liveRT {
					t.Fatalf("%s = %d %s: only the live refresh token refreshes, and it rotates", what, rec.Code, rec.Body)
				}
			default:
				t.Fatalf("%s = %d %s: grant %q issued tokens", what, rec.Code, rec.Body, q.Get("grant_type"))
			}
			if at == "" || rt == "" {
				t.Fatalf("%s = %d %s: no token pair", what, rec.Code, rec.Body)
			}
			if q.Get("grant_type") == "refresh_token" {
				live.access, live.refresh = at, rt
			}
		case "/oauth/revoke":
			if rec.Code != 200 {
				t.Fatalf("%s = %d %s: a revocation answers 200", what, rec.Code, rec.Body)
			}
			if tok := q.Get("token"); tok != "" && (tok == liveRT || tok == liveAT) {
				live.signIn(t, true)
			}
		case "/oauth/introspect":
			if active, _ := out["active"].(bool); active && q.Get("token") != liveAT && q.Get("token") != liveRT {
				t.Fatalf("%s = %d %s: only a live token is active", what, rec.Code, rec.Body)
			}
		}
	})
}

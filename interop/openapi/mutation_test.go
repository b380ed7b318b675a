package openapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/server"
)

// TestOpenAPICheckerCatchesAWrongDocument makes sure the checker of
// TestOpenAPIMatchesResponses can fail: each mutation below makes the document
// wrong about one request or response, which passes against the real document
// and must be reported against the mutated one.
func TestOpenAPICheckerCatchesAWrongDocument(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	oauthForm := url.Values{"grant_type": {"password"}, "username": {"test"}, "password": {"test"}, "client_id": {"app"}}.Encode()
	ctForm := []string{"Content-Type", "application/x-www-form-urlencoded"}
	rsAuth := append([]string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("rs:"+e.RSSecret))}, ctForm...)
	for _, m := range []struct {
		name               string
		mutate             func(doc map[string]any)
		method, path, body string
		hdr                []string
	}{
		{"an undocumented status", func(d map[string]any) { delete(obj(d, "paths", "/me", "get", "responses"), "401") },
			"GET", "/me", "", nil},
		{"an undocumented HEAD status", func(d map[string]any) { delete(obj(d, "paths", "/me", "head", "responses"), "401") },
			"HEAD", "/me", "", nil},
		{"a property of the wrong type", func(d map[string]any) {
			obj(d, "components", "schemas", "TokenPair", "properties", "expires_in")["type"] = "string"
		}, "POST", "/login", `{"username":"test","password":"test"}`, nil},
		{"a required property the server does not send", func(d map[string]any) {
			tp := obj(d, "components", "schemas", "Health")
			tp["required"] = append(tp["required"].([]any), "version")
		}, "GET", "/healthz", "", nil},
		{"a request the server accepts but the document refuses", func(d map[string]any) {
			obj(d, "components", "schemas", "PasswordLoginRequest", "properties", "username")["maxLength"] = 2
		}, "POST", "/login", `{"username":"test","password":"test"}`, nil},
		{"a path the server serves but the document lacks", func(d map[string]any) { delete(obj(d, "paths"), "/healthz") },
			"GET", "/healthz", "", nil},
		{"an Allow that the document does not list", func(d map[string]any) { delete(obj(d, "paths", "/healthz"), "head") },
			"PATCH", "/healthz", "", nil},
		{"a wrong OAuth token response", func(d map[string]any) {
			obj(d, "components", "schemas", "OAuthTokenResponse", "properties", "token_type")["const"] = "MAC"
		}, "POST", "/oauth/token", oauthForm, ctForm},
		{"a wrong OAuth introspection response", func(d map[string]any) {
			obj(d, "components", "schemas", "OAuthIntrospection", "properties", "active")["type"] = "string"
		}, "POST", "/oauth/introspect", "token=garbage", rsAuth},
	} {
		t.Run(m.name, func(t *testing.T) {
			catches(t, e, false, m.mutate, func(c *oasChecker) *http.Request { return c.req(m.method, m.path, m.body, m.hdr...) })
		})
	}
}

// TestOpenAPICheckerCatchesAWrongProviderDocument is
// TestOpenAPICheckerCatchesAWrongDocument for the parts of the document that
// describe a server with OpenID Connect providers.
func TestOpenAPICheckerCatchesAWrongProviderDocument(t *testing.T) {
	op := startOP(t)
	pe := startWithProvider(t, op, servertest.Options{ProviderSignup: true}, true)
	plain := servertest.Start(t, servertest.Options{})
	pc := newOASChecker(t, pe)
	r := pc.check(t, pc.req("POST", "/login", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "alice", "")+`"}`))
	wantStatus(t, r, 200, "")
	alice := pairOf(t, r)
	ctForm := []string{"Content-Type", "application/x-www-form-urlencoded"}
	exchange := func(c *oasChecker) *http.Request {
		return c.req("POST", "/oauth/token", url.Values{"grant_type": {tokenExchange}, "client_id": {"app"},
			"subject_token": {op.IDToken(t, "native", "alice", "")}, "subject_token_type": {idTokenType}}.Encode(), ctForm...)
	}
	for _, m := range []struct {
		name      string
		e         *servertest.Env
		providers bool
		mutate    func(doc map[string]any)
		send      func(c *oasChecker) *http.Request
	}{
		{"a path of servers with providers that is not marked so", plain, false,
			func(d map[string]any) { delete(obj(d, "paths", "/identities"), "x-requires-providers") },
			func(c *oasChecker) *http.Request { return c.req("GET", "/identities", "") }},
		{"a wrong identity", pe, true,
			func(d map[string]any) {
				obj(d, "components", "schemas", "Identity", "properties", "created_at")["type"] = "string"
			},
			func(c *oasChecker) *http.Request {
				return c.req("GET", "/identities", "", "Authorization", "Bearer "+alice.access)
			}},
		{"a provider login the document refuses", pe, true,
			func(d map[string]any) {
				obj(d, "components", "schemas", "ProviderLoginRequest", "properties", "id_token")["maxLength"] = 10
			},
			func(c *oasChecker) *http.Request {
				return c.req("POST", "/login", `{"provider":"example","id_token":"`+op.IDToken(t, "native", "alice", "")+`"}`)
			}},
		{"a wrong issued_token_type", pe, true,
			func(d map[string]any) {
				obj(d, "components", "schemas", "OAuthTokenResponse", "properties", "issued_token_type")["const"] = idTokenType
			}, exchange},
		{"a token exchange the document refuses", pe, true,
			func(d map[string]any) {
				gt := obj(d, "components", "schemas", "OAuthTokenRequest", "properties", "grant_type")
				gt["enum"] = []any{"password", "refresh_token"}
			}, exchange},
		{"a wrong flow cookie header", pe, true,
			func(d map[string]any) {
				obj(d, "components", "headers", "SetCookieSignIn")["schema"] = map[string]any{"type": "string", "pattern": "^lk_signin="}
			},
			func(c *oasChecker) *http.Request { return c.req("GET", "/account/signin/example", "") }},
		{"an undocumented refusal of a sign-in that asks for a link", pe, true,
			func(d map[string]any) {
				delete(obj(d, "paths", "/account/signin/{provider}", "get", "responses"), "400")
			},
			func(c *oasChecker) *http.Request { return c.req("GET", "/account/signin/example?link=1", "") }},
		{"a wrong continue page", pe, true,
			func(d map[string]any) {
				// The link is not relative.
				obj(d, "components", "schemas", "ContinuePage")["allOf"].([]any)[1] = map[string]any{"pattern": `<a id="continue" href="/`}
			},
			func(c *oasChecker) *http.Request {
				j := servertest.NewJar(nil)
				c.browse(t, j, c.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
				req := c.req("POST", "/account/signin/example", url.Values{"csrf_token": {j.Get("__Host-lk_csrf")}}.Encode(), ctForm...)
				req.Header.Set("Cookie", j.Header())
				return req
			}},
		{"an undocumented callback status", pe, true,
			func(d map[string]any) { delete(obj(d, "paths", "/account/callback", "get", "responses"), "400") },
			func(c *oasChecker) *http.Request { return c.req("GET", "/account/callback", "") }},
	} {
		t.Run(m.name, func(t *testing.T) {
			catches(t, m.e, m.providers, m.mutate, m.send)
		})
	}
}

// catches checks that the exchange send makes passes against the real
// document and fails against the document changed by mutate. send is called
// once for each.
func catches(t *testing.T, e *servertest.Env, providers bool, mutate func(map[string]any), send func(*oasChecker) *http.Request) {
	t.Helper()
	good := newOASChecker(t, e)
	good.providers = providers
	good.check(t, send(good))
	if t.Failed() {
		t.Fatal("the request must pass against the real document")
	}
	bad := newOASCheckerFor(t, e, mutated(t, mutate))
	bad.providers = providers
	rec := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != rec {
				panic(p)
			}
		}()
		bad.check(rec, send(bad))
	}()
	if len(rec.failures) == 0 {
		t.Fatal("the checker accepted the exchange against the mutated document")
	}
	t.Logf("reported: %.200s", rec.failures[0])
}

// mutated is the server's document changed by mutate.
func mutated(t *testing.T, mutate func(map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(server.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	mutate(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// obj is the JSON object at path in doc; it panics if there is none, which is
// a mistake in the test.
func obj(doc map[string]any, path ...string) map[string]any {
	m := doc
	for _, k := range path {
		next, ok := m[k].(map[string]any)
		if !ok {
			panic(fmt.Sprintf("no object at %q of the document", path))
		}
		m = next
	}
	return m
}

// recorder stands in for a test to see whether the checker fails it: it
// notes failures instead of failing, and Fatal stops by panicking with the
// recorder itself.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(r)
}

func (r *recorder) Fatal(args ...any) {
	r.failures = append(r.failures, fmt.Sprint(args...))
	panic(r)
}

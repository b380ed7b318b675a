package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/internal/testenv"
)

// fuzzRoutes are the paths FuzzRoutes fills with its fuzzed value (%s), in a
// path segment (escaped as one) or, after '?', in a query value.
var fuzzRoutes = []string{
	"/sessions/%s", "/identities/%s", "/account/sessions/%s/revoke", "/account/signin/%s",
	"/account/identities/%s/unlink", "/%s", "/oauth/%s", "/.well-known/%s", "/me/%s",
	"/logout?scope=%s", "/account/callback?state=%s&code=x", "/sessions/%s/x",
}

var fuzzMethods = []string{"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"}

// FuzzRoutes sends any value as a route parameter (a session or identity id,
// a provider name, a path, a logout scope, a callback state), with any method,
// any JSON body and no token, the access token or the refresh token, to a
// server with an OpenID Connect provider, over loopback. No answer is a 5xx;
// every answer matches the OpenAPI document; an API refusal is the JSON error
// with a known code and its status; and no fuzzed id revokes or unlinks
// anything.
func FuzzRoutes(f *testing.F) {
	for i, seed := range []string{"", "x", "example", "AAAAAAAAAAAAAAAAAAAAAA", "local", "global", "others",
		"..", "%2e%2e", "a/b", "a%2Fb", "\x00", "ü", "jwks.json", "oauth-authorization-server", "token", "events",
		strings.Repeat("a", 300), "{id}", " ", "?", "#"} {
		f.Add(uint8(i), uint8(i), uint8(i), seed, "")
	}
	f.Add(uint8(5), uint8(1), uint8(0), "login", `{"username":"alice","password":"nope"}`)
	f.Add(uint8(1), uint8(1), uint8(1), "", `{"provider":"example","id_token":"e30.e30.e30"}`)
	f.Add(uint8(9), uint8(1), uint8(1), "global", "")
	op := startOP(f)
	e := startWithProvider(f, op, servertest.Options{}, true)
	c := newOASChecker(f, e)
	c.providers = true
	var live pair
	renew := func(t testing.TB) {
		body, _ := json.Marshal(map[string]string{"username": "test", "password": "test"})
		resp, err := http.Post(e.URL+"/login", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			live = pairOf(t, resp)
		}
		resp.Body.Close()
	}
	renew(f)
	f.Fuzz(func(t *testing.T, route, method, auth uint8, param, body string) {
		tmpl := fuzzRoutes[int(route)%len(fuzzRoutes)]
		value := url.PathEscape(param)
		if q := strings.Index(tmpl, "?"); q >= 0 && strings.Index(tmpl, "%s") > q {
			value = url.QueryEscape(param)
		}
		path := strings.Replace(tmpl, "%s", value, 1)
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		req := c.req(m, path, body)
		switch auth % 3 {
		case 1:
			req.Header.Set("Authorization", "Bearer "+live.access)
		case 2:
			req.Header.Set("Authorization", "Bearer "+live.refresh)
		}
		vreq := req.Clone(context.Background())
		vreq.Body = io.NopCloser(strings.NewReader(body))
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", m, path, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: reading the answer: %v", m, path, err)
		}
		what := m + " " + path + " -> " + resp.Status
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s", what, raw)
		}

		// The answer matches the document, whether or not the request does.
		// (The document's router forgives a trailing slash, ServeMux does
		// not: a path the document does not list is judged as unrouted. An
		// escaped slash is one segment's byte to ServeMux, two segments to
		// that router; a dot segment is no id to the server, which answers
		// 404, but matches the document's {id}: the document cannot judge
		// such paths.)
		route2, params, err := c.router.FindRoute(vreq)
		_, listed := c.pathMethods(vreq.URL.EscapedPath())
		segments := strings.Split(vreq.URL.EscapedPath(), "/")
		switch {
		case strings.Contains(strings.ToLower(vreq.URL.EscapedPath()), "%2f"), slices.Contains(segments, "."), slices.Contains(segments, ".."):
		case err != nil || !listed:
			c.checkUnrouted(t, vreq, resp, raw, what)
		default:
			in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route2, Options: c.opts}
			if m == http.MethodHead && route2.Operation.Responses.Status(resp.StatusCode) == nil {
				t.Errorf("%s: status %d is not documented", what, resp.StatusCode)
			}
			c.validateResponse(t, in, resp, raw, what)
		}

		api := !strings.HasPrefix(path, "/account") && !strings.HasPrefix(path, "/oauth/")
		if api && resp.StatusCode >= 400 && m != http.MethodHead {
			var refusal map[string]any
			if err := json.Unmarshal(raw, &refusal); err != nil {
				t.Fatalf("%s: %q is not JSON", what, raw)
			}
			code, _ := refusal["error"].(string)
			if msg, _ := refusal["message"].(string); !slices.Contains(testenv.APICodes, latchkey.Code(code)) || msg == "" {
				t.Fatalf("%s %s: want {\"error\": <a known code>, \"message\": <text>}", what, raw)
			}
			if want := httpauth.Status(latchkey.Code(code)); resp.StatusCode != want {
				t.Fatalf("%s %s: %s is answered %d", what, raw, code, want)
			}
		}
		// A fuzzer cannot know an id: nothing is revoked or unlinked by one.
		revokes := (m == "DELETE" && (strings.HasPrefix(tmpl, "/sessions/%s") || strings.HasPrefix(tmpl, "/identities/%s"))) ||
			(m == "POST" && (strings.HasSuffix(tmpl, "/revoke") || strings.HasSuffix(tmpl, "/unlink")))
		if revokes && resp.StatusCode < 300 {
			t.Fatalf("%s %s: a fuzzed id did something", what, raw)
		}
		switch {
		case resp.StatusCode == http.StatusNoContent && strings.HasPrefix(path, "/logout"):
			renew(t) // the fuzzer signed the live session out
		case resp.StatusCode == http.StatusOK && path == "/refresh" && m == "POST":
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			live = pairOf(t, resp) // the fuzzer rotated the live pair
		}
	})
}

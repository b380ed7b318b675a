package openapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/latchkey/latchkey/internal/servertest"
	"github.com/latchkey/latchkey/server"
)

// TestOpenAPIDocumentIsValid checks that GET /openapi.json serves the embedded
// document and that it is a valid OpenAPI 3.1 document.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	resp, err := http.Get(e.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d %.200s", resp.StatusCode, served)
	}
	if !bytes.Equal(served, server.OpenAPI()) {
		t.Fatal("GET /openapi.json does not serve server.OpenAPI()")
	}
	doc, err := openapi3.NewLoader().LoadFromData(served)
	if err != nil {
		t.Fatalf("loading the document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is invalid: %v", err)
	}
	// Every error code the server can send is in the Error enum.
	var codes []string
	for _, c := range doc.Components.Schemas["Error"].Value.Properties["error"].Value.Enum {
		codes = append(codes, c.(string))
	}
	for _, c := range []string{"missing_token", "invalid_token", "token_expired", "token_revoked", "wrong_token_type",
		"refresh_reused", "session_expired", "invalid_credentials", "fresh_token_required", "csrf_failed",
		"rate_limited", "invalid_request", "weak_password", "username_taken", "registration_closed", "not_found",
		"method_not_allowed", "unavailable", "internal_error", "invalid_client", "unauthorized_client"} {
		if !slices.Contains(codes, c) {
			t.Errorf("the Error enum lacks %q", c)
		}
	}
	// Every OAuth error code the token endpoint can send is in OAuthError's.
	var oauthCodes []string
	for _, c := range doc.Components.Schemas["OAuthError"].Value.Properties["error"].Value.Enum {
		oauthCodes = append(oauthCodes, c.(string))
	}
	for _, c := range []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
		"unsupported_grant_type", "invalid_scope", "invalid_target", "temporarily_unavailable", "server_error"} {
		if !slices.Contains(oauthCodes, c) {
			t.Errorf("the OAuthError enum lacks %q", c)
		}
	}
	// The routes a server has only with providers say so.
	for _, p := range []string{"/identities", "/identities/{id}", "/account/signin/{provider}", "/account/callback", "/account/identities/{id}/unlink"} {
		if item := doc.Paths.Value(p); item == nil || !providersOnly(item) {
			t.Errorf("%s is not documented as a path of servers with providers (x-requires-providers)", p)
		}
	}
}

// TestOpenAPIMatchesResponses drives real requests through the server and
// checks every request and response against the document: an undocumented
// status, header or body shape fails the test.
func TestOpenAPIMatchesResponses(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	c := newOASChecker(t, e)
	ctJSON := []string{"Content-Type", "application/json"}
	ctForm := []string{"Content-Type", "application/x-www-form-urlencoded"}

	t.Run("discovery", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/.well-known/jwks.json", "/openapi.json"} {
			wantStatus(t, c.check(t, c.req("GET", p, "")), 200, "")
			wantStatus(t, c.check(t, c.req("HEAD", p, "")), 200, "")
		}
		r := c.check(t, c.req("GET", "/.well-known/jwks.json", ""))
		if ct := r.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
			t.Errorf("JWKS Content-Type = %q", ct)
		}
	})

	t.Run("routing", func(t *testing.T) {
		wantStatus(t, c.check(t, c.req("GET", "/nowhere", "")), 404, "not_found")
		wantStatus(t, c.check(t, c.req("HEAD", "/nowhere", "")), 404, "")
		wantStatus(t, c.check(t, c.req("GET", "//login", "")), 404, "not_found")
		wantStatus(t, c.check(t, c.req("GET", "/sessions/../login", "")), 404, "not_found")
		wantStatus(t, c.check(t, c.req("GET", "/login", "")), 405, "method_not_allowed")
		wantStatus(t, c.check(t, c.req("PUT", "/sessions/x", "")), 405, "method_not_allowed")
		wantStatus(t, c.check(t, c.req("POST", "/healthz", "")), 405, "method_not_allowed")
		wantStatus(t, c.check(t, c.req("OPTIONS", "/account", "")), 405, "method_not_allowed")
		// Every documented path refuses an undocumented method with the
		// documented Allow (check compares Allow with the document).
		// Those of servers with providers are not there without them.
		for p, item := range c.doc.Paths.Map() {
			if providersOnly(item) {
				wantStatus(t, c.check(t, c.req("PATCH", concrete(p), "")), 404, "not_found")
				wantStatus(t, c.check(t, c.req("GET", concrete(p), "")), 404, "not_found")
				continue
			}
			wantStatus(t, c.check(t, c.req("PATCH", concrete(p), "")), 405, "method_not_allowed")
		}
	})

	t.Run("oauth", func(t *testing.T) {
		basic := func(id, secret string) []string {
			return append(slices.Clone(ctForm), "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret)))
		}
		rs := basic("rs", e.RSSecret)
		form := func(kv ...string) string {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return v.Encode()
		}
		pw := form("grant_type", "password", "username", "test", "password", "test", "client_id", "app")
		tok := jsonOf(t, c.check(t, c.req("POST", "/oauth/token", pw, ctForm...)))
		access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("grant_type", "password", "username", "test", "password", "test"), rs...)), 200, "")
		next := jsonOf(t, c.check(t, c.req("POST", "/oauth/token", form("grant_type", "refresh_token", "refresh_token", refresh, "client_id", "app"), ctForm...)))
		for _, tc := range []struct {
			path, body string
			hdr        []string
			status     int
			code       string
		}{
			{"/oauth/token", form("grant_type", "password", "username", "test", "password", "nope", "client_id", "app"), ctForm, 400, "invalid_grant"},
			{"/oauth/token", form("grant_type", "password", "username", "test", "password", "test"), basic("rs", "wrong"), 401, "invalid_client"},
			{"/oauth/token", form("grant_type", "password", "username", "test", "password", "test", "client_id", "app", "scope", "admin"), ctForm, 400, "invalid_scope"},
			{"/oauth/token", form("grant_type", "refresh_token", "refresh_token", "garbage", "client_id", "app"), ctForm, 400, "invalid_grant"},
			{"/oauth/introspect", form("token", next["access_token"].(string)), rs, 200, ""},
			{"/oauth/introspect", form("token", next["refresh_token"].(string)), rs, 200, ""},
			{"/oauth/introspect", form("token", "garbage"), rs, 200, ""},
			{"/oauth/introspect", form("token", access, "client_id", "app"), ctForm, 401, "invalid_client"},
			{"/oauth/revoke", form("token", access, "token_type_hint", "access_token", "client_id", "app"), ctForm, 200, ""},
			{"/oauth/revoke", form("token", next["refresh_token"].(string)), rs, 400, "unauthorized_client"},
			{"/oauth/revoke", form("token", "garbage", "client_id", "nobody"), ctForm, 401, "invalid_client"},
			{"/oauth/revoke", form("token", next["refresh_token"].(string), "client_id", "app"), ctForm, 200, ""},
		} {
			wantStatus(t, c.check(t, c.req("POST", tc.path, tc.body, tc.hdr...)), tc.status, tc.code)
		}
		// Requests outside the document: the server refuses them as it says.
		wantStatus(t, c.checkOutside(t, c.req("POST", "/oauth/token", form("client_id", "app"), ctForm...)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/oauth/token", form("grant_type", "client_credentials", "client_id", "app"), ctForm...)), 400, "unsupported_grant_type")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/oauth/token", `{"grant_type":"password"}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/oauth/revoke", form("client_id", "app"), ctForm...)), 400, "invalid_request")
		// The token exchange is documented, but a server without providers
		// does not offer it.
		wantStatus(t, c.check(t, c.req("POST", "/oauth/token", form("grant_type", tokenExchange, "client_id", "app",
			"subject_token", "x.y.z", "subject_token_type", idTokenType), ctForm...)), 400, "unsupported_grant_type")
		md := jsonOf(t, c.check(t, c.req("GET", "/.well-known/oauth-authorization-server", "")))
		if md["issuer"] != servertest.Issuer {
			t.Errorf("metadata issuer %v", md["issuer"])
		}
		if gts := md["grant_types_supported"]; !slices.Equal(strs(gts), []string{"password", "refresh_token"}) {
			t.Errorf("grant_types_supported without providers = %v", gts)
		}
		wantStatus(t, c.check(t, c.req("HEAD", "/.well-known/oauth-authorization-server", "")), 200, "")
	})

	t.Run("register", func(t *testing.T) {
		wantStatus(t, c.check(t, c.req("POST", "/register", `{"username":"alice","password":"correct horse"}`)), 201, "")
		wantStatus(t, c.check(t, c.req("POST", "/register", `{"username":"ALICE","password":"correct horse"}`)), 409, "username_taken")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/register", `{"username":"bob","password":"short"}`)), 400, "weak_password")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/register", `{"username":"","password":"correct horse"}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/register", `{"username":"bob"}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/register", `{`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/register", `{"username":"bob","password":"correct horse"}`, "Content-Type", "text/plain")), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/register", "")), 400, "invalid_request")
		// Control characters pass the schema's length limits but not the server.
		wantStatus(t, c.check(t, c.req("POST", "/register", `{"username":"bo\u0007b","password":"correct horse"}`)), 400, "invalid_request")

		closed := servertest.Start(t, servertest.Options{ClosedSignup: true})
		cc := newOASChecker(t, closed)
		wantStatus(t, cc.check(t, cc.req("POST", "/register", `{"username":"carol","password":"correct horse"}`)), 403, "registration_closed")
	})

	t.Run("login", func(t *testing.T) {
		r := c.check(t, c.req("POST", "/login", `{"username":"test","password":"test"}`))
		wantStatus(t, r, 200, "")
		if b := jsonOf(t, r); b["access_token"] == nil || b["refresh_token"] == nil {
			t.Errorf("login body = %v", b)
		}
		c.check(t, c.req("POST", "/login", `{"username":"test","password":"test","extra":1}`, "Content-Type", "application/json; charset=utf-8"))
		j := servertest.NewJar(nil)
		r = c.browse(t, j, c.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
		wantStatus(t, r, 200, "")
		if b := jsonOf(t, r); b["access_token"] != nil || j.Get("__Host-lk_refresh") == "" {
			t.Errorf("cookie login: body %v, cookies %v", b, j)
		}
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"username":"test","password":"wrong"}`)), 401, "invalid_credentials")
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"username":"nobody","password":"wrong"}`)), 401, "invalid_credentials")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"username":"test"}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"username":"test","password":""}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `[]`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"username":1,"password":"test"}`)), 400, "invalid_request")
		// kin-openapi decodes only the first JSON value, so the document cannot
		// refuse what follows it; the server does.
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"username":"test","password":"test"} {}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `username=test&password=test`, ctForm...)), 400, "invalid_request")
		// The grant form; the provider form on a server without providers.
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"grant":"password","username":"test","password":"test"}`)), 200, "")
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"grant":"password","username":"test","password":"wrong"}`)), 401, "invalid_credentials")
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"grant":"magic_link","token":"x"}`)), 400, "invalid_request")
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"grant":"id_token","provider":"example","id_token":"x.y.z"}`)), 400, "invalid_request")
		wantStatus(t, c.check(t, c.req("POST", "/login", `{"provider":"example","id_token":"x.y.z"}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"grant":"password","username":"test","password":5}`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/login", `{"grant":"Bad Name"}`)), 400, "invalid_request")

		insecure := servertest.Start(t, servertest.Options{InsecureCookies: true})
		ic := newOASChecker(t, insecure)
		ij := servertest.NewJar(nil)
		wantStatus(t, ic.browse(t, ij, ic.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`)), 200, "")
		if ij.Get("lk_access") == "" {
			t.Fatalf("insecure cookies = %v", ij)
		}
		wantStatus(t, ic.browse(t, ij, ic.req("GET", "/me", "")), 200, "")
	})

	t.Run("rate limits", func(t *testing.T) {
		rl := servertest.Start(t, servertest.Options{})
		rc := newOASChecker(t, rl)
		for i := 0; ; i++ {
			r := rc.check(t, rc.req("POST", "/login", `{"username":"test","password":"wrong"}`))
			if r.StatusCode == 429 {
				wantStatus(t, r, 429, "rate_limited")
				break
			}
			wantStatus(t, r, 401, "invalid_credentials")
			if i == 20 {
				t.Fatal("failed logins were never rate limited")
			}
		}

		pw := servertest.Start(t, servertest.Options{})
		pc := newOASChecker(t, pw)
		tok := pc.login(t)
		for i := 0; ; i++ {
			r := pc.check(t, pc.req("POST", "/password", `{"old_password":"wrong","new_password":"second password"}`, "Authorization", "Bearer "+tok.access))
			if r.StatusCode == 429 {
				wantStatus(t, r, 429, "rate_limited")
				break
			}
			wantStatus(t, r, 401, "invalid_credentials")
			if i == 20 {
				t.Fatal("wrong current passwords were never rate limited")
			}
		}

		page := servertest.Start(t, servertest.Options{})
		ac := newOASChecker(t, page)
		body := url.Values{"username": {"test"}, "password": {"wrong"}}.Encode()
		for i := 0; ; i++ {
			r := ac.check(t, ac.req("POST", "/account/login", body, ctForm...))
			if r.StatusCode == 429 {
				if r.Header.Get("Retry-After") == "" {
					t.Error("HTML 429 without Retry-After")
				}
				break
			}
			wantStatus(t, r, 401, "")
			if i == 20 {
				t.Fatal("failed sign-ins were never rate limited")
			}
		}
	})

	t.Run("refresh", func(t *testing.T) {
		p := c.login(t)
		r := c.check(t, c.req("POST", "/refresh", "", "Authorization", "Bearer "+p.refresh))
		wantStatus(t, r, 200, "")
		n := pairOf(t, r)
		r = c.check(t, c.req("POST", "/refresh", `{"refresh_token":"`+n.refresh+`","access_token":"`+n.access+`"}`))
		wantStatus(t, r, 200, "")
		n2 := pairOf(t, r)
		c.check(t, c.req("POST", "/refresh", `{"refresh_token":"`+n2.refresh+`"}`, "Authorization", "Bearer "+n2.access))
		wantStatus(t, c.check(t, c.req("POST", "/refresh", "")), 401, "missing_token")
		wantStatus(t, c.check(t, c.req("POST", "/refresh", "", "Authorization", "Bearer "+p.access)), 401, "wrong_token_type")
		wantStatus(t, c.check(t, c.req("POST", "/refresh", "", "Authorization", "Bearer lk_rt_garbage")), 401, "invalid_token")
		wantStatus(t, c.check(t, c.req("POST", "/refresh", "", "Authorization", "Bearer a b c")), 401, "invalid_token")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/refresh", `{`)), 400, "invalid_request")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/refresh", `{"refresh_token":5}`)), 400, "invalid_request")

		// Cookie refresh: with the CSRF header, and without it.
		j := servertest.NewJar(nil)
		wantStatus(t, c.browse(t, j, c.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`)), 200, "")
		wantStatus(t, c.browse(t, j, c.req("POST", "/refresh", "")), 403, "csrf_failed")
		r = c.browse(t, j, c.req("POST", "/refresh", "", "X-CSRF-Token", j.Get("__Host-lk_csrf")))
		wantStatus(t, r, 200, "")
		if b := jsonOf(t, r); b["refresh_token"] != nil {
			t.Errorf("cookie refresh put the token in the body: %v", b)
		}
		bad := servertest.NewJar(map[string]string{"__Host-lk_refresh": "lk_rt_nonsense", "__Host-lk_csrf": "x"})
		wantStatus(t, c.browse(t, bad, c.req("POST", "/refresh", "", "X-CSRF-Token", "x")), 401, "invalid_token")
	})

	t.Run("expiry and reuse", func(t *testing.T) {
		te := servertest.Start(t, servertest.Options{})
		tc := newOASChecker(t, te)
		p := tc.login(t)
		n := pairOf(t, tc.check(t, tc.req("POST", "/refresh", "", "Authorization", "Bearer "+p.refresh)))
		te.Clock.Add(11 * time.Second)
		wantStatus(t, tc.check(t, tc.req("POST", "/refresh", "", "Authorization", "Bearer "+p.refresh)), 401, "refresh_reused")
		wantStatus(t, tc.check(t, tc.req("GET", "/protected", "", "Authorization", "Bearer "+n.access)), 401, "token_revoked")
		q := tc.login(t)
		te.Clock.Add(16 * time.Minute)
		wantStatus(t, tc.check(t, tc.req("GET", "/protected", "", "Authorization", "Bearer "+q.access)), 401, "token_expired")
		wantStatus(t, tc.check(t, tc.req("GET", "/me", "", "Authorization", "Bearer "+q.access)), 401, "token_expired")
		te.Clock.Add(31 * 24 * time.Hour)
		wantStatus(t, tc.check(t, tc.req("POST", "/refresh", "", "Authorization", "Bearer "+q.refresh)), 401, "session_expired")
	})

	t.Run("protected and me", func(t *testing.T) {
		p := c.login(t)
		auth := []string{"Authorization", "Bearer " + p.access}
		for _, path := range []string{"/protected", "/me", "/sessions"} {
			wantStatus(t, c.check(t, c.req("GET", path, "", auth...)), 200, "")
			wantStatus(t, c.check(t, c.req("HEAD", path, "", auth...)), 200, "")
			wantStatus(t, c.check(t, c.req("GET", path, "")), 401, "missing_token")
			wantStatus(t, c.check(t, c.req("HEAD", path, "")), 401, "")
			wantStatus(t, c.check(t, c.req("GET", path, "", "Authorization", "Bearer garbage")), 401, "invalid_token")
			wantStatus(t, c.check(t, c.req("GET", path, "", "Authorization", "Bearer "+p.refresh)), 401, "wrong_token_type")
			// The JSON token location reads GET bodies too.
			wantStatus(t, c.check(t, c.req("GET", path, `{`, ctJSON...)), 400, "invalid_request")
			wantStatus(t, c.check(t, c.req("GET", path, `{"access_token":"`+p.access+`"}`, ctJSON...)), 200, "")
		}
		// Cookies, and an implicit refresh from the refresh cookie alone.
		j := servertest.NewJar(nil)
		c.browse(t, j, c.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
		wantStatus(t, c.browse(t, j, c.req("GET", "/me", "")), 200, "")
		j.Delete("__Host-lk_access")
		r := c.browse(t, j, c.req("GET", "/protected", ""))
		wantStatus(t, r, 200, "")
		if j.Get("__Host-lk_access") == "" {
			t.Error("the implicit refresh set no access cookie")
		}
	})

	t.Run("sessions", func(t *testing.T) {
		a, b := c.login(t), c.login(t)
		auth := []string{"Authorization", "Bearer " + a.access}
		r := c.check(t, c.req("GET", "/sessions", "", auth...))
		wantStatus(t, r, 200, "")
		if list, _ := jsonOf(t, r)["sessions"].([]any); len(list) < 2 {
			t.Errorf("sessions = %v", list)
		}
		wantStatus(t, c.check(t, c.req("DELETE", "/sessions/"+b.session, "", auth...)), 204, "")
		wantStatus(t, c.check(t, c.req("DELETE", "/sessions/"+b.session, "", auth...)), 404, "not_found")
		wantStatus(t, c.check(t, c.req("DELETE", "/sessions/nonexistent", "", auth...)), 404, "not_found")
		wantStatus(t, c.check(t, c.req("DELETE", "/sessions/"+a.session, "")), 401, "missing_token")
		wantStatus(t, c.check(t, c.req("DELETE", "/sessions/"+a.session, "", "Authorization", "Bearer "+b.access)), 401, "token_revoked")
		wantStatus(t, c.check(t, c.req("DELETE", "/sessions/x", `{"access_token":"`+a.access+`"}`)), 404, "not_found")
		wantStatus(t, c.checkOutside(t, c.req("DELETE", "/sessions/x", `{"access_token":`)), 400, "invalid_request")

		j := servertest.NewJar(nil)
		c.browse(t, j, c.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
		wantStatus(t, c.browse(t, j, c.req("DELETE", "/sessions/"+a.session, "")), 403, "csrf_failed")
		wantStatus(t, c.browse(t, j, c.req("DELETE", "/sessions/"+a.session, "", "X-CSRF-Token", j.Get("__Host-lk_csrf"))), 204, "")
	})

	t.Run("password", func(t *testing.T) {
		wantStatus(t, c.check(t, c.req("POST", "/register", `{"username":"dora","password":"first password"}`)), 201, "")
		p := c.loginAs(t, "dora", "first password")
		refreshed := pairOf(t, c.check(t, c.req("POST", "/refresh", "", "Authorization", "Bearer "+p.refresh)))
		change := `{"old_password":"first password","new_password":"second password"}`
		wantStatus(t, c.check(t, c.req("POST", "/password", change, "Authorization", "Bearer "+refreshed.access)), 403, "fresh_token_required")
		wantStatus(t, c.check(t, c.req("POST", "/password", change)), 401, "missing_token")
		wantStatus(t, c.check(t, c.req("POST", "/password", `{"old_password":"wrong","new_password":"second password"}`, "Authorization", "Bearer "+p.access)), 401, "invalid_credentials")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/password", `{"old_password":"first password","new_password":"short"}`, "Authorization", "Bearer "+p.access)), 400, "weak_password")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/password", `{"old_password":"first password"}`, "Authorization", "Bearer "+p.access)), 400, "invalid_request")
		q := c.loginAs(t, "dora", "first password")
		wantStatus(t, c.check(t, c.req("POST", "/password", change, "Authorization", "Bearer "+q.access)), 204, "")

		j := servertest.NewJar(nil)
		c.browse(t, j, c.req("POST", "/login", `{"username":"dora","password":"second password","cookies":true}`))
		wantStatus(t, c.browse(t, j, c.req("POST", "/password", `{"old_password":"second password","new_password":"third password"}`)), 403, "csrf_failed")
		wantStatus(t, c.browse(t, j, c.req("POST", "/password", `{"old_password":"second password","new_password":"third password"}`, "X-CSRF-Token", j.Get("__Host-lk_csrf"))), 204, "")
	})

	t.Run("logout", func(t *testing.T) {
		a, b := c.login(t), c.login(t)
		wantStatus(t, c.checkOutside(t, c.req("POST", "/logout?scope=bogus", "", "Authorization", "Bearer "+a.access)), 400, "invalid_request")
		wantStatus(t, c.check(t, c.req("POST", "/logout", "")), 401, "missing_token")
		wantStatus(t, c.check(t, c.req("POST", "/logout?scope=others", "", "Authorization", "Bearer "+a.access)), 204, "")
		wantStatus(t, c.check(t, c.req("POST", "/logout", "", "Authorization", "Bearer "+b.access)), 401, "token_revoked")
		wantStatus(t, c.check(t, c.req("POST", "/logout?scope=local", `{"access_token":"`+a.access+`"}`)), 204, "")
		e2 := c.login(t)
		wantStatus(t, c.check(t, c.req("POST", "/logout?scope=global", "", "Authorization", "Bearer "+e2.access)), 204, "")

		j := servertest.NewJar(nil)
		c.browse(t, j, c.req("POST", "/login", `{"username":"test","password":"test","cookies":true}`))
		wantStatus(t, c.browse(t, j, c.req("POST", "/logout", "")), 403, "csrf_failed")
		wantStatus(t, c.browse(t, j, c.req("POST", "/logout", "", "X-CSRF-Token", j.Get("__Host-lk_csrf"))), 204, "")
		if j.Get("__Host-lk_refresh") != "" {
			t.Error("logout left the refresh cookie")
		}
	})

	t.Run("account page", func(t *testing.T) {
		j := servertest.NewJar(nil)
		r := c.browse(t, j, c.req("GET", "/account", ""))
		wantStatus(t, r, 200, "")
		if !strings.Contains(string(bodyOf(t, r)), `id="sign-in"`) {
			t.Errorf("account page without a session: %.200s", bodyOf(t, r))
		}
		wantStatus(t, c.browse(t, j, c.req("HEAD", "/account", "")), 200, "")
		form := func(v url.Values) string { return v.Encode() }
		wantStatus(t, c.browse(t, j, c.req("POST", "/account/login", form(url.Values{"username": {"test"}, "password": {"wrong"}}), ctForm...)), 401, "")
		wantStatus(t, c.checkOutside(t, c.req("POST", "/account/login", form(url.Values{"username": {"test"}}), ctForm...)), 400, "")
		wantStatus(t, c.check(t, c.req("POST", "/account/login", form(url.Values{"username": {"test"}, "password": {"test"}}), append(ctForm, "Sec-Fetch-Site", "cross-site")...)), 403, "csrf_failed")
		r = c.browse(t, j, c.req("POST", "/account/login", form(url.Values{"username": {"test"}, "password": {"test"}}), ctForm...))
		wantStatus(t, r, 303, "")
		r = c.browse(t, j, c.req("GET", "/account", ""))
		if !strings.Contains(string(bodyOf(t, r)), "Signed in as") {
			t.Errorf("account page after sign-in: %.300s", bodyOf(t, r))
		}
		// A bad cookie shows the sign-in form (and clears the cookies).
		wantStatus(t, c.browse(t, servertest.NewJar(map[string]string{"__Host-lk_access": "garbage"}), c.req("GET", "/account", "")), 200, "")

		other := c.login(t)
		csrf := form(url.Values{"csrf_token": {j.Get("__Host-lk_csrf")}})
		wantStatus(t, c.browse(t, j, c.req("POST", "/account/sessions/"+other.session+"/revoke", "x=1", ctForm...)), 403, "csrf_failed")
		wantStatus(t, c.check(t, c.req("POST", "/account/sessions/"+other.session+"/revoke", csrf, ctForm...)), 401, "missing_token")
		r = c.browse(t, j, c.req("POST", "/account/sessions/"+other.session+"/revoke", csrf, ctForm...))
		wantStatus(t, r, 303, "")
		wantStatus(t, c.browse(t, j, c.req("GET", r.Header.Get("Location"), "")), 200, "")
		wantStatus(t, c.browse(t, j, c.req("POST", "/account/sessions/"+other.session+"/revoke", csrf, ctForm...)), 404, "not_found")

		wantStatus(t, c.check(t, c.req("POST", "/account/logout", "scope=global", ctForm...)), 303, "")
		wantStatus(t, c.browse(t, j, c.req("POST", "/account/logout", "scope=global", ctForm...)), 403, "csrf_failed")
		wantStatus(t, c.browse(t, j, c.req("POST", "/account/logout", csrf, ctForm...)), 303, "")
		if j.Get("__Host-lk_access") != "" {
			t.Errorf("sign-out left the cookies: %v", j)
		}
		// Create account, change password, confirm the password.
		nj := servertest.NewJar(nil)
		reg := func(name, pw string) url.Values { return url.Values{"username": {name}, "password": {pw}} }
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/register", form(reg("oas-new", "short")), ctForm...)), 400, "")
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/register", form(reg("test", "long enough")), ctForm...)), 409, "")
		wantStatus(t, c.check(t, c.req("POST", "/account/register", form(reg("oas-x", "long enough")), append(ctForm, "Sec-Fetch-Site", "cross-site")...)), 403, "csrf_failed")
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/register", form(reg("oas-new", "long enough")), ctForm...)), 303, "")
		nc := func(v url.Values) string { v.Set("csrf_token", nj.Get("__Host-lk_csrf")); return form(v) }
		pw := func(old, nw string) url.Values { return url.Values{"old_password": {old}, "new_password": {nw}} }
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/password", nc(pw("wrong", "another password")), ctForm...)), 401, "")
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/password", nc(pw("long enough", "short")), ctForm...)), 400, "")
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/password", form(pw("long enough", "another password")), ctForm...)), 403, "csrf_failed")
		wantStatus(t, c.check(t, c.req("POST", "/account/password", form(pw("long enough", "another password")), ctForm...)), 401, "missing_token")
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/password", nc(pw("long enough", "another password")), ctForm...)), 303, "")
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/reauth", nc(url.Values{"password": {"wrong"}}), ctForm...)), 401, "")
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/reauth", form(url.Values{"password": {"another password"}}), ctForm...)), 403, "csrf_failed")
		wantStatus(t, c.browse(t, nj, c.req("POST", "/account/reauth", nc(url.Values{"password": {"another password"}}), ctForm...)), 303, "")
		stale := servertest.NewJar(map[string]string{"__Host-lk_access": other.access, "__Host-lk_csrf": "x"})
		wantStatus(t, c.browse(t, stale, c.req("POST", "/account/logout", "csrf_token=x", ctForm...)), 401, "token_revoked")
	})
}

// oasChecker sends requests to a test server and checks each request and its
// response against the OpenAPI document.
type oasChecker struct {
	e      *servertest.Env
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	// providers tells that the server has OpenID Connect providers, and so
	// the paths marked x-requires-providers.
	providers bool
}

func newOASChecker(t testing.TB, e *servertest.Env) *oasChecker {
	t.Helper()
	return newOASCheckerFor(t, e, server.OpenAPI())
}

// newOASCheckerFor checks against the document src instead of the server's.
func newOASCheckerFor(t testing.TB, e *servertest.Env, src []byte) *oasChecker {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(src)
	if err != nil {
		t.Fatalf("loading the document: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: e.URL}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("routing the document: %v", err)
	}
	return &oasChecker{e: e, doc: doc, router: router, opts: &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            false,
	}}
}

// req builds a request to the test server. body "" means none; a body is sent
// as JSON unless hdr (name, value pairs) sets another Content-Type.
func (c *oasChecker) req(method, path, body string, hdr ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.e.URL+path, rd)
	if err != nil {
		panic(err) // only a bad method or URL, which the test writes
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// check sends req, which must be valid under the document, and fails the test
// unless the response matches the document. The response's body stays
// readable (see bodyOf).
func (c *oasChecker) check(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	return c.do(t, req, true)
}

// checkOutside sends a request the document describes as invalid (a test of
// the server's input checks): the document must refuse it, and the server's
// answer must still match the document.
func (c *oasChecker) checkOutside(t testing.TB, req *http.Request) *http.Response {
	t.Helper()
	return c.do(t, req, false)
}

// browse is check with the cookies of j, keeping the cookies the response sets.
func (c *oasChecker) browse(t testing.TB, j *servertest.Jar, req *http.Request) *http.Response {
	t.Helper()
	if h := j.Header(); h != "" {
		req.Header.Set("Cookie", h)
	}
	r := c.check(t, req)
	j.Update(r.Cookies())
	return r
}

func (c *oasChecker) do(t testing.TB, req *http.Request, validRequest bool) *http.Response {
	t.Helper()
	ctx := context.Background()
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			t.Fatal(err)
		}
		req.Body.Close()
	}
	setBody := func(r *http.Request) {
		if body == nil {
			r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	vreq := req.Clone(ctx)
	setBody(vreq)
	setBody(req)
	what := req.Method + " " + req.URL.RequestURI()

	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: reading the response: %v", what, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	what += " -> " + resp.Status

	route, params, err := c.router.FindRoute(vreq)
	if err != nil || (!c.providers && providersOnly(route.PathItem)) {
		c.checkUnrouted(t, vreq, resp, raw, what)
		return resp
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: c.opts}
	err = openapi3filter.ValidateRequest(ctx, in)
	switch {
	case validRequest && err != nil:
		t.Errorf("%s: the request does not match the document: %v", what, err)
	case !validRequest && err == nil:
		t.Errorf("%s: the document accepts this request, which the test sends as invalid", what)
	}
	if req.Method == http.MethodHead && route.Operation.Responses.Status(resp.StatusCode) == nil { // ValidateResponse skips HEAD
		t.Errorf("%s: status %d is not documented for %s %s", what, resp.StatusCode, route.Method, route.Path)
	}
	c.validateResponse(t, in, resp, raw, what)
	return resp
}

// checkUnrouted checks a request the document has no operation for: a path it
// does not list must be answered with components/responses/NotFound, and a
// listed path with MethodNotAllowed, whose Allow names the documented methods.
func (c *oasChecker) checkUnrouted(t testing.TB, req *http.Request, resp *http.Response, raw []byte, what string) {
	t.Helper()
	methods, listed := c.pathMethods(req.URL.Path)
	status, name := http.StatusNotFound, "NotFound"
	if listed {
		status, name = http.StatusMethodNotAllowed, "MethodNotAllowed"
		if got, want := resp.Header.Get("Allow"), strings.Join(methods, ", "); got != want {
			t.Errorf("%s: Allow = %q, but the document lists %q", what, got, want)
		}
	}
	if resp.StatusCode != status {
		t.Errorf("%s: the document has no operation for this request, so the answer must be %d", what, status)
		return
	}
	op := &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(status, c.doc.Components.Responses[name]))}
	route := &routers.Route{Spec: c.doc, Path: req.URL.Path, Method: req.Method, Operation: op}
	in := &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: c.opts}
	c.validateResponse(t, in, resp, raw, what)
}

func (c *oasChecker) validateResponse(t testing.TB, in *openapi3filter.RequestValidationInput, resp *http.Response, raw []byte, what string) {
	t.Helper()
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(raw)),
		Options:                c.opts,
	})
	if err != nil {
		t.Errorf("%s: the response does not match the document: %v\nbody: %.300s", what, err, raw)
	}
}

// pathMethods returns the methods the document lists for the path template
// that matches p, sorted as an Allow header lists them.
func (c *oasChecker) pathMethods(p string) ([]string, bool) {
	for tmpl, item := range c.doc.Paths.Map() {
		if !c.providers && providersOnly(item) {
			continue
		}
		re := "^" + regexp.MustCompile(`\\\{[^}]*\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`) + "$"
		if regexp.MustCompile(re).MatchString(p) {
			var ms []string
			for m := range item.Operations() {
				ms = append(ms, m)
			}
			slices.Sort(ms)
			return ms, true
		}
	}
	return nil, false
}

func (c *oasChecker) login(t testing.TB) pair {
	t.Helper()
	return c.loginAs(t, "test", "test")
}

func (c *oasChecker) loginAs(t testing.TB, user, pw string) pair {
	t.Helper()
	r := c.check(t, c.req("POST", "/login", `{"username":"`+user+`","password":"`+pw+`"}`))
	wantStatus(t, r, 200, "")
	return pairOf(t, r)
}

// providersOnly tells whether the document marks a path as served only by
// servers with OpenID Connect providers.
func providersOnly(item *openapi3.PathItem) bool {
	v, _ := item.Extensions["x-requires-providers"].(bool)
	return v
}

// concrete is a request path for the path template p.
func concrete(p string) string {
	return strings.NewReplacer("{id}", "0123456789abcdef0123456789abcdef", "{provider}", "example").Replace(p)
}

// strs is a JSON array of strings as a slice (nil for anything else).
func strs(v any) []string {
	var out []string
	a, _ := v.([]any)
	for _, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// pair is a token pair from login or refresh.
type pair struct{ access, refresh, session string }

// noRedirects shows redirects as they are, so tests see their Set-Cookie.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// bodyOf returns the body of a response from check, leaving it readable.
func bodyOf(t testing.TB, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b
}

// jsonOf decodes a JSON object response (nil for another body).
func jsonOf(t testing.TB, r *http.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if b := bodyOf(t, r); len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("body is not JSON: %q", b)
		}
	}
	return m
}

func pairOf(t testing.TB, r *http.Response) pair {
	t.Helper()
	m := jsonOf(t, r)
	s := func(k string) string { v, _ := m[k].(string); return v }
	return pair{s("access_token"), s("refresh_token"), s("session_id")}
}

// wantStatus checks the status and, for a JSON error, its code ("" for none).
func wantStatus(t testing.TB, r *http.Response, status int, code string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s = %d %.300s, want %d", r.Request.Method, r.Request.URL.RequestURI(), r.StatusCode, bodyOf(t, r), status)
	}
	if code != "" {
		if got, _ := jsonOf(t, r)["error"].(string); got != code {
			t.Fatalf("%s %s = %d %.300s, want error %q", r.Request.Method, r.Request.URL.RequestURI(), r.StatusCode, bodyOf(t, r), code)
		}
	}
}

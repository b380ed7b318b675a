package browser_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/server"
)

// oauth4webapiJS is the ES module of oauth4webapi, the independent OAuth
// client the test page loads; `npm ci --prefix interop/browser/spa` installs
// it at the version spa/package-lock.json pins.
var oauth4webapiJS = filepath.Join("spa", "node_modules", "oauth4webapi", "build", "index.js")

// oauthSPA serves a page that can import oauth4webapi from /oauth4webapi.js,
// on a loopback port of its own.
func oauthSPA(t *testing.T) string {
	t.Helper()
	js, err := os.ReadFile(oauth4webapiJS)
	if err != nil {
		t.Fatalf("oauth4webapi is not installed (%v): run npm ci --prefix interop/browser/spa", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>oauth4webapi app</title><h1>app</h1>`))
	})
	mux.HandleFunc("/oauth4webapi.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(js)
	})
	return servePort(t, mux)
}

// oauthFlow is an SPA's whole life with oauth4webapi: discovery (RFC 8414),
// the password grant as the public client "spa", a protected request to
// /me, a refresh with rotation, a replay of the spent refresh token, and
// revocation. Each step is "ok …" or the error the script got.
const oauthFlow = `
	const oauth = await import("/oauth4webapi.js");
	const api = API, out = {}, insecure = {[oauth.allowInsecureRequests]: true};
	const step = async (name, f) => { try { out[name] = "ok " + await f(); } catch (e) { out[name] = e.code ? e.code + (e.error ? " " + e.error : "") : String(e); } };
	const client = {client_id: "spa"};
	let as, tokens, first;
	await step("discovery", async () => {
		const r = await oauth.discoveryRequest(new URL(api), {algorithm: "oauth2", ...insecure});
		as = await oauth.processDiscoveryResponse(new URL(api), r);
		return as.token_endpoint === api + "/oauth/token";
	});
	// Without the document, the endpoints as the app would be configured.
	as ??= {issuer: api, token_endpoint: api + "/oauth/token", revocation_endpoint: api + "/oauth/revoke"};
	await step("password", async () => {
		const r = await oauth.genericTokenEndpointRequest(as, client, oauth.None(), "password",
			new URLSearchParams({username: "alice", password: "correct horse battery"}), insecure);
		tokens = await oauth.processGenericTokenEndpointResponse(as, client, r);
		first = tokens.refresh_token;
		return tokens.token_type;
	});
	await step("me", async () => {
		const r = await oauth.protectedResourceRequest(tokens.access_token, "GET", new URL(api + "/me"), new Headers(), null, insecure);
		return r.status + " " + (await r.json()).username;
	});
	await step("refresh", async () => {
		const r = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), first, insecure);
		tokens = await oauth.processRefreshTokenResponse(as, client, r);
		return tokens.refresh_token !== first;
	});
	await step("me again", async () => {
		const r = await oauth.protectedResourceRequest(tokens.access_token, "GET", new URL(api + "/me"), new Headers(), null, insecure);
		return r.status;
	});
	await step("revoke", async () => {
		const r = await oauth.revocationRequest(as, client, oauth.None(), tokens.refresh_token, insecure);
		await oauth.processRevocationResponse(r);
		return "revoked";
	});
	await step("after revoke", async () => {
		const r = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, insecure);
		await oauth.processRefreshTokenResponse(as, client, r);
		return "refreshed";
	});
	return out;
`

// oauth4webapi in a page on another origin, as the public client "spa"
// whose registered origin that is, goes through discovery, the password
// grant, a protected request, refresh with rotation and revocation; the same
// script on an origin no client lists cannot read a single response.
func TestOAuth4WebAPIFromClientOrigin(t *testing.T) {
	allowed, other := oauthSPA(t), oauthSPA(t)
	a := startApp(t, func(a *app, cfg *server.Config) {
		cfg.Clients = oauth.New(a.st, nil)
		if _, _, err := cfg.Clients.Add(context.Background(), "spa", oauth.Options{Origins: []string{"http://127.0.0.1:" + allowed}}); err != nil {
			t.Fatal(err)
		}
	})
	ctx := browser(t)

	open(t, ctx, "http://127.0.0.1:"+allowed+"/")
	var got map[string]string
	run(t, ctx, flow(oauthFlow, a.url), &got)
	wantSteps(t, "the client's origin", got, map[string]string{"discovery": "ok true", "password": "ok bearer", "me": "ok 200 alice",
		"refresh": "ok true", "me again": "ok 200", "revoke": "ok revoked", "after revoke": "OAUTH_RESPONSE_BODY_ERROR invalid_grant"})
	t.Logf("from the client's origin: %v", got)

	open(t, ctx, "http://127.0.0.1:"+other+"/")
	got = nil
	run(t, ctx, flow(oauthFlow, a.url), &got)
	t.Logf("from an origin no client lists: %v", got)
	for _, step := range []string{"discovery", "password"} {
		if got[step] != "TypeError: Failed to fetch" {
			t.Errorf("from an origin no client lists, %s: got %q, want a failed fetch", step, got[step])
		}
	}
	// The refused grant started no session: alice has only the allowed page's.
	u, err := a.st.UserByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := a.st.UserSessions(context.Background(), u.ID); err != nil || len(ss) != 1 {
		t.Errorf("alice has %d sessions after the refused page's password grant (%v), want only the allowed page's", len(ss), err)
	}
}

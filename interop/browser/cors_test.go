package browser_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/server"
)

// spaPort serves an empty page, the single-page app whose script calls the
// API from another origin, on a loopback port of its own.
func spaPort(t *testing.T) string {
	return servePort(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>app</title><h1>app</h1>`))
	}))
}

// servePort serves h on a loopback port of its own and returns the port.
func servePort(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// run evaluates the async function body js in the page and decodes the JSON
// string it returns into out.
func run(t *testing.T, ctx context.Context, js string, out any) {
	t.Helper()
	var s string
	err := chromedp.Run(ctx, chromedp.Evaluate(`(async () => { `+js+` })().then(JSON.stringify)`, &s,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("%s returned %q: %v", js, s, err)
	}
}

// bearerFlow signs in with tokens in the body, calls /me, reads an error's
// WWW-Authenticate (null unless exposed), refreshes and signs out; each step is "ok", a status, or
// the error the script got.
const bearerFlow = `
	const api = API, out = {};
	const step = async (name, f) => { try { out[name] = await f(); } catch (e) { out[name] = String(e); } };
	let pair = {};
	await step("login", async () => {
		const r = await fetch(api + "/login", {method: "POST", credentials: "include",
			headers: {"Content-Type": "application/json"},
			body: JSON.stringify({username: "alice", password: "correct horse battery"})});
		pair = await r.json();
		return r.status + " " + (pair.access_token ? "token" : "no token");
	});
	await step("me", async () => {
		const r = await fetch(api + "/me", {credentials: "include", headers: {Authorization: "Bearer " + pair.access_token}});
		return r.status + " " + (await r.json()).username;
	});
	await step("challenge", async () => {
		const r = await fetch(api + "/me", {credentials: "include"});
		return r.status + " " + r.headers.get("WWW-Authenticate");
	});
	await step("refresh", async () => {
		const r = await fetch(api + "/refresh", {method: "POST", credentials: "include",
			headers: {Authorization: "Bearer " + pair.refresh_token}});
		pair = await r.json();
		return r.status + " " + (pair.access_token ? "token" : "no token");
	});
	await step("logout", async () => {
		const r = await fetch(api + "/logout", {method: "POST", credentials: "include", headers: {Authorization: "Bearer " + pair.access_token}});
		return String(r.status);
	});
	await step("healthz", async () => String((await fetch(api + "/healthz")).status));
	return out;`

// cookieFlow signs in in cookie mode, calls /me with the cookies, and signs
// out with the CSRF token of the login body.
const cookieFlow = `
	const api = API, out = {};
	const step = async (name, f) => { try { out[name] = await f(); } catch (e) { out[name] = String(e); } };
	let body = {};
	await step("login", async () => {
		const r = await fetch(api + "/login", {method: "POST", credentials: "include",
			headers: {"Content-Type": "application/json"},
			body: JSON.stringify({username: "alice", password: "correct horse battery", cookies: true})});
		body = await r.json();
		return r.status + " " + (body.access_token ? "token" : "no token") + " " + (body.csrf_token ? "csrf" : "no csrf");
	});
	await step("me", async () => {
		const r = await fetch(api + "/me", {credentials: "include"});
		return r.status + " " + (await r.json()).username;
	});
	await step("logout", async () => {
		const r = await fetch(api + "/logout", {method: "POST", credentials: "include", headers: {"X-CSRF-Token": body.csrf_token}});
		return String(r.status);
	});
	await step("after", async () => String((await fetch(api + "/me", {credentials: "include"})).status));
	return out;`

// cookieExpiredMe continues cookieFlow's sign-in (without its sign-out)
// after the access cookie has expired: /me refreshes implicitly and gives the
// CSRF token back, as to a page that reloaded and lost the login body's.
// cookieExpiredLogout then signs out with that token.
const (
	cookieExpiredMe = `
	const r = await fetch(API + "/me", {credentials: "include"});
	const body = await r.json();
	window.__lkCSRF = body.csrf_token || "";
	return r.status + " " + body.username + " " + (window.__lkCSRF ? "csrf" : "no csrf");`
	cookieExpiredLogout = `
	const api = API, out = {};
	let r = await fetch(api + "/logout", {method: "POST", credentials: "include", headers: {"X-CSRF-Token": window.__lkCSRF}});
	out.logout = String(r.status);
	r = await fetch(api + "/me", {credentials: "include"});
	out.after = String(r.status);
	return out;`
)

// apiCookie is the value of the API's cookie name in the browser ("" if none).
func apiCookie(t *testing.T, ctx context.Context, api, name string) string {
	t.Helper()
	var cs []*network.Cookie
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cs, err = network.GetCookies().WithURLs([]string{api}).Do(ctx)
		return err
	})); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func flow(js, api string) string {
	return strings.Replace(js, "API", strconv.Quote(api), 1)
}

func wantSteps(t *testing.T, origin string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("from %s, %s: got %q, want %q", origin, k, got[k], w)
		}
	}
}

// A page on a listed origin uses the API with Bearer tokens, and from a
// sibling origin of the same site with cookies; a page on an unlisted origin
// cannot read a single response.
func TestCORSFromAnotherOrigin(t *testing.T) {
	listed, unlisted := spaPort(t), spaPort(t)
	// localhost:PORT is a sibling origin of the app's (same site);
	// 127.0.0.1:PORT is another site.
	a := startApp(t, func(a *app, cfg *server.Config) {
		cfg.CORSOrigins = []string{"http://localhost:" + listed, "http://127.0.0.1:" + listed}
	})
	ctx := browser(t)

	open(t, ctx, "http://127.0.0.1:"+listed+"/")
	var got map[string]string
	run(t, ctx, flow(bearerFlow, a.url), &got)
	wantSteps(t, "a listed site", got, map[string]string{"login": "200 token", "me": "200 alice",
		"challenge": `401 Bearer realm="latchkey"`,
		"refresh":   "200 token", "logout": "204", "healthz": "200"})

	open(t, ctx, "http://localhost:"+listed+"/")
	got = nil
	run(t, ctx, flow(cookieFlow, a.url), &got)
	wantSteps(t, "a listed sibling origin", got, map[string]string{"login": "200 no token csrf", "me": "200 alice",
		"logout": "204", "after": "401"})

	// Sign in again, stop before signing out, and let the access token expire
	// (startApp gives it 2 s): /me refreshes implicitly across origins.
	got = nil
	run(t, ctx, flow(strings.Split(cookieFlow, `await step("logout"`)[0]+"return out;", a.url), &got)
	wantSteps(t, "a listed sibling origin", got, map[string]string{"login": "200 no token csrf", "me": "200 alice"})
	before := apiCookie(t, ctx, a.url, "__Host-lk_refresh")
	if before == "" {
		t.Fatal("no refresh cookie after the cookie sign-in from a listed sibling origin")
	}
	time.Sleep(2500 * time.Millisecond)
	var me string
	run(t, ctx, flow(cookieExpiredMe, a.url), &me)
	if me != "200 alice csrf" {
		t.Errorf("from a listed sibling origin, /me after the access token expired: got %q, want %q", me, "200 alice csrf")
	}
	if after := apiCookie(t, ctx, a.url, "__Host-lk_refresh"); after == "" || after == before {
		t.Error("the refresh cookie was not rotated by the implicit refresh from a listed sibling origin")
	}
	got = nil
	run(t, ctx, flow(cookieExpiredLogout, a.url), &got)
	wantSteps(t, "a listed sibling origin, after the implicit refresh", got, map[string]string{"logout": "204", "after": "401"})

	for _, origin := range []string{"http://127.0.0.1:" + unlisted, "http://localhost:" + unlisted} {
		open(t, ctx, origin+"/")
		for _, js := range []string{bearerFlow, cookieFlow} {
			got = nil
			run(t, ctx, flow(js, a.url), &got)
			for step, v := range got {
				if v != "TypeError: Failed to fetch" {
					t.Errorf("from unlisted %s, %s: the script got %q, want a failed fetch", origin, step, v)
				}
			}
			if len(got) == 0 {
				t.Errorf("from unlisted %s: no step ran", origin)
			}
		}
	}
}

package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/server"
)

// axePath is axe-core's browser build, installed by `npm ci` in axe/.
var axePath = filepath.Join("axe", "node_modules", "axe-core", "axe.min.js")

// axeSource reads axe-core; the browser tests that check accessibility fail
// (rather than skip) without it once Chromium is configured.
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(axePath)
	if err != nil {
		t.Fatalf("axe-core is missing (%v): run `npm ci --prefix interop/browser/axe`", err)
	}
	return string(b)
}

// withRegistration opens registration, so the page offers to create accounts,
// and has the page refresh its cookies only in the access token's last
// second (not the default 30 s), so that a sign-in stays fresh for the short
// access-token lifetimes of these tests.
func withRegistration(_ *app, cfg *server.Config) {
	cfg.Registration = true
	cfg.Middleware.RefreshWithin = time.Second
}

// withAudit records the server's security events in the app's store, so the
// signed-in page lists them.
func withAudit(t *testing.T) func(a *app, cfg *server.Config) {
	return func(a *app, cfg *server.Config) {
		rec := audit.New(audit.Config{Store: a.st})
		t.Cleanup(func() { rec.Close() })
		cfg.Observer, cfg.Audit = rec, a.st
	}
}

// violation is an axe-core finding, as much of it as a failure message needs.
type violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkAxe runs axe-core on the current page (injected through the DevTools
// protocol: the page's policy allows no script, and is not weakened) and fails
// on any serious or critical violation.
func checkAxe(t *testing.T, ctx context.Context, axe, state string) {
	t.Helper()
	var loaded bool
	eval(t, ctx, `typeof window.axe === "object"`, &loaded)
	if !loaded {
		if err := chromedp.Run(ctx, chromedp.Evaluate(axe+"; true", nil)); err != nil {
			t.Fatalf("injecting axe-core: %v", err)
		}
	}
	var found []violation
	js := `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" ") + " :: " + n.html)})))`
	await := func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, &found, await)); err != nil {
		t.Fatalf("running axe-core: %v", err)
	}
	for _, v := range found {
		t.Errorf("%s: axe %s (%s): %s\n\t%s", state, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
	}
}

// widths are the desktop and phone widths every state is checked at.
var widths = []int64{1280, 390}

// checkState checks the page as it is at desktop and phone width: axe-core,
// a screenshot of each, and no horizontal scrolling on the phone.
func checkState(t *testing.T, ctx context.Context, axe, state string) {
	t.Helper()
	for _, w := range widths {
		if err := chromedp.Run(ctx, chromedp.EmulateViewport(w, 844)); err != nil {
			t.Fatal(err)
		}
		checkAxe(t, ctx, axe, fmt.Sprintf("%s at %d px", state, w))
		var sizes []int
		eval(t, ctx, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`, &sizes)
		if sizes[0] > sizes[1] {
			t.Errorf("%s at %d px scrolls sideways: the page is %d px wide in a %d px window", state, w, sizes[0], sizes[1])
		}
		screenshot(t, ctx, fmt.Sprintf("account-%s-%d", state, w))
	}
}

// fill sets the form fields of the current page (selector → value).
func fill(t *testing.T, ctx context.Context, fields map[string]string) {
	t.Helper()
	var js strings.Builder
	for sel, v := range fields {
		fmt.Fprintf(&js, "document.querySelector(%s).value = %s;\n", strconv.Quote(sel), strconv.Quote(v))
	}
	eval(t, ctx, js.String()+"true", nil)
}

// text is the innerText of the first element matching sel ("" if none).
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	eval(t, ctx, `(e => e ? e.innerText : "")(document.querySelector(`+strconv.Quote(sel)+`))`, &s)
	return s
}

// loginAs starts a session outside the browser with the given User-Agent.
func loginAs(t *testing.T, url, user, pw, ua string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/login", strings.NewReader(`{"username":`+strconv.Quote(user)+`,"password":`+strconv.Quote(pw)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login as %s with %q = %d", user, ua, resp.StatusCode)
	}
}

const iPhoneSafari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"

// Each state of the account page, at desktop and phone width: accessible by
// axe-core's serious and critical rules, no sideways scrolling, a screenshot.
func TestAccountPageStates(t *testing.T) {
	const ttl = 6 * time.Second // a sign-in stays fresh for 5 s
	a := startAppTTL(t, ttl, withRegistration, withAudit(t))
	ctx := browser(t)
	axe := axeSource(t)

	open(t, ctx, a.url+"/account")
	checkState(t, ctx, axe, "signed-out")

	fill(t, ctx, map[string]string{"#username-input": "alice", "#password-input": "wrong password"})
	leave(t, ctx, `document.querySelector("#sign-in").click()`)
	if e := text(t, ctx, "#error"); !strings.Contains(e, "wrong") && !strings.Contains(e, "invalid") && !strings.Contains(e, "incorrect") {
		t.Fatalf("a wrong password shows %q", e)
	}
	checkState(t, ctx, axe, "error-wrong-password")

	fill(t, ctx, map[string]string{"#new-username": "bob", "#signup-password": "short"})
	leave(t, ctx, `document.querySelector("#create-account").click()`)
	if e := text(t, ctx, "#signup-password-error"); e == "" {
		t.Fatalf("a weak password shows no error by the field: %s", bodyText(ctx))
	}
	checkState(t, ctx, axe, "error-weak-password")

	// A taken name with markup in it: the error is by the field, the name
	// comes back as text, nothing of it becomes an element.
	evil := `<img src=x id=injected onerror=alert(1)>`
	resp, err := http.Post(a.url+"/register", "application/json", strings.NewReader(`{"username":`+strconv.Quote(evil)+`,"password":"long enough"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("registering a name with markup: %v %v", resp, err)
	}
	resp.Body.Close()
	open(t, ctx, a.url+"/account")
	fill(t, ctx, map[string]string{"#new-username": evil, "#signup-password": "long enough"})
	leave(t, ctx, `document.querySelector("#create-account").click()`)
	var echoed string
	var injected bool
	eval(t, ctx, `document.querySelector("#new-username").value`, &echoed)
	eval(t, ctx, `!!document.querySelector("#injected, img")`, &injected)
	if e := text(t, ctx, "#new-username-error"); e == "" || echoed != evil || injected {
		t.Fatalf("a taken name with markup: error %q, field %q, markup became an element: %v", e, echoed, injected)
	}
	checkState(t, ctx, axe, "error-username-taken")

	// Signed in, with sessions from other devices.
	for _, ua := range []string{"curl/8.5.0", iPhoneSafari, client.UserAgent} {
		loginAs(t, a.url, "alice", "correct horse battery", ua)
	}
	signIn(t, ctx, a.url)
	list := text(t, ctx, "#sessions")
	for _, want := range []string{"curl", "Safari 17 on iPhone", "latchkey Go client", "This device"} {
		if !strings.Contains(list, want) {
			t.Errorf("the device list lacks %q:\n%s", want, list)
		}
	}
	if !regexp.MustCompile(`Chrome \d+ on Linux`).MatchString(list) || !strings.Contains(list, "just now") {
		t.Errorf("the device list does not name this browser or says no relative time:\n%s", list)
	}
	var times []string
	eval(t, ctx, `[...document.querySelectorAll("#sessions time")].map(e => e.getAttribute("datetime") + "|" + e.title)`, &times)
	for _, x := range times {
		dt, title, _ := strings.Cut(x, "|")
		if _, err := time.Parse(time.RFC3339, dt); err != nil || !strings.HasSuffix(title, "UTC") {
			t.Errorf("a <time> has datetime %q and title %q", dt, title)
		}
	}
	if len(times) != 8 {
		t.Errorf("%d <time> elements for 4 sessions, want 8", len(times))
	}
	if ev := text(t, ctx, "#events"); !strings.Contains(ev, "sign-in failed") {
		t.Errorf("the recent security events say %q", ev)
	}
	checkState(t, ctx, axe, "signed-in")

	// Dark mode follows the system's preference.
	var light, dark string
	eval(t, ctx, `getComputedStyle(document.body).backgroundColor`, &light)
	if err := chromedp.Run(ctx, emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}})); err != nil {
		t.Fatal(err)
	}
	eval(t, ctx, `getComputedStyle(document.body).backgroundColor`, &dark)
	if light == dark {
		t.Errorf("the background is %s in light and dark mode alike", light)
	}
	checkState(t, ctx, axe, "signed-in-dark")
	if err := chromedp.Run(ctx, emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}})); err != nil {
		t.Fatal(err)
	}

	fill(t, ctx, map[string]string{"#old-password": "not my password", "#new-password": "a new password"})
	leave(t, ctx, `document.querySelector("#change-password").click()`)
	if e := text(t, ctx, "#old-password-error"); e == "" {
		t.Fatalf("a wrong current password shows no error by the field: %s", bodyText(ctx))
	}
	checkState(t, ctx, axe, "error-wrong-current-password")

	// The sign-in goes stale: the page asks for the password first.
	time.Sleep(ttl + 500*time.Millisecond)
	open(t, ctx, a.url+"/account")
	if text(t, ctx, "#reauth-prompt") == "" || text(t, ctx, "#change-password") != "" {
		t.Fatalf("a stale sign-in is not asked for the password again: %s", bodyText(ctx))
	}
	checkState(t, ctx, axe, "reauth-prompt")
	fill(t, ctx, map[string]string{"#reauth-password": "not my password"})
	leave(t, ctx, `document.querySelector("#reauth").click()`)
	if e := text(t, ctx, "#reauth-error"); e == "" {
		t.Fatalf("a wrong password at the prompt shows no error: %s", bodyText(ctx))
	}
	checkState(t, ctx, axe, "error-reauth-wrong-password")
	fill(t, ctx, map[string]string{"#reauth-password": "correct horse battery"})
	leave(t, ctx, `document.querySelector("#reauth").click()`)
	fill(t, ctx, map[string]string{"#old-password": "correct horse battery", "#new-password": "short"})
	leave(t, ctx, `document.querySelector("#change-password").click()`)
	if e := text(t, ctx, "#new-password-error"); e == "" {
		t.Fatalf("a weak new password shows no error by the field: %s", bodyText(ctx))
	}
	checkState(t, ctx, axe, "error-weak-new-password")

	// A change posted after the sign-in went stale is refused with the prompt.
	time.Sleep(ttl + 500*time.Millisecond)
	fill(t, ctx, map[string]string{"#old-password": "correct horse battery", "#new-password": "a new password"})
	leave(t, ctx, `document.querySelector("#change-password").click()`)
	if e := text(t, ctx, "#password-error"); !strings.Contains(e, "recent sign-in") || text(t, ctx, "#reauth") == "" {
		t.Fatalf("a stale change shows %q: %s", e, bodyText(ctx))
	}
	checkState(t, ctx, axe, "error-not-fresh")

	leave(t, ctx, `document.querySelector("#sign-out-everywhere").click()`)
	if s := text(t, ctx, "#status"); !strings.Contains(s, "signed out everywhere") {
		t.Fatalf("after signing out everywhere the page says %q", s)
	}
	checkState(t, ctx, axe, "signed-out-everywhere")
}

// press sends keys (typed text, kb.Tab, kb.Enter) to the page.
func press(t *testing.T, ctx context.Context, keys string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.KeyEvent(keys)); err != nil {
		t.Fatal(err)
	}
}

// tabTo presses Tab until the element matching sel has the focus.
func tabTo(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	for range 60 {
		var at bool
		eval(t, ctx, `document.activeElement && document.activeElement.matches(`+strconv.Quote(sel)+`)`, &at)
		if at {
			return
		}
		press(t, ctx, kb.Tab)
	}
	t.Fatalf("Tab never reaches %s: %s", sel, bodyText(ctx))
}

// typeInto tabs to a field and types text into it.
func typeInto(t *testing.T, ctx context.Context, sel, text string) {
	t.Helper()
	tabTo(t, ctx, sel)
	press(t, ctx, text)
}

// enter presses Enter on the focused control and waits for the next page.
func enter(t *testing.T, ctx context.Context) {
	t.Helper()
	eval(t, ctx, "window.__lkOld = true", nil)
	press(t, ctx, kb.Enter)
	waitFor(t, ctx, `!window.__lkOld && document.readyState === "complete"`)
}

// Every action of the page with the keyboard alone: Tab to it, Enter.
func TestAccountKeyboardOnly(t *testing.T) {
	const ttl = 8 * time.Second
	a := startAppTTL(t, ttl, withRegistration)
	ctx := browser(t)
	open(t, ctx, a.url+"/account")

	// Create an account.
	typeInto(t, ctx, "#new-username", "kim")
	typeInto(t, ctx, "#signup-password", "kim's password")
	enter(t, ctx)
	if h := heading(t, ctx); !strings.Contains(h, "kim") {
		t.Fatalf("after creating an account by keyboard the page says %q", h)
	}

	// Sign out another session.
	loginAs(t, a.url, "kim", "kim's password", "curl/8.5.0")
	open(t, ctx, a.url+"/account")
	var other string
	eval(t, ctx, `[...document.querySelectorAll("[data-session]")].find(e => !e.querySelector(".current")).dataset.session`, &other)
	tabTo(t, ctx, `[data-session="`+other+`"] button`)
	enter(t, ctx)
	if s := text(t, ctx, "#status"); !strings.Contains(s, "was signed out") || strings.Contains(text(t, ctx, "#sessions"), "curl") {
		t.Fatalf("after signing out the other session by keyboard: %q, devices %q", s, text(t, ctx, "#sessions"))
	}

	// Confirm the password once the sign-in is stale, then change it.
	time.Sleep(ttl + 500*time.Millisecond)
	open(t, ctx, a.url+"/account")
	typeInto(t, ctx, "#reauth-password", "kim's password")
	enter(t, ctx)
	typeInto(t, ctx, "#old-password", "kim's password")
	typeInto(t, ctx, "#new-password", "kim's new password")
	enter(t, ctx)
	if s := text(t, ctx, "#status"); !strings.Contains(s, "password was changed") {
		t.Fatalf("after changing the password by keyboard the page says %q: %s", s, bodyText(ctx))
	}

	// Sign out, sign in with the new password, sign out everywhere.
	tabTo(t, ctx, "#sign-out")
	enter(t, ctx)
	if h := heading(t, ctx); h != "Sign in" {
		t.Fatalf("after signing out by keyboard the page says %q", h)
	}
	typeInto(t, ctx, "#username-input", "kim")
	typeInto(t, ctx, "#password-input", "kim's new password")
	enter(t, ctx)
	if h := heading(t, ctx); !strings.Contains(h, "kim") {
		t.Fatalf("after signing in by keyboard the page says %q: %s", h, bodyText(ctx))
	}
	tabTo(t, ctx, "#sign-out-everywhere")
	enter(t, ctx)
	if s := text(t, ctx, "#status"); !strings.Contains(s, "signed out everywhere") {
		t.Fatalf("after signing out everywhere by keyboard the page says %q", s)
	}
}

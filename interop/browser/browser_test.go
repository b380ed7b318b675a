package browser_test

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/users"
)

// app is a latchkey server on localhost with a 2-second access token.
type app struct {
	url  string
	auth *latchkey.Auth
	st   *sqlite.DB
}

// startApp starts the app; each option may change the server's
// configuration, knowing the app's URL (which is also its issuer).
func startApp(t *testing.T, opts ...func(a *app, cfg *server.Config)) *app {
	t.Helper()
	return startAppTTL(t, 2*time.Second, opts...)
}

// startAppTTL is startApp with another access-token lifetime: how long a
// sign-in stays fresh.
func startAppTTL(t *testing.T, accessTTL time.Duration, opts ...func(a *app, cfg *server.Config)) *app {
	t.Helper()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "e2e.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	url := "http://localhost:" + port
	a, err := latchkey.New(ctx, latchkey.Config{Store: st, Secret: secret, Issuer: url, AccessTTL: accessTTL, RevocationDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	u, err := users.New(users.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Register(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	out := &app{url: url, auth: a, st: st}
	// Secure __Host- cookies, as in production: Chromium treats
	// http://localhost as a secure context.
	cfg := server.Config{Auth: a, Users: u}
	for _, o := range opts {
		o(out, &cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return out
}

// browser starts a headless Chromium with a fresh profile (its own cookie jar)
// and returns the context of its first tab; tab opens more tabs in it.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := os.Getenv("LATCHKEY_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("LATCHKEY_TEST_CHROMIUM not set (path to chromium): skipping the browser tests")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("LATCHKEY_TEST_CHROMIUM=%s: %v", bin, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profileDir(t)),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel2 := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(cancel2)
	return ctx
}

// tab opens another tab in the same profile as ctx.
func tab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	c, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	return c
}

// The page helpers below drive the browser through JavaScript and poll for
// their result: chromedp's own navigation tracking loses the document after a
// form submission in current Chromium.

// eval runs js in the page.
func eval(t *testing.T, ctx context.Context, js string, out any) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, out)); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
}

// leave marks the current document and runs js, which must navigate; it
// returns once a new document has loaded.
func leave(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	eval(t, ctx, "window.__lkOld = true; setTimeout(() => { "+js+" }, 0); true", nil)
	waitFor(t, ctx, `!window.__lkOld && document.readyState === "complete"`)
}

// waitFor polls cond until it is true.
func waitFor(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Evaluate("!!("+cond+")", &ok)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: page is %q", cond, bodyText(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func open(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	leave(t, ctx, "location.assign("+strconv.Quote(url)+")")
}

func heading(t *testing.T, ctx context.Context) string {
	t.Helper()
	var h string
	eval(t, ctx, `document.querySelector("h1") ? document.querySelector("h1").innerText : ""`, &h)
	return h
}

func signIn(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	open(t, ctx, url+"/account")
	eval(t, ctx, `document.querySelector("#username-input").value = "alice";
		document.querySelector("#password-input").value = "correct horse battery"; true`, nil)
	leave(t, ctx, `document.querySelector("#sign-in").click()`)
	if h := heading(t, ctx); !strings.Contains(h, "alice") {
		t.Fatalf("after sign-in the page says %q", h)
	}
}

// cookies returns the profile's cookies by name.
func cookies(t *testing.T, ctx context.Context) map[string]*network.Cookie {
	t.Helper()
	var cs []*network.Cookie
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cs, err = network.GetCookies().Do(ctx)
		return err
	})); err != nil {
		t.Fatal(err)
	}
	m := map[string]*network.Cookie{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("LATCHKEY_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "latchkey-e2e")
	}
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func signedInAs(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	open(t, ctx, url+"/account")
	return heading(t, ctx)
}

// bodyText is the text of the current page, for failure messages.
func bodyText(ctx context.Context) string {
	var s string
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	chromedp.Run(c, chromedp.Evaluate(`document.location.href + " :: " + document.body.innerText`, &s))
	return s
}

func TestSignInAndImplicitRefresh(t *testing.T) {
	a := startApp(t)
	ctx := browser(t)
	signIn(t, ctx, a.url)
	before := cookies(t, ctx)
	for name, httpOnly := range map[string]bool{"__Host-lk_access": true, "__Host-lk_refresh": true, "__Host-lk_csrf": false} {
		c := before[name]
		if c == nil || !c.Secure || c.HTTPOnly != httpOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
			t.Fatalf("cookie %s = %+v", name, c)
		}
	}
	screenshot(t, ctx, "account-signed-in")
	time.Sleep(2500 * time.Millisecond) // past the 2-second access token
	if h := signedInAs(t, ctx, a.url); !strings.Contains(h, "alice") {
		t.Fatalf("after the access token expired the page says %q", h)
	}
	after := cookies(t, ctx)
	if after["__Host-lk_refresh"] == nil || after["__Host-lk_refresh"].Value == before["__Host-lk_refresh"].Value {
		t.Fatal("the refresh cookie was not rotated by the implicit refresh")
	}
}

func TestTwoTabsRefreshAtOnce(t *testing.T) {
	a := startApp(t)
	ctx := browser(t)
	signIn(t, ctx, a.url)
	t1, t2 := tab(t, ctx), tab(t, ctx)
	time.Sleep(2500 * time.Millisecond)
	var wg sync.WaitGroup
	heads := make([]string, 2)
	for _, c := range []context.Context{t1, t2} {
		if err := chromedp.Run(c, chromedp.Navigate("about:blank")); err != nil {
			t.Fatal(err)
		}
		eval(t, c, "window.__lkOld = true", nil)
	}
	for _, c := range []context.Context{t1, t2} { // both tabs load at the same moment
		wg.Go(func() {
			chromedp.Run(c, chromedp.Evaluate("location.assign("+strconv.Quote(a.url+"/account")+"); true", nil))
		})
	}
	wg.Wait()
	for i, c := range []context.Context{t1, t2} {
		waitFor(t, c, `!window.__lkOld && document.readyState === "complete"`)
		heads[i] = heading(t, c)
	}
	wg.Wait()
	for i, h := range heads {
		if !strings.Contains(h, "alice") {
			t.Fatalf("tab %d after a simultaneous refresh says %q", i+1, h)
		}
	}
	// And the session lives on: a later expiry refreshes again.
	time.Sleep(2500 * time.Millisecond)
	if h := signedInAs(t, t1, a.url); !strings.Contains(h, "alice") {
		t.Fatalf("the session did not survive the race: %q", h)
	}
}

func TestSignOutEverywhere(t *testing.T) {
	a := startApp(t)
	laptop, phone := browser(t), browser(t)
	signIn(t, laptop, a.url)
	signIn(t, phone, a.url)
	var rows int
	open(t, laptop, a.url+"/account")
	eval(t, laptop, `document.querySelectorAll("[data-session]").length`, &rows)
	if rows != 2 {
		t.Fatalf("the account page lists %d sessions, want 2", rows)
	}
	screenshot(t, laptop, "account-two-sessions")
	leave(t, laptop, `document.querySelector("#sign-out-everywhere").click()`)
	if h := heading(t, laptop); !strings.Contains(h, "Sign in") {
		t.Fatalf("after 'sign out everywhere' the page says %q", h)
	}
	time.Sleep(200 * time.Millisecond) // the revocation delay is 100 ms
	if h := signedInAs(t, phone, a.url); !strings.Contains(h, "Sign in") {
		t.Fatalf("the other browser is still signed in after 'sign out everywhere': %q", h)
	}
	screenshot(t, phone, "account-signed-out")
}

// A page on another site posts a form to the account page: refused, and the
// session stays.
func TestCrossSiteFormRefused(t *testing.T) {
	a := startApp(t)
	ctx := browser(t)
	signIn(t, ctx, a.url)
	evil := http.NewServeMux()
	evil.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<form id="f" method="post" action="` + a.url + `/account/logout"><input name="scope" value="global"></form>`))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: evil}
	go hs.Serve(ln)
	defer hs.Close()
	open(t, ctx, "http://"+ln.Addr().String()+"/") // 127.0.0.1 is another site than localhost
	leave(t, ctx, `document.querySelector("#f").submit()`)
	body := bodyText(ctx)
	if !strings.Contains(body, "csrf_failed") {
		t.Fatalf("the cross-site post got %q", body)
	}
	if h := signedInAs(t, ctx, a.url); !strings.Contains(h, "alice") {
		t.Fatalf("the cross-site post signed the user out: %q", h)
	}
}

// profileDir is a fresh Chromium profile directory. It is removed after the
// test without t.TempDir's strictness: Chromium may still be flushing it.
func profileDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "latchkey-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

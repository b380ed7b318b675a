package browser_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/interop/internal/testop"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/server"
)

// withProvider configures the app with a real OpenID provider (zitadel's op)
// as "example", its confidential client "web" redirecting to the app's
// callback; sign-up with it is open.
func withProvider(t *testing.T, op **testop.OP) func(a *app, cfg *server.Config) {
	return func(a *app, cfg *server.Config) {
		*op = testop.Start(t, testop.Options{
			Clients: []testop.Client{{ID: "web", Secret: "web-secret", RedirectURIs: []string{a.url + "/account/callback"}}},
			Users: []testop.User{
				{Username: "carol", Password: "carol-password", Subject: "sub-carol", Email: "carol@example.com"},
				{Username: "dave", Password: "dave-password", Subject: "sub-dave", Email: "dave@example.com"},
			},
		})
		p, err := provider.New(provider.Config{Name: "example", Issuer: (*op).Issuer(), ClientIDs: []string{"web"}, ClientSecret: "web-secret"}, provider.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Providers, cfg.ProviderSignup, cfg.Markers = []*provider.Provider{p}, true, a.st
	}
}

// atProvider signs in on the provider's own login page and returns once the
// browser has come back to the app.
func atProvider(t *testing.T, ctx context.Context, appURL, user, pw string) {
	t.Helper()
	waitFor(t, ctx, `document.querySelector("#username") && location.href.includes("/login")`)
	eval(t, ctx, `document.querySelector("#username").value = `+strconv.Quote(user)+`;
		document.querySelector("#password").value = `+strconv.Quote(pw)+`; true`, nil)
	leave(t, ctx, `document.querySelector("button[type=submit]").click()`)
	waitFor(t, ctx, `location.href.startsWith(`+strconv.Quote(appURL)+`)`)
}

// The whole redirect flow in Chromium: "Sign in with Example" on the account
// page, sign in at the provider, land signed in with the identity listed;
// then link a second identity to a password account and unlink it.
func TestSignInWithProvider(t *testing.T) {
	var op *testop.OP
	a := startApp(t, withProvider(t, &op))
	ctx := browser(t)
	open(t, ctx, a.url+"/account")
	screenshot(t, ctx, "provider-sign-in-page")
	tabTo(t, ctx, "#signin-example") // by keyboard, like every action of the page
	enter(t, ctx)
	atProvider(t, ctx, a.url, "carol", "carol-password")
	waitFor(t, ctx, `document.querySelector("#username")`)
	if h := heading(t, ctx); !strings.Contains(h, "Signed in as example-") {
		t.Fatalf("after the provider sign-in the page says %q (%s)", h, bodyText(ctx))
	}
	var listed string
	eval(t, ctx, `document.querySelector("#identities") ? document.querySelector("#identities").innerText : ""`, &listed)
	if !strings.Contains(listed, "example") || !strings.Contains(listed, "carol@example.com") {
		t.Fatalf("the identities table says %q", listed)
	}
	if c := cookies(t, ctx); c["__Host-lk_refresh"] == nil || c["__Host-lk_signin"] != nil {
		t.Fatalf("after the callback: refresh cookie %v, flow cookie %v (want set, spent)", c["__Host-lk_refresh"], c["__Host-lk_signin"])
	}
	screenshot(t, ctx, "provider-signed-in")

	// A password account links dave's identity from a fresh sign-in.
	other := browser(t)
	signIn(t, other, a.url)
	tabTo(t, other, "#link-example")
	enter(t, other)
	atProvider(t, other, a.url, "dave", "dave-password")
	waitFor(t, other, `document.querySelector("#identities")`)
	var text string
	eval(t, other, `document.body.innerText`, &text)
	if !strings.Contains(text, "Signed in as alice") || !strings.Contains(text, "dave@example.com") || !strings.Contains(text, "was linked") {
		t.Fatalf("after linking the page says %q", text)
	}
	screenshot(t, other, "provider-linked")
	checkState(t, other, axeSource(t), "identities-linked") // the identities section fits the page
	tabTo(t, other, "#identities button")
	enter(t, other)
	eval(t, other, `document.body.innerText`, &text)
	if strings.Contains(text, "dave@example.com") || !strings.Contains(text, "was unlinked") {
		t.Fatalf("after unlinking the page says %q", text)
	}

	// Coming back to the callback with a stale state is refused.
	open(t, ctx, a.url+"/account/callback?state=forged&code=forged")
	if body := bodyText(ctx); !strings.Contains(body, "Start again") {
		t.Fatalf("a forged callback got %q", body)
	}
}

package testop

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/lestrrat-go/jwx/v3/jwt/openid"
	"golang.org/x/oauth2"
)

var testOptions = Options{
	Clients: []Client{
		{ID: "native-app"}, // public, DefaultRedirectURI
		{ID: "web-app", Secret: "s3cret", RedirectURIs: []string{"http://127.0.0.1:9/cb"}},
	},
	Users: []User{
		{Username: "alice", Password: "correct horse", Subject: "sub-alice", Email: "alice@example.test"},
		{Username: "bob", Password: "battery staple"},
	},
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body, err := do(http.DefaultClient, req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

func jwks(t *testing.T, p *OP) jwk.Set {
	t.Helper()
	set, err := jwk.Fetch(t.Context(), p.JWKSURL(), jwk.WithHTTPClient(http.DefaultClient))
	if err != nil {
		t.Fatalf("fetching the JWKS: %v", err)
	}
	return set
}

func kids(t *testing.T, set jwk.Set) []string {
	t.Helper()
	var ids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		id, ok := k.KeyID()
		if !ok {
			t.Fatalf("JWKS key %d has no kid", i)
		}
		ids = append(ids, id)
	}
	return ids
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		t.Fatal(err)
	}
	kid, ok := msg.Signatures()[0].ProtectedHeaders().KeyID()
	if !ok {
		t.Fatal("ID token has no kid")
	}
	return kid
}

// verify checks token's signature against set and its iss, aud and time
// claims, and returns its claims.
func verify(p *OP, set jwk.Set, token, aud string) (openid.Token, error) {
	tok, err := jwt.ParseString(token,
		jwt.WithKeySet(set),
		jwt.WithToken(openid.New()),
		jwt.WithValidate(true),
		jwt.WithIssuer(p.Issuer()),
		jwt.WithAudience(aud),
	)
	if err != nil {
		return nil, err
	}
	return tok.(openid.Token), nil
}

func TestDiscovery(t *testing.T) {
	p := Start(t, testOptions)
	if !strings.HasPrefix(p.Issuer(), "http://127.0.0.1:") || strings.HasSuffix(p.Issuer(), "/") {
		t.Fatalf("issuer %q", p.Issuer())
	}
	resp, body := get(t, p.Issuer()+"/.well-known/openid-configuration")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %s: %s", resp.Status, body)
	}
	var d struct {
		discovery
		CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
		IDTokenAlgs          []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != p.Issuer() {
		t.Errorf("discovery issuer %q, Issuer() %q", d.Issuer, p.Issuer())
	}
	if d.JWKSURI != p.JWKSURL() || p.JWKSPath() != "/keys" {
		t.Errorf("jwks_uri %q, JWKSURL() %q, JWKSPath() %q", d.JWKSURI, p.JWKSURL(), p.JWKSPath())
	}
	if !slices.Contains(d.CodeChallengeMethods, "S256") {
		t.Errorf("code_challenge_methods_supported %q lacks S256", d.CodeChallengeMethods)
	}
	if !slices.Contains(d.IDTokenAlgs, "RS256") {
		t.Errorf("id_token_signing_alg_values_supported %q lacks RS256", d.IDTokenAlgs)
	}
}

func TestIDTokenPublicClient(t *testing.T) {
	p := Start(t, testOptions)
	before := time.Now().Add(-time.Second)
	token := p.IDToken(t, "native-app", "alice", "n-0S6_WzA2Mj")
	tok, err := verify(p, jwks(t, p), token, "native-app")
	if err != nil {
		t.Fatalf("verifying the ID token: %v", err)
	}
	if sub, _ := tok.Subject(); sub != "sub-alice" {
		t.Errorf("sub %q", sub)
	}
	if aud, _ := tok.Audience(); !slices.Equal(aud, []string{"native-app"}) {
		t.Errorf("aud %q", aud)
	}
	var nonce string
	if err := tok.Get("nonce", &nonce); err != nil || nonce != "n-0S6_WzA2Mj" {
		t.Errorf("nonce %q (%v)", nonce, err)
	}
	if email, _ := tok.Email(); email != "alice@example.test" {
		t.Errorf("email %q", email)
	}
	if v, ok := tok.EmailVerified(); !v || !ok {
		t.Errorf("email_verified %v (present %v)", v, ok)
	}
	iat, _ := tok.IssuedAt()
	exp, _ := tok.Expiration()
	if iat.Before(before) || iat.After(time.Now().Add(time.Second)) {
		t.Errorf("iat %v", iat)
	}
	if d := exp.Sub(iat); d < DefaultIDTokenLifetime-2*time.Second || d > DefaultIDTokenLifetime+2*time.Second {
		t.Errorf("exp - iat = %v", d)
	}
	if kidOf(t, token) != p.KeyIDs()[0] {
		t.Errorf("kid %q, KeyIDs %q", kidOf(t, token), p.KeyIDs())
	}
}

func TestIDTokenConfidentialClientNoNonce(t *testing.T) {
	p := Start(t, testOptions)
	token := p.IDToken(t, "web-app", "bob", "")
	tok, err := verify(p, jwks(t, p), token, "web-app")
	if err != nil {
		t.Fatalf("verifying the ID token: %v", err)
	}
	if sub, _ := tok.Subject(); sub != "bob" {
		t.Errorf("sub %q, want the username", sub)
	}
	if tok.Has("nonce") {
		t.Error("nonce present though none was sent")
	}
	if tok.Has("email") || tok.Has("email_verified") {
		t.Error("email claims for a user without an email")
	}
	if _, err := verify(p, jwks(t, p), token, "native-app"); err == nil {
		t.Error("token verified for another audience")
	}
}

func TestLoginRefused(t *testing.T) {
	p := Start(t, testOptions)
	_, err := p.idToken(t.Context(), "native-app", "alice", "wrong", "")
	if err == nil || !strings.Contains(err.Error(), "wrong username or password") {
		t.Fatalf("wrong password: %v", err)
	}
	_, err = p.idToken(t.Context(), "native-app", "mallory", "x", "")
	if err == nil || !strings.Contains(err.Error(), "wrong username or password") {
		t.Fatalf("unknown user: %v", err)
	}
}

// A public client must use PKCE: zitadel refuses the code without a verifier.
func TestPublicClientNeedsPKCE(t *testing.T) {
	p := Start(t, testOptions)
	cfg := oauth2.Config{
		ClientID:    "native-app",
		Endpoint:    oauth2.Endpoint{AuthURL: p.Issuer() + "/authorize", TokenURL: p.Issuer() + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "http://127.0.0.1:4242/callback", // any loopback port
		Scopes:      []string{"openid"},
	}
	verifier := oauth2.GenerateVerifier()
	loc := p.Authorize(t, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice")
	if !strings.HasPrefix(loc.String(), "http://127.0.0.1:4242/callback?") || loc.Query().Get("state") != "st" {
		t.Fatalf("redirect %s", loc)
	}
	code := loc.Query().Get("code")
	if _, err := cfg.Exchange(t.Context(), code); err == nil {
		t.Fatal("code exchanged without the PKCE verifier")
	}
	// A wrong verifier fails too; zitadel then revokes the request, so
	// the right verifier is tried on a fresh code.
	loc = p.Authorize(t, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice")
	if _, err := cfg.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Fatal("code exchanged with a wrong PKCE verifier")
	}
	loc = p.Authorize(t, cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice")
	tok, err := cfg.Exchange(t.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange with the verifier: %v", err)
	}
	if _, err := verify(p, jwks(t, p), tok.Extra("id_token").(string), "native-app"); err != nil {
		t.Fatal(err)
	}
}

func TestRotateAndDropKeys(t *testing.T) {
	p := Start(t, testOptions)
	old := p.IDToken(t, "native-app", "alice", "")
	oldKid := kidOf(t, old)

	p.RotateKey()
	fresh := p.IDToken(t, "native-app", "alice", "")
	newKid := kidOf(t, fresh)
	if newKid == oldKid {
		t.Fatalf("same kid %q after RotateKey", newKid)
	}
	set := jwks(t, p)
	if got := kids(t, set); !slices.Equal(got, []string{oldKid, newKid}) {
		t.Fatalf("JWKS kids %q, want [%s %s]", got, oldKid, newKid)
	}
	if !slices.Equal(p.KeyIDs(), []string{oldKid, newKid}) {
		t.Fatalf("KeyIDs %q", p.KeyIDs())
	}
	for _, tok := range []string{old, fresh} {
		if _, err := verify(p, set, tok, "native-app"); err != nil {
			t.Fatalf("after RotateKey: %v", err)
		}
	}

	p.DropOldKeys()
	set = jwks(t, p)
	if got := kids(t, set); !slices.Equal(got, []string{newKid}) {
		t.Fatalf("JWKS kids after DropOldKeys %q, want [%s]", got, newKid)
	}
	if _, err := verify(p, set, fresh, "native-app"); err != nil {
		t.Fatalf("current key after DropOldKeys: %v", err)
	}
	if _, err := verify(p, set, old, "native-app"); err == nil {
		t.Fatal("token of a dropped key still verifies")
	}
}

func TestJWKSCacheControl(t *testing.T) {
	for _, c := range []struct {
		maxAge time.Duration
		want   string
	}{
		{0, "public, max-age=300"},
		{2 * time.Second, "public, max-age=2"},
		{-1, ""},
	} {
		o := testOptions
		o.JWKSMaxAge = c.maxAge
		p := Start(t, o)
		resp, body := get(t, p.JWKSURL())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("JWKS: %s: %s", resp.Status, body)
		}
		if got := resp.Header.Get("Cache-Control"); got != c.want {
			t.Errorf("JWKSMaxAge %v: Cache-Control %q, want %q", c.maxAge, got, c.want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	}
}

func TestSetDown(t *testing.T) {
	p := Start(t, testOptions)
	discoveryURL := p.Issuer() + "/.well-known/openid-configuration"
	if resp, _ := get(t, discoveryURL); resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery before SetDown: %s", resp.Status)
	}
	p.SetDown(true)
	for _, u := range []string{discoveryURL, p.JWKSURL()} {
		if resp, _ := get(t, u); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s while down: %s", u, resp.Status)
		}
	}
	if _, err := jwk.Fetch(t.Context(), p.JWKSURL(), jwk.WithHTTPClient(http.DefaultClient)); err == nil {
		t.Fatal("JWKS fetched while down")
	}
	if _, err := p.idToken(t.Context(), "native-app", "alice", "correct horse", ""); err == nil {
		t.Fatal("login while down")
	}
	p.SetDown(false)
	if resp, _ := get(t, discoveryURL); resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery after SetDown(false): %s", resp.Status)
	}
	p.IDToken(t, "native-app", "alice", "")
}

func TestRequests(t *testing.T) {
	p := Start(t, testOptions)
	if n := p.Requests(p.JWKSPath()); n != 0 {
		t.Fatalf("Requests before any: %d", n)
	}
	for range 3 {
		jwks(t, p)
	}
	p.SetDown(true)
	get(t, p.JWKSURL())
	p.SetDown(false)
	if n := p.Requests(p.JWKSPath()); n != 4 {
		t.Fatalf("Requests(%q) = %d, want 4", p.JWKSPath(), n)
	}
	p.IDToken(t, "native-app", "alice", "")
	for path, want := range map[string]int{
		"/.well-known/openid-configuration": 1,
		"/authorize":                        1,
		"/login":                            2, // GET the form, POST it
		"/authorize/callback":               1,
		"/oauth/token":                      1,
		p.JWKSPath():                        4, // the flow itself does not fetch keys
	} {
		if n := p.Requests(path); n != want {
			t.Errorf("Requests(%q) = %d, want %d", path, n, want)
		}
	}
}

// TestBrowserLogin fills the login page in headless Chromium with the
// selectors the package documents, as a person would, and follows the
// redirect to a real loopback redirect URI.
func TestBrowserLogin(t *testing.T) {
	bin := os.Getenv("LATCHKEY_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("LATCHKEY_TEST_CHROMIUM not set (path to chromium): skipping the browser test")
	}
	p := Start(t, testOptions)

	codes := make(chan string, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cb := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
		w.Write([]byte("signed in"))
	})}
	go cb.Serve(ln)
	t.Cleanup(func() { cb.Close() })

	cfg := oauth2.Config{
		ClientID:    "native-app",
		Endpoint:    oauth2.Endpoint{AuthURL: p.Issuer() + "/authorize", TokenURL: p.Issuer() + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: "http://" + ln.Addr().String() + "/callback",
		Scopes:      []string{"openid", "email"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "browser-nonce"))

	// Not t.TempDir: Chromium may still be writing the profile when the
	// test ends, and t.TempDir fails the test if it cannot remove it.
	profile, err := os.MkdirTemp("", "testop-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(profile),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	// A wrong password first: the page comes back with #error.
	var errText string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible("#username", chromedp.ByQuery),
		chromedp.SendKeys("#username", "alice", chromedp.ByQuery),
		chromedp.SendKeys("#password", "nope", chromedp.ByQuery),
		chromedp.Click("button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#error", chromedp.ByQuery),
		chromedp.Text("#error", &errText, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("browser, wrong password: %v", err)
	}
	if !strings.Contains(errText, "wrong username or password") {
		t.Fatalf("#error %q", errText)
	}
	// The page after a refusal keeps the username and empties the password.
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#password", "correct horse", chromedp.ByQuery),
		chromedp.Click("button[type=submit]", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("browser, login: %v", err)
	}
	var code string
	select {
	case code = <-codes:
	case <-ctx.Done():
		t.Fatal("the browser never reached the redirect URI")
	}
	tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := verify(p, jwks(t, p), tok.Extra("id_token").(string), "native-app")
	if err != nil {
		t.Fatal(err)
	}
	var nonce string
	claims.Get("nonce", &nonce)
	if sub, _ := claims.Subject(); sub != "sub-alice" || nonce != "browser-nonce" {
		t.Fatalf("sub %q nonce %q", sub, nonce)
	}
}

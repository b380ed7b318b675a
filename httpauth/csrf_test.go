package httpauth_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
)

// A cookie-authenticated unsafe request from a sibling origin passes the
// cross-origin check only when that origin is trusted, and still needs the
// session's CSRF token; any other origin stays refused.
func TestTrustedOrigins(t *testing.T) {
	f := newFixture(t)
	tok := f.login(t)
	trusting, err := httpauth.New(httpauth.Config{Auth: f.auth, Locations: []httpauth.Location{httpauth.Cookies},
		TrustedOrigins: []string{"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	plain := f.mw(t, httpauth.Cookies)
	csrf := trusting.CSRFToken(tok.SessionID)
	cookies := "__Host-" + httpauth.AccessCookie + "=" + tok.AccessToken + "; __Host-" + httpauth.CSRFCookie + "=" + csrf
	post := func(m *httpauth.Middleware, origin, token string) result {
		hdr := []string{"Cookie", cookies, "Origin", origin, "Sec-Fetch-Site", "same-site"}
		if token != "" {
			hdr = append(hdr, httpauth.CSRFHeader, token)
		}
		return serve(m.RequireAccess(whoami), req("POST", "https://auth.example.com/", "", hdr...))
	}
	if r := post(trusting, "https://app.example.com", csrf); r.status != 200 || r.body != "user-1" {
		t.Fatalf("trusted sibling origin = %d %s, want 200", r.status, r.body)
	}
	r := post(plain, "https://app.example.com", csrf)
	if r.status != 403 || r.code != "csrf_failed" || !strings.Contains(r.msg, "TrustedOrigins") {
		t.Fatalf("sibling origin not trusted = %d %s %q, want 403 csrf_failed naming TrustedOrigins", r.status, r.code, r.msg)
	}
	if r := post(trusting, "https://evil.example.com", csrf); r.status != 403 || r.code != "csrf_failed" {
		t.Fatalf("unlisted origin = %d %s, want 403 csrf_failed", r.status, r.code)
	}
	if r := post(trusting, "https://app.example.com", ""); r.status != 403 || r.code != "csrf_failed" {
		t.Fatalf("trusted origin without the CSRF header = %d %s, want 403 csrf_failed", r.status, r.code)
	}
	for _, bad := range []string{"app.example.com", "https://app.example.com/path", "*"} {
		if _, err := httpauth.New(httpauth.Config{Auth: f.auth, TrustedOrigins: []string{bad}}); err == nil {
			t.Errorf("New(TrustedOrigins %q) = nil error, want a refusal", bad)
		}
	}
}

// The CSRF token is bound to its session and to the deployment secret: every
// node of a deployment (same secret) makes the same one, another session or
// another deployment a different one, and a token of another session is
// refused.
func TestCSRFTokenBinding(t *testing.T) {
	f := newFixture(t)
	a, b := f.login(t), f.login(t)
	m := f.mw(t)
	if m.CSRFToken(a.SessionID) == m.CSRFToken(b.SessionID) {
		t.Fatal("two sessions share a CSRF token")
	}
	other := newFixture(t).mw(t)
	if other.CSRFToken(a.SessionID) == m.CSRFToken(a.SessionID) {
		t.Fatal("another secret makes the same CSRF token")
	}
	if again := f.mw(t); again.CSRFToken(a.SessionID) != m.CSRFToken(a.SessionID) {
		t.Fatal("two middlewares on one deployment disagree on a CSRF token")
	}
	planted := m.CSRFToken(b.SessionID)
	cookies := "__Host-" + httpauth.AccessCookie + "=" + a.AccessToken + "; __Host-" + httpauth.CSRFCookie + "=" + planted
	r := serve(m.RequireAccess(whoami), req("POST", "https://auth.example.com/", "", "Cookie", cookies, httpauth.CSRFHeader, planted))
	if r.status != 403 || r.code != string(latchkey.CodeCSRFFailed) {
		t.Fatalf("CSRF token of another session = %d %s, want 403 csrf_failed", r.status, r.code)
	}
}

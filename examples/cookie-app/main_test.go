package main

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestCookieFlow signs in with the form, sees the protected page, is refused a
// sign-out without the CSRF token, and signs out with it.
func TestCookieFlow(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	app, closeApp, err := newApp(context.Background(), filepath.Join(t.TempDir(), "app.db"), secret, true)
	if err != nil {
		t.Fatal(err)
	}
	defer closeApp()
	srv := httptest.NewServer(app)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(c.Get(srv.URL + "/")); code != 401 {
		t.Fatalf("home without cookies = %d", code)
	}
	code, body := get(c.PostForm(srv.URL+"/login", url.Values{"username": {"test"}, "password": {"test"}}))
	if code != 200 || !strings.Contains(body, "Hello, test") {
		t.Fatalf("after sign-in: %d %s", code, body)
	}
	if code, body := get(c.PostForm(srv.URL+"/logout", nil)); code != 403 || !strings.Contains(body, "csrf_failed") {
		t.Fatalf("sign-out without the CSRF token = %d %s", code, body)
	}
	csrf := body[strings.Index(body, `value="`)+7:]
	csrf = csrf[:strings.Index(csrf, `"`)]
	code, body = get(c.PostForm(srv.URL+"/logout", url.Values{"csrf_token": {csrf}}))
	if code != 200 || !strings.Contains(body, "Sign in") {
		t.Fatalf("sign-out = %d %s", code, body)
	}
	if code, _ := get(c.Get(srv.URL + "/")); code != 401 {
		t.Fatalf("home after sign-out = %d", code)
	}
}

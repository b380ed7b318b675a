package httpauth_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/store/sqlite"
)

func ExampleMiddleware_RequireAccess() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "httpauth-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	defer db.Close()
	secret := make([]byte, 32)
	rand.Read(secret)
	auth, _ := latchkey.New(ctx, latchkey.Config{Store: db, Secret: secret})
	defer auth.Close()
	mw, _ := httpauth.New(httpauth.Config{Auth: auth})

	h := mw.RequireAccess(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := latchkey.FromContext(r.Context())
		fmt.Fprintln(w, "hello", p.UserID)
	}))

	pair, _ := auth.Login(ctx, "user-42", latchkey.LoginOptions{})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+pair.AccessToken)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// 200 hello user-42
	// 401 {"error":"missing_token","message":"An access token is required."}
}

func ExampleWriteError() {
	w := httptest.NewRecorder()
	httpauth.WriteError(w, httptest.NewRequest("GET", "/", nil), latchkey.ErrTokenExpired)
	fmt.Println(w.Code)
	fmt.Println(w.Header().Get("WWW-Authenticate"))
	fmt.Print(w.Body.String())
	// Output:
	// 401
	// Bearer realm="latchkey", error="invalid_token", error_description="The token has expired."
	// {"error":"token_expired","message":"The token has expired."}
}

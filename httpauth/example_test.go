package httpauth_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/store/sqlite"
)

// exampleAuth opens a latchkey.Auth on a SQLite file in a temporary
// directory; close removes it all.
func exampleAuth() (auth *latchkey.Auth, close func()) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "httpauth-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "app.db"))
	if err != nil {
		log.Fatal(err)
	}
	secret := make([]byte, 32) // in production: latchkey.ParseSecret(os.Getenv("LATCHKEY_SECRET"))
	rand.Read(secret)
	auth, err = latchkey.New(ctx, latchkey.Config{Store: db, Secret: secret})
	if err != nil {
		log.Fatal(err)
	}
	return auth, func() {
		auth.Close()
		db.Close()
		os.RemoveAll(dir)
	}
}

// An API guarded by RequireAccess: the handler finds the caller in the request
// context; a request without a valid token never reaches it.
func ExampleMiddleware_RequireAccess() {
	auth, done := exampleAuth()
	defer done()
	mw, err := httpauth.New(httpauth.Config{Auth: auth}) // headers, cookies, JSON body
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /me", mw.RequireAccess(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := latchkey.FromContext(r.Context())
		fmt.Fprintln(w, "hello", p.UserID)
	})))

	pair, err := auth.Login(context.Background(), "user-42", latchkey.LoginOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, authz := range []string{"Bearer " + pair.AccessToken, "", "Bearer not-a-token"} {
		r := httptest.NewRequest("GET", "/me", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
		if c := w.Header().Get("WWW-Authenticate"); c != "" {
			fmt.Println("  WWW-Authenticate:", c)
		}
	}
	// Output:
	// 200 hello user-42
	// 401 {"error":"missing_token","message":"An access token is required."}
	//   WWW-Authenticate: Bearer realm="latchkey"
	// 401 {"error":"invalid_token","message":"The access token is malformed, forged or not for this service."}
	//   WWW-Authenticate: Bearer realm="latchkey", error="invalid_token", error_description="The access token is malformed, forged or not for this service."
}

// Optional lets anonymous requests through, and tells apart a caller who
// presented a good token.
func ExampleMiddleware_Optional() {
	auth, done := exampleAuth()
	defer done()
	mw, err := httpauth.New(httpauth.Config{Auth: auth})
	if err != nil {
		log.Fatal(err)
	}
	h := mw.Optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := latchkey.FromContext(r.Context()); ok {
			fmt.Fprintln(w, "welcome back,", p.UserID)
			return
		}
		fmt.Fprintln(w, "welcome, stranger")
	}))
	pair, err := auth.Login(context.Background(), "ada", latchkey.LoginOptions{})
	if err != nil {
		log.Fatal(err)
	}

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Print(w.Code, " ", w.Body.String())

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+pair.AccessToken)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// 200 welcome, stranger
	// 200 welcome back, ada
}

// RequireRefresh exchanges the refresh token and hands the new pair to the
// handler, which sends it.
func ExampleMiddleware_RequireRefresh() {
	auth, done := exampleAuth()
	defer done()
	mw, err := httpauth.New(httpauth.Config{Auth: auth})
	if err != nil {
		log.Fatal(err)
	}
	h := mw.RequireRefresh(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := latchkey.TokensFromContext(r.Context())
		httpauth.WriteJSON(w, http.StatusOK, t)
	}))
	pair, err := auth.Login(context.Background(), "ada", latchkey.LoginOptions{})
	if err != nil {
		log.Fatal(err)
	}

	r := httptest.NewRequest("POST", "/refresh", strings.NewReader(`{"refresh_token":"`+pair.RefreshToken+`"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Cache-Control"), strings.Contains(w.Body.String(), `"refresh_token":"lk_rt_`))
	// Output:
	// 200 no-store true
}

// WriteError turns any error into the API's JSON error, status and RFC 6750
// challenge.
func ExampleWriteError() {
	w := httptest.NewRecorder()
	httpauth.WriteError(w, httptest.NewRequest("GET", "/", nil), latchkey.ErrTokenExpired.WithCause(fmt.Errorf("exp in the past")))
	fmt.Println(w.Code)
	fmt.Println("WWW-Authenticate:", w.Header().Get("WWW-Authenticate"))
	fmt.Println("Cache-Control:", w.Header().Get("Cache-Control"))
	fmt.Print(w.Body.String())
	// Output:
	// 401
	// WWW-Authenticate: Bearer realm="latchkey", error="invalid_token", error_description="The token has expired."
	// Cache-Control: no-store
	// {"error":"token_expired","message":"The token has expired."}
}

// A rate-limited error carries Retry-After in whole seconds, rounded up.
func ExampleWriteError_rateLimited() {
	err := latchkey.ErrRateLimited.WithMessage("Too many attempts.")
	err.RetryAfter = 2500 * time.Millisecond
	w := httptest.NewRecorder()
	httpauth.WriteError(w, httptest.NewRequest("POST", "/login", nil), err)
	fmt.Println(w.Code, w.Header().Get("Retry-After"))
	fmt.Print(w.Body.String())
	// Output:
	// 429 3
	// {"error":"rate_limited","message":"Too many attempts."}
}

// An error that is not a *latchkey.Error is an internal error; its text stays
// on the server.
func ExampleWriteError_internal() {
	w := httptest.NewRecorder()
	httpauth.WriteError(w, httptest.NewRequest("GET", "/", nil), fmt.Errorf("dial tcp 10.0.0.5:5432: connection refused"))
	fmt.Println(w.Code)
	fmt.Print(w.Body.String())
	// Output:
	// 500
	// {"error":"internal_error","message":"Something went wrong on our side."}
}

func ExampleDecodeJSON() {
	var in struct {
		Username string `json:"username"`
	}
	for _, body := range []string{`{"username":"ada"}`, `{"username":"ada"} {}`, `{"username":7}`} {
		r := httptest.NewRequest("POST", "/register", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json; charset=utf-8")
		if err := httpauth.DecodeJSON(r, &in, false); err != nil {
			fmt.Println(httpauth.AsError(err).Message)
			continue
		}
		fmt.Println("username:", in.Username)
	}
	// Output:
	// username: ada
	// The request body must hold exactly one JSON value.
	// The field username has the wrong type.
}

func ExampleStatus() {
	for _, c := range []latchkey.Code{latchkey.CodeTokenExpired, latchkey.CodeFreshTokenRequired, latchkey.CodeRateLimited, latchkey.CodeUsernameTaken} {
		fmt.Println(c, httpauth.Status(c))
	}
	// Output:
	// token_expired 401
	// fresh_token_required 403
	// rate_limited 429
	// username_taken 409
}

func ExampleParseLocations() {
	locs, err := httpauth.ParseLocations(strings.Split("headers,query", ","))
	fmt.Println(locs, err)
	_, err = httpauth.ParseLocations([]string{"header"})
	fmt.Println(err)
	// Output:
	// [headers query] <nil>
	// httpauth: unknown token location "header" (want headers, cookies, json, query)
}

// Behind a load balancer, the client's address is the rightmost
// X-Forwarded-For entry that is not the balancer; what the client wrote
// further left is not believed.
func ExampleTrustedProxies_ClientIP() {
	proxies, err := httpauth.ParseTrustedProxies("192.0.2.10, 192.0.2.11")
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = "192.0.2.10:41234"
	r.Header.Set("X-Forwarded-For", "198.51.100.66, 203.0.113.9")
	fmt.Println(proxies.ClientIP(r))

	r.RemoteAddr = "203.0.113.50:5000" // not a proxy: its header is ignored
	fmt.Println(proxies.ClientIP(r))
	// Output:
	// 203.0.113.9
	// 203.0.113.50
}

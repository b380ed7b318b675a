// Command cookie-app is a web app whose pages are protected by latchkey's
// cookie mode: a sign-in form sets the cookies, RequireAccess refreshes an
// expired access cookie by itself, and sign-out is a form carrying the CSRF
// token.
package main

import (
	"context"
	"crypto/rand"
	"html/template"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/store/sqlite"
)

var home = template.Must(template.New("home").Parse(`<!doctype html><title>Home</title>
<h1>Hello, {{.User}}</h1>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button>Sign out</button></form>`))

const signIn = `<!doctype html><title>Sign in</title>
<form method="post" action="/login"><input name="username" aria-label="Username"><input name="password" type="password" aria-label="Password"><button>Sign in</button></form>`

func newApp(ctx context.Context, dbPath string, secret []byte, insecureCookies bool) (http.Handler, func(), error) {
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return nil, nil, err
	}
	auth, err := latchkey.New(ctx, latchkey.Config{Store: db, Secret: secret})
	if err != nil {
		return nil, nil, err
	}
	mw, _ := httpauth.New(httpauth.Config{Auth: auth, Locations: []httpauth.Location{httpauth.Cookies}, InsecureCookies: insecureCookies})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(signIn)) })
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := mw.CheckOrigin(r); err != nil {
			httpauth.WriteError(w, r, err)
			return
		}
		if r.PostFormValue("username") != "test" || r.PostFormValue("password") != "test" { // your user check here
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		tokens, err := auth.Login(r.Context(), "test", latchkey.LoginOptions{Fresh: true})
		if err != nil {
			httpauth.WriteError(w, r, err)
			return
		}
		mw.SetCookies(w, tokens)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.Handle("GET /{$}", mw.RequireAccess(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := latchkey.FromContext(r.Context())
		home.Execute(w, map[string]string{"User": p.UserID, "CSRF": mw.CSRFToken(p.SessionID)})
	})))
	mux.Handle("POST /logout", mw.RequireAccess(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := latchkey.FromContext(r.Context())
		auth.Logout(r.Context(), p, latchkey.LogoutLocal)
		mw.ClearCookies(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})))
	return mux, func() { auth.Close(); db.Close() }, nil
}

func main() {
	secret := make([]byte, 32) // a real app keeps one: latchkey.ParseSecret(os.Getenv(…))
	rand.Read(secret)
	dir, _ := os.MkdirTemp("", "cookie-app")
	// Plain http on localhost for the demo; behind TLS, keep secure cookies.
	app, closeApp, err := newApp(context.Background(), filepath.Join(dir, "app.db"), secret, true)
	if err != nil {
		log.Fatal(err)
	}
	defer closeApp()
	log.Println("open http://127.0.0.1:8000/login (test / test)")
	log.Fatal(http.ListenAndServe("127.0.0.1:8000", app))
}

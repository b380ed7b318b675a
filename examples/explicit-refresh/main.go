// Command explicit-refresh is the AuthX "explicit refresh" example ported to
// latchkey: POST /login checks test/test and returns a token pair, GET
// /protected needs an access token, and POST /refresh exchanges a refresh token
// (rotating it) for a new pair.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/httpauth"
	"github.com/latchkey/latchkey/store/sqlite"
)

func newApp(ctx context.Context, dbPath string, secret []byte) (http.Handler, func(), error) {
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return nil, nil, err
	}
	auth, err := latchkey.New(ctx, latchkey.Config{Store: db, Secret: secret})
	if err != nil {
		return nil, nil, err
	}
	mw, _ := httpauth.New(httpauth.Config{Auth: auth, Locations: []httpauth.Location{httpauth.Headers}})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		var form struct{ Username, Password string }
		if err := httpauth.DecodeJSON(r, &form, false); err != nil {
			httpauth.WriteError(w, r, err)
			return
		}
		if form.Username != "test" || form.Password != "test" { // your user check here
			httpauth.WriteError(w, r, latchkey.ErrInvalidCredentials)
			return
		}
		tokens, err := auth.Login(r.Context(), form.Username, latchkey.LoginOptions{Fresh: true})
		if err != nil {
			httpauth.WriteError(w, r, err)
			return
		}
		httpauth.WriteJSON(w, http.StatusOK, tokens)
	})
	mux.Handle("POST /refresh", mw.RequireRefresh(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens, _ := latchkey.TokensFromContext(r.Context())
		httpauth.WriteJSON(w, http.StatusOK, tokens)
	})))
	mux.Handle("GET /protected", mw.RequireAccess(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := latchkey.FromContext(r.Context())
		json.NewEncoder(w).Encode(map[string]string{"message": "You have access", "user": p.UserID})
	})))
	return mux, func() { auth.Close(); db.Close() }, nil
}

func main() {
	secret := make([]byte, 32) // a real app keeps one: latchkey.ParseSecret(os.Getenv(…))
	rand.Read(secret)
	dir, _ := os.MkdirTemp("", "explicit-refresh")
	app, closeApp, err := newApp(context.Background(), filepath.Join(dir, "app.db"), secret)
	if err != nil {
		log.Fatal(err)
	}
	defer closeApp()
	log.Fatal(http.ListenAndServe("127.0.0.1:8000", app))
}

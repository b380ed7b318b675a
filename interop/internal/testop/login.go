package testop

import (
	"context"
	"html/template"
	"net/http"
)

const loginPath = "/login"

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in - testop</title></head>
<body>
<h1>Sign in</h1>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>
{{end}}<form id="login" method="post" action="` + loginPath + `">
<input type="hidden" name="id" value="{{.ID}}">
<p><label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" value="{{.Username}}" autofocus></p>
<p><label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password"></p>
<p><button id="submit" type="submit">Sign in</button></p>
</form>
</body>
</html>
`))

type loginData struct {
	ID, Username, Error string
}

// login serves the login page zitadel sends the user agent to, and hands the
// finished auth request back to zitadel's callback.
type login struct {
	storage  *storage
	callback func(ctx context.Context, authRequestID string) string
}

func (l *login) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		render(w, http.StatusOK, loginData{ID: r.URL.Query().Get("authRequestID")})
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, "cannot parse form: "+err.Error(), http.StatusBadRequest)
			return
		}
		id, username := r.PostForm.Get("id"), r.PostForm.Get("username")
		if err := l.storage.checkLogin(id, username, r.PostForm.Get("password")); err != nil {
			render(w, http.StatusUnauthorized, loginData{ID: id, Username: username, Error: err.Error()})
			return
		}
		http.Redirect(w, r, l.callback(r.Context(), id), http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func render(w http.ResponseWriter, status int, d loginData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	loginPage.Execute(w, d)
}

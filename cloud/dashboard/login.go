package dashboard

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
)

// The login page of the admin listener: plain HTML and a stylesheet,
// embedded (no script, nothing from elsewhere). The form posts to /login;
// the server owns the sessions.
var (
	//go:embed login/login.html
	loginHTML string
	//go:embed login/login.css
	loginCSS []byte

	loginTemplate = template.Must(template.New("login").Parse(loginHTML))
)

// LoginCSSPath is where LoginCSS is to be served.
const LoginCSSPath = "/login.css"

// LoginContentSecurityPolicy is sent with the login page: only its own
// stylesheet, and forms that post to this origin.
const LoginContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// LoginView is what the login page shows.
type LoginView struct {
	Next  string // a local path to return to after signing in
	Error string // shown above the form
	User  string // set: already signed in; the page offers to sign out
}

// WriteLogin writes the login page with the given status.
func WriteLogin(w http.ResponseWriter, status int, v LoginView) {
	var b bytes.Buffer
	data := struct {
		LoginView
		CSS string
	}{v, LoginCSSPath}
	if err := loginTemplate.Execute(&b, data); err != nil {
		http.Error(w, "500 login page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	setSecurityHeaders(h)
	h.Set("Content-Security-Policy", LoginContentSecurityPolicy)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// LoginCSS serves the login page's stylesheet.
func LoginCSS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	setSecurityHeaders(h)
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.Write(loginCSS)
}

package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/cloud/dashboard"
)

// The session cookie: HttpOnly, SameSite=Strict, Path=/, and with
// admin.tls Secure under the __Host- prefix (browsers then refuse it over
// plain HTTP or from a sibling domain).
const (
	SessionCookie       = "tributary_session"
	SecureSessionCookie = "__Host-tributary_session"
	// maxLoginForm bounds the login form's body.
	maxLoginForm = 8 << 10
)

// session returns the request's session, if its cookie names an open one
// whose user still has the password it signed in with.
func (g *adminGuard) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(g.cookie)
	if err != nil {
		return session{}, false
	}
	s, ok := g.sessions.lookup(c.Value)
	if ok && !g.users.Current(s.user, s.credential) {
		g.sessions.remove(c.Value) // removed, or a new password
		return session{}, false
	}
	return s, ok
}

// login serves the login page (GET) and signs in (POST: a form with user,
// password and next, in the body only).
func (g *adminGuard) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		v := dashboard.LoginView{Next: safeNext(r.URL.Query().Get("next"))}
		if s, ok := g.session(r); ok {
			v.User = s.user
		} else if g.users.Len() == 0 {
			v.Error = "No admin users yet: add one with tributary-cloud -data DIR user add NAME."
		}
		dashboard.WriteLogin(w, http.StatusOK, v)
	case http.MethodPost:
		g.loginPost(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	}
}

func (g *adminGuard) loginPost(w http.ResponseWriter, r *http.Request) {
	source := sourceKey(r.RemoteAddr)
	if ok, wait := g.limiter.allow(source); !ok {
		g.logins.WithLabelValues("throttled").Inc()
		g.logFailure("admin sign-in throttled: too many attempts from one address", source, "")
		secs := int(wait/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		dashboard.WriteLogin(w, http.StatusTooManyRequests, dashboard.LoginView{
			Error: fmt.Sprintf("Too many sign-in attempts from your address: try again in %d s.", secs)})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 bad request: want a form (application/x-www-form-urlencoded) with user and password", http.StatusBadRequest)
		return
	}
	user, password, next := r.PostForm.Get("user"), r.PostForm.Get("password"), safeNext(r.PostForm.Get("next"))
	cred, err := g.users.Verify(r.Context(), user, password)
	if err != nil {
		g.logins.WithLabelValues("failed").Inc()
		g.logFailure("admin sign-in failed", source, user)
		dashboard.WriteLogin(w, http.StatusUnauthorized, dashboard.LoginView{Next: next, Error: "Wrong user name or password."})
		return
	}
	value := g.sessions.create(user, cred)
	http.SetCookie(w, &http.Cookie{Name: g.cookie, Value: value, Path: "/", HttpOnly: true, Secure: g.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(g.sessions.ttl / time.Second)})
	w.Header().Set("Cache-Control", "no-store")
	g.logins.WithLabelValues("ok").Inc()
	g.log.Info("admin signed in", "user", user, "source", source)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the request's session (POST only: a link elsewhere cannot
// sign anybody out) and clears the cookie.
func (g *adminGuard) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "405 method not allowed: sign out with POST /logout", http.StatusMethodNotAllowed)
		return
	}
	if c, err := r.Cookie(g.cookie); err == nil {
		g.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: g.cookie, Value: "", Path: "/", HttpOnly: true, Secure: g.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (g *adminGuard) logFailure(msg, source, user string) {
	if ok, suppressed := g.failLog.Allow(); ok {
		g.log.Warn(msg, "source", source, "user", user, "suppressed", suppressed)
	}
}

// safeNext is where to go after signing in: a path on this server, never
// another origin ("//evil.example", "/\evil.example", "https://...").
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) ||
		strings.HasPrefix(next, "/login") || strings.HasPrefix(next, "/logout") {
		return "/"
	}
	return next
}

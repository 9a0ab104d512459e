package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/dashboard"
	"github.com/tributary-iot/tributary/internal/loglimit"
)

// TokenHashPrefix starts every admin.tokens entry.
const TokenHashPrefix = "sha256:"

// HashAdminToken is the admin.tokens entry that accepts token.
func HashAdminToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return TokenHashPrefix + hex.EncodeToString(sum[:])
}

// IsLoopback reports whether a host:port listen address binds loopback
// only: "localhost" or a loopback IP. An empty host (every interface)
// and any other name are not.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	return isLoopbackHost(host)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a AdminConfig) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if a.Listen == "off" {
		return nil
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		add("admin.listen: %q is not host:port (or off)", a.Listen)
	}
	if a.SessionTTL <= 0 || a.SessionIdle <= 0 {
		add("admin.session_ttl and admin.session_idle: want positive durations (defaults %v and %v)", DefaultSessionTTL, DefaultSessionIdle)
	}
	for _, t := range a.Tokens {
		if _, err := parseTokenHash(t); err != nil {
			add("admin.tokens: %v", err)
		}
	}
	for _, h := range a.Hosts {
		if h == "" || strings.ContainsAny(h, ":/ ") && net.ParseIP(h) == nil {
			add("admin.hosts: %q: want a host name or IP address, without port or scheme", h)
		}
	}
	if err := a.TLS.Validate(); err != nil {
		add("admin.tls: %v", err)
	}
	return errs
}

func parseTokenHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	hexed, ok := strings.CutPrefix(s, TokenHashPrefix)
	if !ok || len(hexed) != 2*sha256.Size {
		return h, fmt.Errorf("%q: want sha256: and 64 hex digits, the SHA-256 of the token (printf %%s \"$TOKEN\" | sha256sum), never the token itself", redact(s))
	}
	if _, err := hex.Decode(h[:], []byte(hexed)); err != nil {
		return h, fmt.Errorf("%q: not hex: %w", redact(s), err)
	}
	return h, nil
}

// redact keeps a possible secret out of error messages.
func redact(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// adminExposed refuses a non-loopback admin listener that nobody has to
// sign in to: no admin users (users, from users.db) and no tokens.
func adminExposed(a AdminConfig, users int) error {
	if a.Listen == "off" || len(a.Tokens) > 0 || len(a.TokenFiles) > 0 || users > 0 {
		return nil
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil || IsLoopback(a.Listen) {
		return nil
	}
	return fmt.Errorf("admin.listen: %q is not a loopback address: add an admin user (tributary-cloud -data DIR user add NAME) "+
		"or set admin.tokens (or admin.token_files), so that the dashboard, API and /metrics need a login or a bearer token; or listen on 127.0.0.1", a.Listen)
}

// adminGuard checks every request on the admin listener: its Host must be
// allowed (loopback, the listen host, admin.hosts), and once admin users
// or tokens exist (always on a non-loopback address) it must carry a
// session cookie (see login.go) or one of the tokens as a bearer token.
type adminGuard struct {
	hosts    map[string]bool // lower case
	hashes   [][sha256.Size]byte
	loopback bool // the listener binds loopback only
	users    *auth.Users
	sessions *sessions
	limiter  *loginLimiter
	cookie   string // the session cookie's name
	secure   bool   // the cookie is Secure (admin.tls)
	log      *slog.Logger
	failLog  loglimit.Limiter
	next     http.Handler

	logins  *prometheus.CounterVec // by result
	refused *prometheus.CounterVec // by reason
}

// newAdminGuard reads admin.token_files and builds the guard around next.
func newAdminGuard(a AdminConfig, users *auth.Users, log *slog.Logger, now func() time.Time, next http.Handler) (*adminGuard, error) {
	g := &adminGuard{hosts: map[string]bool{}, next: next, loopback: IsLoopback(a.Listen), users: users, log: log,
		sessions: newSessions(a.SessionTTL, a.SessionIdle, now), limiter: newLoginLimiter(now),
		cookie: SessionCookie, secure: a.TLS.CertFile != "", failLog: loglimit.Limiter{Every: 10 * time.Second},
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_admin_logins_total",
			Help: "Sign-in attempts on the admin listener, by result: ok, failed (wrong name or password), throttled (too many from one address)."}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_admin_requests_refused_total",
			Help: "Admin requests refused before reaching a handler, by reason: host, unauthorized, credentials_in_url."}, []string{"reason"}),
	}
	for _, r := range []string{"ok", "failed", "throttled"} {
		g.logins.WithLabelValues(r) // every series from the start, at 0
	}
	for _, r := range []string{"host", "unauthorized", "credentials_in_url"} {
		g.refused.WithLabelValues(r)
	}
	if g.secure {
		g.cookie = SecureSessionCookie
	}
	if host, _, err := net.SplitHostPort(a.Listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			g.hosts[strings.ToLower(host)] = true
		}
	}
	for _, h := range a.Hosts {
		g.hosts[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	for _, t := range a.Tokens {
		h, err := parseTokenHash(t)
		if err != nil {
			return nil, fmt.Errorf("cloud: admin.tokens: %w", err)
		}
		g.hashes = append(g.hashes, h)
	}
	for _, f := range a.TokenFiles {
		h, err := readTokenFile(f)
		if err != nil {
			return nil, err
		}
		g.hashes = append(g.hashes, h)
	}
	return g, nil
}

// readTokenFile reads one admin.token_files entry.
func readTokenFile(f string) ([sha256.Size]byte, error) {
	b, err := os.ReadFile(f)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("cloud: admin.token_files: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return [sha256.Size]byte{}, fmt.Errorf("cloud: admin.token_files: %s: want one token on one line", f)
	}
	return sha256.Sum256([]byte(tok)), nil
}

// collectors are the guard's metrics.
func (g *adminGuard) collectors() []prometheus.Collector {
	return append(g.sessions.collectors(), g.logins, g.refused)
}

func (g *adminGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r.Host) {
		g.refused.WithLabelValues("host").Inc()
		http.Error(w, "421 misdirected request: this Host is not served here (add it to admin.hosts)", http.StatusMisdirectedRequest)
		return
	}
	if k := credentialsInURL(r.URL); k != "" {
		g.refused.WithLabelValues("credentials_in_url").Inc()
		http.Error(w, fmt.Sprintf("400 bad request: credentials in the URL (%q) are refused: URLs end up in logs and browser history; "+
			"sign in at /login or send Authorization: Bearer TOKEN", k), http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/login":
		g.login(w, r)
		return
	case "/logout":
		g.logout(w, r)
		return
	case dashboard.LoginCSSPath:
		dashboard.LoginCSS(w, r)
		return
	}
	if !g.authRequired() {
		g.next.ServeHTTP(w, r)
		return
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if g.authorized(h) {
			g.next.ServeHTTP(w, r)
			return
		}
	} else if _, ok := g.session(r); ok {
		g.next.ServeHTTP(w, r)
		return
	}
	g.deny(w, r)
}

// authRequired: on a non-loopback address always; on loopback once an
// admin user or token exists (a user added while the server runs counts
// at once).
func (g *adminGuard) authRequired() bool {
	return !g.loopback || len(g.hashes) > 0 || g.users.Len() > 0
}

// deny answers an unauthenticated request: a browser asking for a page is
// sent to the login page (when there are users to sign in as), anything
// else gets 401.
func (g *adminGuard) deny(w http.ResponseWriter, r *http.Request) {
	g.refused.WithLabelValues("unauthorized").Inc()
	users := g.users.Len() > 0
	if users && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(r.URL.Path, "/api/") &&
		strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tributary-cloud admin"`)
	msg := "401 unauthorized: send Authorization: Bearer TOKEN (one of admin.tokens)"
	if users {
		msg = "401 unauthorized: sign in at /login, or send Authorization: Bearer TOKEN (one of admin.tokens)"
	}
	http.Error(w, msg, http.StatusUnauthorized)
}

// credentialsInURL returns the first query key that looks like a
// credential ("" if none).
func credentialsInURL(u *url.URL) string {
	if u.User != nil {
		return "userinfo"
	}
	if u.RawQuery == "" {
		return ""
	}
	for k := range u.Query() {
		switch strings.ToLower(k) {
		case "token", "access_token", "id_token", "password", "passwd", "pass", "pwd", "secret", "api_key", "apikey", "session", "auth":
			return k
		}
	}
	return ""
}

func (g *adminGuard) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	return host != "" && (isLoopbackHost(host) || g.hosts[host])
}

func (g *adminGuard) authorized(header string) bool {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	found := 0
	for i := range g.hashes {
		found |= subtle.ConstantTimeCompare(sum[:], g.hashes[i][:])
	}
	return found == 1
}

// adminMux is the admin listener's mux before the dashboard joins it:
// /metrics, /healthz and /debug/pprof/.
func (s *Server) adminMux(metricsH, healthH http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsH)
	mux.Handle("GET /healthz", healthH)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
)

const (
	adminUser = "ops"
	adminPass = "correct horse battery staple"
	adminTok  = "admin-bearer-token"
)

// clock is a settable clock for the admin sessions.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// adminServer starts a server with one admin user (added to users.db
// before the start, as `user add` would) and one admin token.
func adminServer(t *testing.T, cfg server.Config, clk *clock) (*running, string) {
	t.Helper()
	cfg.Data = filepath.Join(t.TempDir(), "data")
	addUser(t, cfg.Data, adminUser, adminPass)
	cfg.Admin.Tokens = append(cfg.Admin.Tokens, server.HashAdminToken(adminTok))
	opts := server.Options{}
	if clk != nil {
		opts.Now = clk.Now
	}
	r := startWith(t, cfg, opts)
	scheme := "http://"
	if cfg.Admin.TLS.CertFile != "" {
		scheme = "https://"
	}
	return r, scheme + r.s.AdminAddr()
}

func addUser(t *testing.T, data, name, password string) {
	t.Helper()
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	u, err := auth.OpenUsers(filepath.Join(data, server.UsersFile), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add(name, password); err != nil {
		t.Fatal(err)
	}
}

// req is one admin request; the answer's body is read.
type req struct {
	method, path string
	form         url.Values        // a urlencoded body
	header       map[string]string // extra headers
	cookie       *http.Cookie
}

type answer struct {
	*http.Response
	body string
}

// noFollow does not follow redirects: the tests look at them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (q req) do(t *testing.T, c *http.Client, base string) answer {
	t.Helper()
	var body io.Reader
	if q.form != nil {
		body = strings.NewReader(q.form.Encode())
	}
	r, err := http.NewRequest(q.method, base+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if q.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	if q.cookie != nil {
		r.AddCookie(q.cookie)
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return answer{resp, string(b)}
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "tributary_session") && c.Value != "" {
			return c
		}
	}
	return nil
}

func loginForm(user, password, next string) url.Values {
	return url.Values{"user": {user}, "password": {password}, "next": {next}}
}

// signIn posts the right credentials and returns the session cookie.
func signIn(t *testing.T, c *http.Client, base string) *http.Cookie {
	t.Helper()
	a := req{method: "POST", path: "/login", form: loginForm(adminUser, adminPass, "/")}.do(t, c, base)
	ck := sessionCookie(a.Response)
	if a.StatusCode != http.StatusSeeOther || ck == nil {
		t.Fatalf("sign-in: %d %q, cookie %v", a.StatusCode, a.body, ck)
	}
	return ck
}

// metric scrapes /metrics (with the admin token) for one series' value.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	a := req{method: "GET", path: "/metrics", header: map[string]string{"Authorization": "Bearer " + adminTok}}.do(t, http.DefaultClient, base)
	for _, line := range strings.Split(a.body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// A non-loopback admin listener starts with admin users and no tokens;
// with neither it is refused, the message naming both settings.
func TestAdminUsersAllowExposure(t *testing.T) {
	data := t.TempDir()
	cfg := server.Config{Data: data, Listen: "127.0.0.1:0", KinesisListen: "off", Admin: server.AdminConfig{Listen: "0.0.0.0:0"}}
	s, err := server.New(t.Context(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		s.Close()
		t.Fatal("started without users or tokens")
	}
	for _, want := range []string{"admin.listen", "user add", "admin.tokens"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: does not name %s", err, want)
		}
	}
	addUser(t, data, adminUser, adminPass)
	s, err = server.New(t.Context(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("with an admin user: %v", err)
	}
	s.Close()
	if err := cfg.WithDefaults().Check(server.CheckOptions{}); err != nil {
		t.Errorf("Check with an admin user: %v", err)
	}
}

// The whole sign-in flow, and the refusals around it.
func TestAdminLogin(t *testing.T) {
	_, base := adminServer(t, server.Config{}, nil)
	c := noFollow
	html := map[string]string{"Accept": "text/html,application/xhtml+xml"}

	// Unauthenticated: a browser is sent to the login page, the API and
	// other clients get 401.
	a := req{method: "GET", path: "/stream?x=1", header: html}.do(t, c, base)
	if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != "/login?next=%2Fstream%3Fx%3D1" {
		t.Errorf("browser GET /stream: %d to %q", a.StatusCode, a.Header.Get("Location"))
	}
	for _, q := range []req{{method: "GET", path: "/api/v1/overview", header: html}, {method: "GET", path: "/api/v1/overview"},
		{method: "GET", path: "/metrics"}, {method: "GET", path: "/debug/pprof/"}, {method: "HEAD", path: "/"}, {method: "POST", path: "/", header: html}} {
		if a := q.do(t, c, base); a.StatusCode != 401 || (q.method != "HEAD" && !strings.Contains(a.body, "/login")) {
			t.Errorf("%s %s %v: %d %q, want 401 naming /login", q.method, q.path, q.header, a.StatusCode, a.body)
		}
	}
	// The login page: embedded, no script, posts to this origin.
	a = req{method: "GET", path: "/login?next=/stream"}.do(t, c, base)
	if a.StatusCode != 200 || !strings.Contains(a.body, `action="/login"`) || !strings.Contains(a.body, `value="/stream"`) ||
		strings.Contains(a.body, "<script") || !strings.Contains(a.Header.Get("Content-Security-Policy"), "form-action 'self'") {
		t.Errorf("login page: %d %v\n%s", a.StatusCode, a.Header, a.body)
	}
	if a := (req{method: "GET", path: "/login.css"}).do(t, c, base); a.StatusCode != 200 || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/css") {
		t.Errorf("login.css: %d", a.StatusCode)
	}

	// Sign in: a cookie with the safe attributes, and a redirect to next.
	a = req{method: "POST", path: "/login", form: loginForm(adminUser, adminPass, "/stream")}.do(t, c, base)
	ck := sessionCookie(a.Response)
	if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != "/stream" || ck == nil {
		t.Fatalf("sign-in: %d to %q, cookie %v", a.StatusCode, a.Header.Get("Location"), ck)
	}
	if ck.Name != server.SessionCookie || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure ||
		ck.MaxAge != int(server.DefaultSessionTTL/time.Second) {
		t.Errorf("cookie %+v", ck)
	}
	for _, p := range []string{"/", "/api/v1/overview", "/metrics"} {
		if a := (req{method: "GET", path: p, cookie: ck}).do(t, c, base); a.StatusCode != 200 {
			t.Errorf("GET %s signed in: %d", p, a.StatusCode)
		}
	}
	if a := (req{method: "GET", path: "/login", cookie: ck}).do(t, c, base); !strings.Contains(a.body, "Signed in as <strong>ops</strong>") ||
		!strings.Contains(a.body, `action="/logout"`) {
		t.Errorf("login page signed in: %q", a.body)
	}
	// Bearer tokens keep working beside sessions.
	if a := (req{method: "GET", path: "/api/v1/overview", header: map[string]string{"Authorization": "Bearer " + adminTok}}).do(t, c, base); a.StatusCode != 200 {
		t.Errorf("bearer token: %d", a.StatusCode)
	}
	// next never leaves this origin.
	for next, want := range map[string]string{"//evil.example/x": "/", "https://evil.example": "/", "/\\evil.example": "/",
		"/login": "/", "": "/", "/api/v1/devices?x=1": "/api/v1/devices?x=1"} {
		a := req{method: "POST", path: "/login", form: loginForm(adminUser, adminPass, next)}.do(t, c, base)
		if got := a.Header.Get("Location"); got != want {
			t.Errorf("next %q: redirected to %q, want %q", next, got, want)
		}
	}
	// Sign out: the session ends at the server, the cookie is cleared.
	a = req{method: "POST", path: "/logout", cookie: ck}.do(t, c, base)
	if a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != "/login" {
		t.Errorf("logout: %d to %q", a.StatusCode, a.Header.Get("Location"))
	}
	if cl := a.Cookies(); len(cl) != 1 || cl[0].MaxAge >= 0 || cl[0].Value != "" {
		t.Errorf("logout cookies %+v", cl)
	}
	if a := (req{method: "GET", path: "/api/v1/overview", cookie: ck}).do(t, c, base); a.StatusCode != 401 {
		t.Errorf("after logout: %d, want 401", a.StatusCode)
	}
	if a := (req{method: "GET", path: "/logout", cookie: ck}).do(t, c, base); a.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /logout: %d, want 405", a.StatusCode)
	}
}

// Refused sign-ins and sign-outs change nothing: no cookie, no session,
// the existing session still open.
func TestAdminLoginRefusals(t *testing.T) {
	_, base := adminServer(t, server.Config{}, nil)
	c := noFollow
	ck := signIn(t, c, base)
	cross := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	for _, q := range []req{
		{method: "POST", path: "/login", form: loginForm(adminUser, "wrong password!", "/")},
		{method: "POST", path: "/login", form: loginForm("nobody", adminPass, "/")},
		{method: "POST", path: "/login", form: loginForm("", "", "/")},
		{method: "POST", path: "/login", form: loginForm(adminUser, strings.ToUpper(adminPass), "/")},
		// Credentials in the URL: refused even when right.
		{method: "POST", path: "/login?user=ops&password=" + url.QueryEscape(adminPass), form: url.Values{}},
		{method: "GET", path: "/login?user=ops&password=" + url.QueryEscape(adminPass)},
		// Cross-site: a page elsewhere cannot sign a browser in (login CSRF).
		{method: "POST", path: "/login", form: loginForm(adminUser, adminPass, "/"), header: cross},
		// Basic authentication is not a way in.
		{method: "GET", path: "/api/v1/overview", header: map[string]string{"Authorization": "Basic b3BzOmNvcnJlY3QgaG9yc2UgYmF0dGVyeSBzdGFwbGU="}},
		// A forged or stale cookie.
		{method: "GET", path: "/api/v1/overview", cookie: &http.Cookie{Name: server.SessionCookie, Value: strings.Repeat("A", 43)}},
		{method: "GET", path: "/api/v1/overview", cookie: &http.Cookie{Name: server.SessionCookie, Value: ck.Value + "x"}},
		// The session cookie with a wrong bearer token: the header decides.
		{method: "GET", path: "/api/v1/overview", cookie: ck, header: map[string]string{"Authorization": "Bearer wrong"}},
	} {
		a := q.do(t, c, base)
		if a.StatusCode < 400 || sessionCookie(a.Response) != nil {
			t.Errorf("%s %s %v: %d, cookie %v: want a refusal, no cookie", q.method, q.path, q.header, a.StatusCode, sessionCookie(a.Response))
		}
	}
	if n := metric(t, base, "tributary_admin_sessions"); n != 1 {
		t.Errorf("%v sessions after the refusals, want 1", n)
	}
	// A cross-site sign-out is refused; the session stays.
	if a := (req{method: "POST", path: "/logout", cookie: ck, header: cross}).do(t, c, base); a.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site logout: %d, want 403", a.StatusCode)
	}
	if a := (req{method: "GET", path: "/api/v1/overview", cookie: ck}).do(t, c, base); a.StatusCode != 200 {
		t.Errorf("session after the refusals: %d", a.StatusCode)
	}
	if n := metric(t, base, `tributary_admin_logins_total{result="failed"}`); n != 4 {
		t.Errorf("failed sign-ins counted %v, want 4", n)
	}
	if n := metric(t, base, `tributary_admin_logins_total{result="ok"}`); n != 1 {
		t.Errorf("sign-ins counted %v, want 1", n)
	}
}

// Sessions end after session_idle without use, after session_ttl in any
// case, and when their user is removed or gets a new password.
func TestAdminSessionExpiry(t *testing.T) {
	clk := &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	r, base := adminServer(t, server.Config{Admin: server.AdminConfig{SessionTTL: 4 * time.Hour, SessionIdle: time.Hour}}, clk)
	c := noFollow
	ok := func(ck *http.Cookie) bool {
		return req{method: "GET", path: "/api/v1/overview", cookie: ck}.do(t, c, base).StatusCode == 200
	}
	ck := signIn(t, c, base)
	clk.Add(59 * time.Minute)
	if !ok(ck) {
		t.Fatal("session ended before session_idle")
	}
	clk.Add(61 * time.Minute)
	if ok(ck) {
		t.Error("session still open after session_idle without use")
	}
	ck = signIn(t, c, base)
	signedIn := clk.Now()
	for range 7 { // used every 35 minutes: never idle; 4h05m old at the end
		clk.Add(35 * time.Minute)
		want := clk.Now().Sub(signedIn) < 4*time.Hour
		if got := ok(ck); got != want {
			t.Errorf("%v after signing in: open %v, want %v", clk.Now().Sub(signedIn), got, want)
		}
	}
	// The user's password changes, then the user goes: their sessions end.
	ck = signIn(t, c, base)
	if err := r.s.Users().SetPassword(adminUser, "a whole new password"); err != nil {
		t.Fatal(err)
	}
	if ok(ck) {
		t.Error("session open after a new password")
	}
	if a := (req{method: "POST", path: "/login", form: loginForm(adminUser, "a whole new password", "/")}).do(t, c, base); sessionCookie(a.Response) == nil {
		t.Fatalf("sign-in with the new password: %d", a.StatusCode)
	} else {
		ck = sessionCookie(a.Response)
	}
	if err := r.s.Users().Remove(adminUser); err != nil {
		t.Fatal(err)
	}
	if ok(ck) {
		t.Error("session open after its user was removed")
	}
}

// Sign-in attempts are limited per source address: LoginBurst, then 429
// with Retry-After (the right password included) until the bucket
// refills; the throttled attempts are counted.
func TestAdminLoginRateLimit(t *testing.T) {
	clk := &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	_, base := adminServer(t, server.Config{}, clk)
	c := noFollow
	for i := range server.LoginBurst {
		if a := (req{method: "POST", path: "/login", form: loginForm(adminUser, "guess "+strconv.Itoa(i)+" of many", "/")}).do(t, c, base); a.StatusCode != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, a.StatusCode)
		}
	}
	a := req{method: "POST", path: "/login", form: loginForm(adminUser, adminPass, "/")}.do(t, c, base)
	if a.StatusCode != http.StatusTooManyRequests || a.Header.Get("Retry-After") == "" || sessionCookie(a.Response) != nil {
		t.Fatalf("attempt past the burst: %d, Retry-After %q, cookie %v", a.StatusCode, a.Header.Get("Retry-After"), sessionCookie(a.Response))
	}
	if n := metric(t, base, `tributary_admin_logins_total{result="throttled"}`); n != 1 {
		t.Errorf("throttled counted %v, want 1", n)
	}
	secs, _ := strconv.Atoi(a.Header.Get("Retry-After"))
	clk.Add(time.Duration(secs) * time.Second)
	signIn(t, c, base)
}

// With admin.tls the cookie is Secure, under the __Host- prefix.
func TestAdminSessionCookieTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	cert, key := pki.Server(t, "cloud")
	_, base := adminServer(t, server.Config{Admin: server.AdminConfig{TLS: tlsfiles.Server{CertFile: cert, KeyFile: key}}}, nil)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pki.Pool
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, CheckRedirect: noFollow.CheckRedirect}
	ck := signIn(t, c, base)
	if ck.Name != server.SecureSessionCookie || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie %+v", ck)
	}
}

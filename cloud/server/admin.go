package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
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
	} else if !IsLoopback(a.Listen) && len(a.Tokens) == 0 && len(a.TokenFiles) == 0 {
		add("admin.listen: %q is not a loopback address: set admin.tokens (or admin.token_files) so that the dashboard, API and /metrics need a bearer token, or listen on 127.0.0.1", a.Listen)
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

// adminGuard checks every request on the admin listener: its Host must be
// allowed (loopback, the listen host, admin.hosts), and with tokens
// configured it must carry one of them as a bearer token.
type adminGuard struct {
	hosts  map[string]bool // lower case
	hashes [][sha256.Size]byte
	next   http.Handler
}

// newAdminGuard reads admin.token_files and builds the guard around next.
func newAdminGuard(a AdminConfig, next http.Handler) (*adminGuard, error) {
	g := &adminGuard{hosts: map[string]bool{}, next: next}
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
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cloud: admin.token_files: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("cloud: admin.token_files: %s: want one token on one line", f)
		}
		g.hashes = append(g.hashes, sha256.Sum256([]byte(tok)))
	}
	return g, nil
}

func (g *adminGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostAllowed(r.Host) {
		http.Error(w, "421 misdirected request: this Host is not served here (add it to admin.hosts)", http.StatusMisdirectedRequest)
		return
	}
	if len(g.hashes) > 0 && !g.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tributary-cloud admin"`)
		http.Error(w, "401 unauthorized: send Authorization: Bearer TOKEN (one of admin.tokens)", http.StatusUnauthorized)
		return
	}
	g.next.ServeHTTP(w, r)
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

package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
)

// status sends one request and returns its status code. host, if set,
// replaces the Host header; auth, if set, is the Authorization header.
func status(t *testing.T, c *http.Client, method, url, host, auth string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// With the defaults (only the data folder set, ports picked by the
// system), the dashboard, its API, /metrics and pprof answer on the admin
// listener and not on the ingest listener, which serves only /v1/ingest
// and /healthz.
func TestAdminListenerSplit(t *testing.T) {
	r := start(t, server.Config{Data: t.TempDir()}, shardstore.Options{})
	admin, ingest := "http://"+r.s.AdminAddr(), "http://"+r.s.Addr()
	if r.s.AdminAddr() == r.s.Addr() {
		t.Fatal("one listener for both")
	}
	c := http.DefaultClient
	for _, p := range []string{"/", "/api/v1/overview", "/metrics", "/debug/pprof/", "/healthz"} {
		if got := status(t, c, "GET", admin+p, "", ""); got != 200 {
			t.Errorf("admin GET %s: %d, want 200", p, got)
		}
	}
	for _, p := range []string{"/", "/api/v1/overview", "/api/v1/events", "/metrics", "/debug/pprof/", "/assets/x.js"} {
		if got := status(t, c, "GET", ingest+p, "", ""); got != 404 {
			t.Errorf("ingest GET %s: %d, want 404", p, got)
		}
	}
	if got := status(t, c, "GET", ingest+"/healthz", "", ""); got != 200 {
		t.Errorf("ingest GET /healthz: %d", got)
	}
	if got := status(t, c, "POST", ingest+"/v1/ingest", "", ""); got != 401 {
		t.Errorf("ingest POST /v1/ingest without a token: %d, want 401", got)
	}
}

func TestDefaultListenersLoopback(t *testing.T) {
	cfg := server.Config{Data: "/d"}.WithDefaults()
	if !server.IsLoopback(cfg.Admin.Listen) || !server.IsLoopback(cfg.KinesisListen) || server.IsLoopback(cfg.Listen) {
		t.Errorf("admin %s, kinesis %s, ingest %s", cfg.Admin.Listen, cfg.KinesisListen, cfg.Listen)
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "127.9.9.9:1": true,
		":1": false, "0.0.0.0:1": false, "[::]:1": false, "10.0.0.1:1": false, "example.com:1": false, "nonsense": false} {
		if got := server.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// A non-loopback admin listener or Kinesis API without authentication is
// refused at start, naming the setting; with it, the server starts.
func TestExposedListenersNeedAuth(t *testing.T) {
	quiet := server.Options{Logger: slog.New(slog.DiscardHandler)}
	for _, c := range []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"admin", server.Config{Admin: server.AdminConfig{Listen: "0.0.0.0:0"}, KinesisListen: "off"}, "admin.listen: \"0.0.0.0:0\" is not a loopback address: add an admin user (tributary-cloud -data DIR user add NAME) or set admin.tokens"},
		{"admin all interfaces", server.Config{Admin: server.AdminConfig{Listen: ":0"}, KinesisListen: "off"}, "admin.tokens"},
		{"kinesis", server.Config{Admin: server.AdminConfig{Listen: "off"}, KinesisListen: ":0"}, "kinesis_listen: \":0\" is not a loopback address: set kinesis_api.credentials"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Data, c.cfg.Listen = t.TempDir(), "127.0.0.1:0"
			s, err := server.New(t.Context(), c.cfg, quiet)
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v, want %q", err, c.want)
			}
		})
	}
	cfg := server.Config{Data: t.TempDir(), Listen: "127.0.0.1:0",
		Admin:         server.AdminConfig{Listen: "0.0.0.0:0", Tokens: []string{server.HashAdminToken("admin-secret")}},
		KinesisListen: "0.0.0.0:0", KinesisAPI: server.KinesisAPIConfig{Credentials: map[string]string{"AKID": "secret"}}}
	s, err := server.New(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatalf("with authentication: %v", err)
	}
	s.Close()
}

// With admin tokens, every admin request needs one as a bearer token
// (from admin.tokens or admin.token_files); a token in the URL does not
// count.
func TestAdminTokens(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(file, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, server.Config{Data: filepath.Join(dir, "data"), Admin: server.AdminConfig{
		Tokens: []string{server.HashAdminToken("s3cret-token")}, TokenFiles: []string{file}}}, shardstore.Options{})
	admin := "http://" + r.s.AdminAddr()
	c := http.DefaultClient
	for _, p := range []string{"/", "/api/v1/overview", "/api/v1/events", "/metrics", "/debug/pprof/"} {
		for auth, want := range map[string]int{
			"": 401, "Bearer wrong": 401, "Basic czNjcmV0LXRva2Vu": 401, "Bearer": 401, "s3cret-token": 401,
			"Bearer " + server.HashAdminToken("s3cret-token"): 401, // the hash is not the token
			"Bearer s3cret-token":                             200, "bearer from-a-file": 200,
		} {
			if p == "/api/v1/events" && want == 200 {
				continue // an event stream does not end
			}
			if got := status(t, c, "GET", admin+p, "", auth); got != want {
				t.Errorf("GET %s with %q: %d, want %d", p, auth, got, want)
			}
		}
	}
	for _, q := range []string{"?token=s3cret-token", "?access_token=s3cret-token", "?device=x&Password=p"} {
		if got := status(t, c, "GET", admin+"/api/v1/overview"+q, "", ""); got != 400 {
			t.Errorf("credentials in the URL (%s): %d, want 400", q, got)
		}
		// Refused even with a good token in the header: the URL has
		// already leaked it into logs.
		if got := status(t, c, "GET", admin+"/api/v1/overview"+q, "", "Bearer s3cret-token"); got != 400 {
			t.Errorf("credentials in the URL (%s) with a good header: %d, want 400", q, got)
		}
	}
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
		t.Errorf("401 without WWW-Authenticate: Bearer (%q)", got)
	}
	// The ingest listener does not take admin tokens for anything.
	if got := status(t, c, "GET", "http://"+r.s.Addr()+"/metrics", "", "Bearer s3cret-token"); got != 404 {
		t.Errorf("ingest /metrics with the admin token: %d, want 404", got)
	}
}

// A Host header other than loopback names, the listen host and
// admin.hosts is refused (DNS rebinding: a page on evil.example whose
// name now resolves to 127.0.0.1).
func TestAdminHostAllowList(t *testing.T) {
	r := start(t, server.Config{Data: t.TempDir(), Admin: server.AdminConfig{Hosts: []string{"Dash.Example.COM"}}}, shardstore.Options{})
	admin := "http://" + r.s.AdminAddr()
	_, port, _ := strings.Cut(r.s.AdminAddr(), ":")
	c := http.DefaultClient
	for host, want := range map[string]int{
		"":                         200, // the listen address itself: 127.0.0.1:port
		"localhost:" + port:        200,
		"LOCALHOST":                200,
		"[::1]:" + port:            200,
		"dash.example.com":         200,
		"dash.example.com:" + port: 200,
		"evil.example":             421,
		"evil.example:" + port:     421,
		"127.0.0.1.evil.example":   421,
		"10.1.2.3:" + port:         421,
		"dash.example.com.evil":    421,
	} {
		if got := status(t, c, "GET", admin+"/api/v1/overview", host, ""); got != want {
			t.Errorf("Host %q: %d, want %d", host, got, want)
		}
	}
	// The ingest listener serves gateways by any name.
	if got := status(t, c, "GET", "http://"+r.s.Addr()+"/healthz", "evil.example", ""); got != 200 {
		t.Errorf("ingest with another Host: %d", got)
	}
}

// Cross-site requests that could change state are refused (on every
// path: silences_test.go checks the endpoints that do change state).
func TestAdminCrossOrigin(t *testing.T) {
	r := start(t, server.Config{Data: t.TempDir()}, shardstore.Options{})
	req, _ := http.NewRequest("POST", "http://"+r.s.AdminAddr()+"/api/v1/overview", strings.NewReader("{}"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", resp.StatusCode)
	}
}

// The admin listener serves TLS when admin.tls is set; the dashboard URL
// says https.
func TestAdminTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	cert, key := pki.Server(t, "cloud")
	r := start(t, server.Config{Data: t.TempDir(), Admin: server.AdminConfig{TLS: tlsfiles.Server{CertFile: cert, KeyFile: key}}}, shardstore.Options{})
	if got := r.s.DashboardURL(); !strings.HasPrefix(got, "https://127.0.0.1:") {
		t.Errorf("DashboardURL %q", got)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pki.Pool
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	if got := status(t, c, "GET", "https://"+r.s.AdminAddr()+"/api/v1/overview", "", ""); got != 200 {
		t.Errorf("https: %d", got)
	}
	resp, err := http.Get("http://" + r.s.AdminAddr() + "/api/v1/overview")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered on the TLS admin listener")
		}
	}
}

// kinesis_api.tls: the Kinesis API answers over TLS, to a client that
// trusts the CA; plain HTTP gets no answer.
func TestKinesisAPITLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	cert, key := pki.Server(t, "cloud")
	r := start(t, server.Config{Data: t.TempDir(), KinesisAPI: server.KinesisAPIConfig{TLS: tlsfiles.Server{CertFile: cert, KeyFile: key}}}, shardstore.Options{})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pki.Pool
	defer tr.CloseIdleConnections()
	c := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", HTTPClient: &http.Client{Transport: tr},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")},
		func(o *kinesis.Options) { o.BaseEndpoint = aws.String("https://" + r.s.KinesisAddr()) })
	out, err := c.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String("telemetry")})
	if err != nil || len(out.Shards) != 4 {
		t.Fatalf("ListShards over TLS: %v", err)
	}
	resp, err := http.Post("http://"+r.s.KinesisAddr(), "application/x-amz-json-1.1", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered on the TLS Kinesis API")
		}
	}
}

package alerts_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/alerts"
	"github.com/tributary-iot/tributary/internal/metrics/metricstest"
)

// Every POST carries X-Tributary-Signature: t=UNIX,v1=HEX, where HEX is
// HMAC-SHA256(secret, t "." body); the receiver below checks it with the
// standard library alone, following the documented format.
func TestWebhookSignature(t *testing.T) {
	secret := []byte("whsec-test-0123456789")
	now := time.Unix(1767225600, 0)
	type got struct {
		header string
		body   []byte
	}
	var mu sync.Mutex
	var gots []got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		gots = append(gots, got{r.Header.Get("X-Tributary-Signature"), b})
		mu.Unlock()
	}))
	defer srv.Close()
	d := runDispatcher(t, alerts.Config{WebhookURL: srv.URL, WebhookSecret: secret}, alerts.Options{Now: func() time.Time { return now }})
	d.Send(alert("dev-1", 1))
	d.Send(alert("dev-2", 2))
	eventually(t, "two alerts delivered", func() bool { return d.Stats().WebhookSent == 2 })
	mu.Lock()
	defer mu.Unlock()
	for _, g := range gots {
		ts, v1, ok := strings.Cut(g.header, ",v1=")
		if !ok || ts != "t=1767225600" {
			t.Fatalf("header %q: want t=1767225600,v1=HEX", g.header)
		}
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("1767225600." + string(g.body)))
		if want := hex.EncodeToString(m.Sum(nil)); v1 != want {
			t.Errorf("v1=%s, want %s over %q", v1, want, g.body)
		}
		if err := alerts.VerifySignature(secret, g.body, g.header, now.Add(time.Minute), 5*time.Minute); err != nil {
			t.Errorf("VerifySignature: %v", err)
		}
		tampered := bytes.Replace(g.body, []byte(`"dev-`), []byte(`"dex-`), 1)
		for _, c := range []struct {
			secret, body []byte
			header       string
			now          time.Time
			want         error
		}{
			{secret, tampered, g.header, now, alerts.ErrBadSignature},
			{[]byte("another secret"), g.body, g.header, now, alerts.ErrBadSignature},
			{secret, g.body, "t=1767225601,v1=" + v1, now, alerts.ErrBadSignature}, // the time is signed too
			{secret, g.body, "v1=" + v1, now, alerts.ErrBadSignature},
			{secret, g.body, g.header, now.Add(6 * time.Minute), alerts.ErrStale}, // a replay, later
			{secret, g.body, g.header, now.Add(-6 * time.Minute), alerts.ErrStale},
		} {
			if err := alerts.VerifySignature(c.secret, c.body, c.header, c.now, 5*time.Minute); !errors.Is(err, c.want) {
				t.Errorf("VerifySignature(%q, %q): %v, want %v", c.header, c.body, err, c.want)
			}
		}
	}
	if len(gots) != 2 {
		t.Fatalf("%d posts", len(gots))
	}
	// Sign follows the same format.
	if h := alerts.Sign(secret, []byte("{}"), now); h != "t=1767225600,v1="+hex.EncodeToString(hmacOf(secret, "1767225600.{}")) {
		t.Errorf("Sign = %q", h)
	}
}

// runDispatcher makes a Dispatcher and runs it until the test ends.
func runDispatcher(t *testing.T, cfg alerts.Config, opts alerts.Options) *alerts.Dispatcher {
	t.Helper()
	d, err := alerts.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

func hmacOf(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// A redirect is not followed, even by a caller's client that would: the
// target never sees the alert, the alert is dropped (not retried), and
// the redirect is counted.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	var targetCalls, calls atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { targetCalls.Add(1) }))
	defer target.Close()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			calls.Store(0)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				http.Redirect(w, r, target.URL+"/elsewhere?key=leaked", code)
			}))
			defer srv.Close()
			reg := prometheus.NewRegistry()
			var logs bytes.Buffer
			var logMu sync.Mutex
			d := runDispatcher(t, alerts.Config{WebhookURL: srv.URL, WebhookRetries: 3}, alerts.Options{Registerer: reg,
				Client: &http.Client{}, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))})
			d.Send(alert("dev-1", 1))
			eventually(t, "the alert given up", func() bool { return d.Stats().WebhookFailed == 1 })
			if n := calls.Load(); n != 1 {
				t.Errorf("%d calls to the webhook: a redirect is not retried", n)
			}
			if n := metricstest.Value(t, reg, "tributary_alerts_webhook_redirects_total"); n != 1 {
				t.Errorf("redirects metric %v", n)
			}
			logMu.Lock()
			defer logMu.Unlock()
			if !strings.Contains(logs.String(), "redirect") || strings.Contains(logs.String(), "leaked") {
				t.Errorf("log %q: want the redirect named, the Location's query redacted", logs.String())
			}
		})
	}
	if n := targetCalls.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// The webhook URL's user info and query values never reach the logs, nor
// the errors logged (a refused connection's error names the URL).
func TestWebhookURLRedactedInLogs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every attempt fails with the URL in the error
	var logs bytes.Buffer
	var mu sync.Mutex
	url := "http://hookuser:hunter2@" + addr + "/hook?token=s3cr3t-value&channel=ops-room-7#frag-secret"
	d := runDispatcher(t, alerts.Config{WebhookURL: url, WebhookRetries: 1, WebhookTimeout: time.Second},
		alerts.Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	d.Send(alert("dev-1", 1))
	eventually(t, "the alert given up", func() bool { return d.Stats().WebhookFailed == 1 })
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, secret := range []string{"hunter2", "hookuser", "s3cr3t-value", "frag-secret", "ops-room-7"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "REDACTED") || !strings.Contains(out, addr+"/hook") {
		t.Errorf("the log does not show the redacted URL:\n%s", out)
	}
	if err := (alerts.Config{WebhookURL: "ftp://u:hunter2@x/?k=s3cr3t-value"}).Validate(); err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("Validate: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com/x":               "https://hooks.example.com/x",
		"https://u:p@hooks.example.com/x?a=1&b=2#f": "https://REDACTED@hooks.example.com/x?a=REDACTED&b=REDACTED",
		"https://u@hooks.example.com/x":             "https://REDACTED@hooks.example.com/x",
		"http://127.0.0.1:9/h?sig=abc&sig=def":      "http://127.0.0.1:9/h?sig=REDACTED",
		"http://[::1]:9/%zz":                        "(unparseable URL, redacted)",
	} {
		if got := alerts.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

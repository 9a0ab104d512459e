package uplink_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/edge/uplink"
)

func TestConfigValidate(t *testing.T) {
	good := func() uplink.Config {
		return uplink.Config{URL: "https://cloud:8080", Gateway: "gw-1", Token: "t0k"}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		name string
		mod  func(*uplink.Config)
		want string // in the error
	}{
		{"no url", func(c *uplink.Config) { c.URL = "" }, "url is required"},
		{"scheme", func(c *uplink.Config) { c.URL = "ftp://cloud" }, "want http://host"},
		{"query", func(c *uplink.Config) { c.URL = "https://cloud/?a=b" }, "no query"},
		{"tls on http", func(c *uplink.Config) { c.URL = "http://cloud"; c.TLS.CAFile = "x" }, "plain http"},
		{"http to the network", func(c *uplink.Config) { c.URL = "http://cloud.example:8080" }, "Insecure"},
		{"http to a LAN address", func(c *uplink.Config) { c.URL = "http://192.0.2.7:8080" }, "cloud.insecure: true"},
		{"gateway", func(c *uplink.Config) { c.Gateway = "bad id!" }, "gateway"},
		{"token", func(c *uplink.Config) { c.Token = "" }, "token is required"},
		{"token space", func(c *uplink.Config) { c.Token = "a b" }, "white space"},
		{"compression", func(c *uplink.Config) { c.Compression = "br" }, "compression"},
		{"max readings", func(c *uplink.Config) { c.MaxReadings = 50_001 }, "max readings"},
		{"max bytes", func(c *uplink.Config) { c.MaxBytes = 100 }, "max bytes"},
		{"max bytes over batch limit", func(c *uplink.Config) { c.MaxBytes = 9 << 20 }, "max bytes"},
		{"age", func(c *uplink.Config) { c.MaxAge = -time.Second }, "max age"},
		{"backoff", func(c *uplink.Config) { c.Backoff = uplink.Backoff{Initial: time.Minute, Max: time.Second} }, "backoff"},
		{"multiplier", func(c *uplink.Config) { c.Backoff.Multiplier = 0.5 }, "multiplier"},
		{"share", func(c *uplink.Config) { c.BacklogShare = 1.5 }, "backlog share"},
		{"negative share", func(c *uplink.Config) { c.BacklogShare = -0.1 }, "backlog share"},
		{"in flight", func(c *uplink.Config) { c.MaxInFlight = -1 }, "in flight"},
		{"cert without key", func(c *uplink.Config) { c.TLS.CertFile = "a.pem" }, "go together"},
	} {
		c := good()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
		if _, nerr := uplink.New(uplink.NewMemSource(1), c); nerr == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
	// Plain http is fine to this host, or anywhere with Insecure.
	for _, url := range []string{"http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost:8080", "http://127.0.0.2"} {
		c := good()
		c.URL = url
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", url, err)
		}
	}
	if c := good(); true {
		c.URL, c.Insecure = "http://cloud.example:8080", true
		if err := c.Validate(); err != nil {
			t.Errorf("http with Insecure: %v", err)
		}
	}
	// Several problems are reported together.
	if err := (uplink.Config{}).Validate(); err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("empty config: %v", err)
	}
	// Files are checked by New.
	c := good()
	c.TLS.CAFile = notPEM
	if _, err := uplink.New(uplink.NewMemSource(1), c); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad CA file: %v", err)
	}
	c = good()
	c.TLS.CAFile = filepath.Join(dir, "missing.pem")
	if _, err := uplink.New(uplink.NewMemSource(1), c); err == nil {
		t.Error("missing CA file accepted")
	}
}

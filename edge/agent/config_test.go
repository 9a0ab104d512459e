package agent_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/strictyaml/yamltest"

	"github.com/tributary-iot/tributary/edge/agent"
)

// TestConfigFixtures loads testdata/*.good.yml (must validate) and
// *.bad.yml (must fail with every "# want:" substring).
func TestConfigFixtures(t *testing.T) {
	yamltest.Run(t, "testdata", 4, func(b []byte) error {
		cfg, err := agent.ParseConfig(b)
		if err != nil {
			return err
		}
		return cfg.WithDefaults().Check()
	})
}

// TestExampleConfig keeps deploy/agent.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	cfg, err := agent.LoadConfig("../../deploy/agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Queue.MaxBytes != 2<<30 || cfg.Queue.Policy != "block" || len(cfg.Local.Sensors) != 2 {
		t.Errorf("example decoded as %+v", cfg)
	}
}

// TestDefaultListen: the metrics port is outside Prometheus' exporter
// range (9100-9999, every port allocated to some exporter; 9100 is
// node_exporter's) and is not the broker's.
func TestDefaultListen(t *testing.T) {
	cfg := agent.Config{}.WithDefaults()
	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || (n >= 9090 && n <= 9999) || cfg.Listen == cfg.MQTT.Listen {
		t.Errorf("default listen %q: want a port outside 9090-9999 and apart from the broker's %q", cfg.Listen, cfg.MQTT.Listen)
	}
}

// TestFutureMarginSetting: clock.future_margin defaults to 10 minutes and
// a negative value (the check off) is kept and valid.
func TestFutureMarginSetting(t *testing.T) {
	if got := (agent.Config{}).WithDefaults().Clock.FutureMargin; got != 10*time.Minute {
		t.Errorf("default clock.future_margin %v, want 10m", got)
	}
	cfg, err := agent.ParseConfig([]byte("gateway: gw-1\ndata: /tmp/x\nmqtt:\n  listen: 127.0.0.1:1883\n" +
		"cloud:\n  url: http://127.0.0.1:8080\n  token: abc\nclock:\n  future_margin: -1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil || cfg.Clock.FutureMargin != -time.Second {
		t.Errorf("clock.future_margin -1s: got %v, %v; want -1s, valid", cfg.Clock.FutureMargin, err)
	}
}

package fleet_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/internal/strictyaml"
	"github.com/tributary-iot/tributary/internal/strictyaml/yamltest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/fleet"
	"github.com/tributary-iot/tributary/simulator/model"
)

func TestLoadConfig(t *testing.T) {
	full, err := fleet.LoadConfig("testdata/full.good.yml", fleet.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := full.Validate(); err != nil {
		t.Fatal(err)
	}
	if full.Devices != 100 || full.Duration != 10*time.Minute || full.Skew != -90*time.Second ||
		full.Sensors != fleet.SensorsMixed || len(full.Anomalies) != 3 || full.LogFormat != "json" {
		t.Errorf("full.good.yml decoded to %+v", full)
	}
	min, err := fleet.LoadConfig("testdata/minimal.good.yml", fleet.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := fleet.DefaultConfig()
	want.Broker, want.Devices = "tcp://broker.local:1883", 5
	if min.Broker != want.Broker || min.Devices != want.Devices || min.Rate != want.Rate || min.ConnectRate != want.ConnectRate {
		t.Errorf("keys left out must keep their defaults: got %+v", min)
	}

	if _, err := fleet.LoadConfig("testdata/missing.yml", fleet.DefaultConfig()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestConfigFixtures: every testdata/*.good.yml decodes over the defaults
// and validates; every *.bad.yml fails with each of its "# want:" lines;
// every validation error wraps ErrConfig.
func TestConfigFixtures(t *testing.T) {
	yamltest.Run(t, "testdata", 6, func(b []byte) error {
		c := fleet.DefaultConfig()
		if err := strictyaml.Decode(b, &c); err != nil {
			return err
		}
		err := c.Validate()
		if err != nil && !errors.Is(err, fleet.ErrConfig) {
			t.Errorf("Validate: %v does not wrap ErrConfig", err)
		}
		return err
	})
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*fleet.Config)
		want string // "" means valid
	}{
		{"default", func(*fleet.Config) {}, ""},
		{"mqtt scheme", func(c *fleet.Config) { c.Broker = "mqtt://h:1883" }, ""},
		{"no host", func(c *fleet.Config) { c.Broker = "tcp://" }, "broker"},
		{"too many devices", func(c *fleet.Config) { c.Devices = fleet.MaxDevices + 1 }, "devices"},
		{"slow rate", func(c *fleet.Config) { c.Rate = 0.01 }, "rate"},
		{"NaN rate", func(c *fleet.Config) { c.Rate = nan() }, "rate"},
		{"negative duration", func(c *fleet.Config) { c.Duration = -time.Second }, "duration"},
		{"bad prefix", func(c *fleet.Config) { c.Prefix = "a/b" }, "prefix"},
		{"empty prefix", func(c *fleet.Config) { c.Prefix = "" }, ""},
		{"zero connect rate", func(c *fleet.Config) { c.ConnectRate = 0 }, "connect rate"},
		{"negative anomaly rate", func(c *fleet.Config) { c.AnomalyRate = -1 }, "anomaly rate"},
		{"kind twice", func(c *fleet.Config) { c.Anomalies = []string{"spike", "spike"} }, "twice"},
		{"fault kind", func(c *fleet.Config) { c.Anomalies = []string{"disconnect"} }, "anomaly kind"},
		{"storm fraction", func(c *fleet.Config) { c.StormFraction = 1.5 }, "storm fraction"},
		{"skew", func(c *fleet.Config) { c.SkewFraction, c.Skew = 0.1, -time.Minute }, ""},
		{"malformed", func(c *fleet.Config) { c.MalformedRate = -2 }, "malformed rate"},
		{"log format", func(c *fleet.Config) { c.LogFormat = "xml" }, "log format"},
		{"stats", func(c *fleet.Config) { c.StatsEvery = -time.Second }, "stats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fleet.DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

// TestRunMalformed runs a small fleet in process with malformed payloads:
// a subscriber sees exactly the payloads the summary counts as sent, none
// of them decodes, every other message does, and the truth file has one
// malformed line per payload.
func TestRunMalformed(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // after the broker stops
	broker := testenv.StartMosquitto(t)

	var mu sync.Mutex
	var good, bad int
	readings := map[protocol.Key]bool{}
	arrived := make(chan struct{}, 1) // nudged after every message
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("sub").SetAutoReconnect(false))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	tok := sub.Subscribe(protocol.TelemetryFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		topic, _ := protocol.ParseTopic(m.Topic())
		rs, err := protocol.DecodeSenML(m.Payload(), protocol.DecodeOptions{Device: topic.Device})
		mu.Lock()
		if err != nil {
			bad++
		} else {
			good++
			for _, r := range rs {
				readings[r.Key()] = true
			}
		}
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	dir := t.TempDir()
	c := fleet.DefaultConfig()
	c.Broker, c.Devices, c.Rate, c.Duration = broker.URL, 8, 10, 2*time.Second
	c.MalformedRate = 3600 // one per device-second
	c.Truth, c.Summary, c.StatsEvery = filepath.Join(dir, "truth.jsonl"), filepath.Join(dir, "summary.json"), 0
	var logs bytes.Buffer
	sum, err := fleet.Run(t.Context(), c, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	// Every message the fleet published reaches the subscriber after Run
	// returns or a little later: wait for the count, not for a while.
	sent := sum.PacksPublished + sum.MalformedSent
	timeout := time.After(10 * time.Second)
	for {
		mu.Lock()
		n := uint64(good + bad)
		mu.Unlock()
		if n >= sent {
			break
		}
		select {
		case <-arrived:
		case <-timeout:
			t.Fatalf("subscriber saw %d of the %d messages sent", n, sent)
		}
	}
	sub.Disconnect(100)

	var fromFile fleet.Summary
	b, err := os.ReadFile(c.Summary)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fromFile); err != nil {
		t.Fatal(err)
	}
	if fromFile.ReadingsPublished != sum.ReadingsPublished || fromFile.MalformedSent != sum.MalformedSent {
		t.Errorf("summary file %+v differs from the returned %+v", fromFile.Totals, sum.Totals)
	}
	truth, err := model.ReadTruthFile(c.Truth)
	if err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if sum.MalformedSent == 0 || uint64(bad) != sum.MalformedSent || sum.MalformedFailed != 0 {
		t.Errorf("subscriber saw %d malformed payloads; summary: %d sent, %d failed", bad, sum.MalformedSent, sum.MalformedFailed)
	}
	var malformed, published, tallied uint64
	for _, e := range truth {
		switch e.Kind {
		case model.KindMalformed:
			malformed++
		case model.KindPublished:
			published++
			tallied += e.Readings
		default:
			t.Errorf("unexpected truth line %+v", e)
		}
	}
	if malformed != sum.MalformedSent+sum.MalformedFailed {
		t.Errorf("%d truth lines for %d malformed payloads", malformed, sum.MalformedSent+sum.MalformedFailed)
	}
	if published != uint64(c.Devices) || tallied != sum.ReadingsPublished {
		t.Errorf("%d published lines adding up to %d readings; want %d lines, %d readings", published, tallied, c.Devices, sum.ReadingsPublished)
	}
	if uint64(good) != sum.PacksPublished || uint64(len(readings)) != sum.ReadingsPublished {
		t.Errorf("subscriber: %d packs, %d readings; summary: %d packs, %d readings", good, len(readings), sum.PacksPublished, sum.ReadingsPublished)
	}
	if sum.EverConnected != c.Devices || sum.MaxConnected != c.Devices {
		t.Errorf("connected: ever %d, max %d, want %d", sum.EverConnected, sum.MaxConnected, c.Devices)
	}
	if !strings.Contains(sum.String(), "malformed sent") {
		t.Errorf("one-line summary: %s", sum)
	}
}

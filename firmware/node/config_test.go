package node_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
)

// TestConfigFixtures loads testdata/*.good.yaml (must be valid) and
// *.bad.yaml (must fail with every "# want: ..." substring in the file).
func TestConfigFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
					wants = append(wants, w)
				}
			}
			_, err = node.LoadConfig(f)
			if err == nil {
				var c node.Config
				c, _ = node.LoadConfig(f)
				err = c.Validate()
			}
			switch {
			case strings.HasSuffix(name, ".good.yaml"):
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
			case strings.HasSuffix(name, ".bad.yaml"):
				if len(wants) == 0 {
					t.Fatal(`a bad fixture needs "# want: substring" lines`)
				}
				if err == nil {
					t.Fatalf("want errors %q, got none", wants)
				}
				for _, w := range wants {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
			default:
				t.Fatal("fixture must be named *.good.yaml or *.bad.yaml")
			}
		})
	}
}

// TestConfigDecoding: the full fixture decodes every field.
func TestConfigDecoding(t *testing.T) {
	c, err := node.LoadConfig("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Device != "plant-7.line:2" || c.QoS == nil || *c.QoS != 0 || c.Interval != 2*time.Second ||
		c.Phase != 250*time.Millisecond || c.BufferReadings != 50000 || c.MaxInflight != 32 ||
		c.BatchSamples != 10 || c.BatchDelay != 30*time.Second || c.TLS.ServerName != "broker.example.com" ||
		c.MaxReconnectBackoff != 2*time.Minute || c.DrainTimeout != 10*time.Second {
		t.Errorf("decoded %+v", c)
	}
	if len(c.Sensors) != 2 || c.Sensors[0].Addr != 0x45 || c.Sensors[0].Interval != 10*time.Second ||
		c.Sensors[1].Debounce != 5*time.Millisecond || c.Sensors[1].PulsesPerUnit != 1000 {
		t.Errorf("sensors %+v", c.Sensors)
	}
}

// TestExampleConfig keeps deploy/node.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	c, err := node.LoadConfig("../../deploy/node.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("deploy/node.example.yaml:\n%v", err)
	}
	kinds := []string{sensor.KindBME280, sensor.KindSHT3x, sensor.KindMCP3008, sensor.KindPulse}
	if len(c.Sensors) != len(kinds) {
		t.Fatalf("%d sensors, want %d", len(c.Sensors), len(kinds))
	}
	for i, k := range kinds {
		if c.Sensors[i].Kind != k {
			t.Errorf("sensor %d is %q, want %q", i+1, c.Sensors[i].Kind, k)
		}
	}
	if s := c.Sensors[0]; s.Addr != 0x76 || s.Bus != "1" {
		t.Errorf("bme280 %+v, want 0x76 on bus 1", s)
	}
	if s := c.Sensors[1]; s.Addr != 0x44 {
		t.Errorf("sht3x %+v, want 0x44", s)
	}
	if s := c.Sensors[2]; s.Bus != "/dev/spidev0.0" || len(s.Channels) != 2 {
		t.Errorf("mcp3008 %+v, want 2 channels on /dev/spidev0.0", s)
	}
	if s := c.Sensors[3]; s.Bus != "GPIO17" {
		t.Errorf("pulse %+v, want GPIO17", s)
	}
}

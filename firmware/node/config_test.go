package node_test

import (
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/strictyaml/yamltest"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
)

// TestConfigFixtures loads testdata/*.good.yaml (must be valid) and
// *.bad.yaml (must fail with every "# want: ..." substring in the file).
func TestConfigFixtures(t *testing.T) {
	yamltest.Run(t, "testdata", 10, func(b []byte) error {
		c, err := node.ParseConfig(b)
		if err != nil {
			return err
		}
		return c.Validate()
	})
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

package plan_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/plan"
	"github.com/tributary-iot/tributary/internal/strictyaml/yamltest"
	"github.com/tributary-iot/tributary/internal/testenv"
)

func checkFleet(b []byte) error {
	var f plan.Fleet
	if err := plan.DecodeFleet(b, &f); err != nil {
		return err
	}
	f.SetDefaults()
	return f.Validate()
}

func TestFleetFixtures(t *testing.T) {
	yamltest.Run(t, "testdata/fleet", 5, checkFleet)
}

// deploy/fleet.example.yaml loads, and says what the defaults are.
func TestFleetExample(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var f plan.Fleet
	if err := plan.LoadFleet(filepath.Join(root, "deploy/fleet.example.yaml"), &f); err != nil {
		t.Fatal(err)
	}
	file := f
	f = plan.Fleet{Devices: file.Devices}
	f.SetDefaults()
	if file.Rate != f.Rate || len(file.Metrics) != len(f.Metrics) || file.Gateways != f.Gateways || file.DeviceID != f.DeviceID ||
		file.Gateway != f.Gateway || file.BatchAge != f.BatchAge || file.BatchReadings != f.BatchReadings ||
		file.Retention != f.Retention || file.Consumers != f.Consumers || file.PollInterval != f.PollInterval ||
		file.Region != f.Region || *file.Headroom != *f.Headroom || file.EnhancedFanOut || file.Partitions != 0 {
		t.Errorf("the example's values are not the defaults:\n%+v\n%+v", file, f)
	}
	for i, m := range file.Metrics {
		if m != plan.DefaultMetrics[i] {
			t.Errorf("metric %d: %+v, default %+v", i, m, plan.DefaultMetrics[i])
		}
	}
	if file.BatchAge != time.Second {
		t.Errorf("batch_age %v", file.BatchAge)
	}
}

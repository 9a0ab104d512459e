package agent_test

import (
	"testing"

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
		return cfg.WithDefaults().Validate()
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

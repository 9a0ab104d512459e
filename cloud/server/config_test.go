package server_test

import (
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/strictyaml/yamltest"

	"github.com/tributary-iot/tributary/cloud/server"
)

// TestConfigFixtures loads testdata/*.good.yml (must pass Check without
// files) and *.bad.yml (must fail with every "# want:" substring).
func TestConfigFixtures(t *testing.T) {
	yamltest.Run(t, "testdata", 5, func(b []byte) error {
		cfg, err := server.ParseConfig(b)
		if err != nil {
			return err
		}
		return cfg.WithDefaults().Check(server.CheckOptions{NoFiles: true})
	})
}

// TestExampleConfig keeps deploy/cloud.example.yaml valid.
func TestExampleConfig(t *testing.T) {
	cfg, err := server.LoadConfig("../../deploy/cloud.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Stream.Name != "telemetry" || cfg.Stream.Shards != 4 || cfg.Ingest.MaxBytes != 8<<20 ||
		cfg.Ingest.ThrottleWait != time.Second || cfg.TLS.ClientCAFile == "" || len(cfg.KinesisAPI.Credentials) != 1 ||
		cfg.Admin.Listen != server.DefaultAdminListen || len(cfg.Admin.Tokens) != 1 || cfg.Admin.Tokens[0] != server.HashAdminToken("test") {
		t.Errorf("example decoded as %+v", cfg)
	}
}

func TestDefaults(t *testing.T) {
	cfg := server.Config{Data: "/d"}.WithDefaults()
	if cfg.Listen != ":8080" || cfg.KinesisListen != "127.0.0.1:4567" || cfg.Admin.Listen != "127.0.0.1:8081" || cfg.Stream.Name != "telemetry" ||
		cfg.Stream.Shards != 4 || cfg.Stream.Backend != "embedded" || cfg.Monitor.FutureMargin != 10*time.Minute {
		t.Errorf("defaults %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

// TestMSKExampleConfig keeps deploy/cloud-msk.example.yaml valid.
func TestMSKExampleConfig(t *testing.T) {
	cfg, err := server.LoadConfig("../../deploy/cloud-msk.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	k := cfg.Stream.Kafka
	if cfg.Stream.Backend != server.BackendKafka || len(k.Brokers) != 2 || k.ReplicationFactor != 3 || !k.TLS.On() || k.SASL.Mechanism != "aws-msk-iam" {
		t.Errorf("example decoded as %+v", cfg.Stream)
	}
}

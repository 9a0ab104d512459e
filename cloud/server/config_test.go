package server_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/server"
)

// TestConfigFixtures loads testdata/*.good.yml (must validate) and
// *.bad.yml (must fail with every "# want:" substring).
func TestConfigFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yml")
	if len(files) < 5 {
		t.Fatalf("only %d fixtures", len(files))
	}
	want := regexp.MustCompile(`(?m)^# want: (.*)$`)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := server.ParseConfig(b)
			if err == nil {
				err = cfg.WithDefaults().Validate()
			}
			if strings.HasSuffix(f, ".good.yml") {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			for _, m := range want.FindAllStringSubmatch(string(b), -1) {
				if !strings.Contains(err.Error(), m[1]) {
					t.Errorf("error does not say %q:\n%v", m[1], err)
				}
			}
		})
	}
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
		cfg.Ingest.ThrottleWait != time.Second || cfg.TLS.ClientCAFile == "" || len(cfg.KinesisAPI.Credentials) != 1 {
		t.Errorf("example decoded as %+v", cfg)
	}
}

func TestDefaults(t *testing.T) {
	cfg := server.Config{Data: "/d"}.WithDefaults()
	if cfg.Listen != ":8080" || cfg.KinesisListen != ":4567" || cfg.Stream.Name != "telemetry" ||
		cfg.Stream.Shards != 4 || cfg.Stream.Backend != "embedded" {
		t.Errorf("defaults %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

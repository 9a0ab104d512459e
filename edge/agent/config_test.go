package agent_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/edge/agent"
)

// TestConfigFixtures loads testdata/*.good.yml (must validate) and
// *.bad.yml (must fail with every "# want:" substring).
func TestConfigFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yml")
	if len(files) < 4 {
		t.Fatalf("only %d fixtures", len(files))
	}
	want := regexp.MustCompile(`(?m)^# want: (.*)$`)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := agent.ParseConfig(b)
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

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]agent.ByteSize{"123": 123, "64KiB": 64 << 10, "1.5GiB": 3 << 29, "10MB": 10e6, "2 GiB": 2 << 30} {
		got, err := agent.ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1XB"} {
		if _, err := agent.ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}

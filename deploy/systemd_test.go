package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// parseUnit reads a systemd unit into "[Section]Key" → values.
func parseUnit(t *testing.T, file string) map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not key=value in a section", file, n, line)
			}
			kv[section+k] = append(kv[section+k], v)
		}
	}
	return kv
}

// TestCloudUnit checks deploy/systemd/tributary-cloud.service: what the
// cloud relies on (binary and config path, state directory matching the
// example config's data:, a stop timeout above its drain_timeout), the
// hardening, and that systemd-analyze accepts it.
func TestCloudUnit(t *testing.T) {
	const file = "systemd/tributary-cloud.service"
	kv := parseUnit(t, file)
	want := map[string]string{
		"[Service]ExecStart":             "/usr/local/bin/tributary-cloud -config /etc/tributary/cloud.yaml",
		"[Service]Restart":               "on-failure",
		"[Service]User":                  "tributary-cloud",
		"[Service]StateDirectory":        "tributary-cloud",
		"[Service]NoNewPrivileges":       "yes",
		"[Service]ProtectSystem":         "strict",
		"[Service]PrivateTmp":            "yes",
		"[Service]CapabilityBoundingSet": "",
		"[Service]KillSignal":            "SIGTERM",
		"[Install]WantedBy":              "multi-user.target",
	}
	for k, v := range want {
		if got := kv[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := kv["[Service]LimitNOFILE"]; len(got) != 1 || got[0] == "" {
		t.Errorf("LimitNOFILE = %q: set it (a connection per gateway)", got)
	}

	// The example config keeps its data where the unit can write, and
	// drains within the unit's stop timeout.
	var cfg struct {
		Data         string        `yaml:"data"`
		DrainTimeout time.Duration `yaml:"drain_timeout"`
	}
	if err := yaml.Unmarshal([]byte(readText(t, "deploy/cloud.example.yaml")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Data != "/var/lib/"+kv["[Service]StateDirectory"][0] {
		t.Errorf("cloud.example.yaml data: %q, want /var/lib/%s (the unit's StateDirectory)", cfg.Data, kv["[Service]StateDirectory"][0])
	}
	stop, err := time.ParseDuration(kv["[Service]TimeoutStopSec"][0])
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if cfg.DrainTimeout == 0 {
		t.Fatal("cloud.example.yaml sets no drain_timeout")
	}
	if stop <= cfg.DrainTimeout || stop > 3*cfg.DrainTimeout {
		t.Errorf("TimeoutStopSec %s against drain_timeout %s: want a little more than the drain (systemd kills at the timeout)", stop, cfg.DrainTimeout)
	}

	// systemd's own check, with the binary replaced by one that exists.
	// Missing, it skips; under TRIBUTARY_INTEROP=1 (make check, which
	// installs it: deps-systemd) it fails.
	analyze := testenv.Need(t, "systemd-analyze", "Debian package systemd; `make deps-systemd`")
	unit := filepath.Join(t.TempDir(), "tributary-cloud.service")
	b := strings.ReplaceAll(readText(t, "deploy/"+file), "/usr/local/bin/tributary-cloud -config", "/bin/true -config")
	if err := os.WriteFile(unit, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", unit).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

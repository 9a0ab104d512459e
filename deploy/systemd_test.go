package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-iot/tributary/deploy"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// TestAgentUnit checks deploy/systemd/tributary-agent.service: what the
// agent relies on (the binary and config path, restart policy, the state
// directory matching the example config's data:), least privilege and
// bus access.
func TestAgentUnit(t *testing.T) {
	kv, err := deploy.ReadUnit("systemd/tributary-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"[Service]ExecStart":             "/usr/local/bin/tributary-agent -config /etc/tributary/agent.yaml",
		"[Service]Restart":               "always",
		"[Service]User":                  "tributary",
		"[Service]StateDirectory":        "tributary",
		"[Service]NoNewPrivileges":       "yes",
		"[Service]ProtectSystem":         "strict",
		"[Service]CapabilityBoundingSet": "",
		"[Service]SupplementaryGroups":   "i2c spi gpio",
		"[Service]KillSignal":            "SIGTERM",
		"[Install]WantedBy":              "multi-user.target",
	}
	for _, m := range kv.Mismatches(want) {
		t.Error(m)
	}
	if len(kv["[Service]DeviceAllow"]) < 3 {
		t.Errorf("DeviceAllow = %q: the agent needs i2c, spi and gpiochip devices", kv["[Service]DeviceAllow"])
	}
	if !strings.Contains(readText(t, "deploy/agent.example.yaml"), "data: /var/lib/tributary") {
		t.Errorf("agent.example.yaml should keep data in /var/lib/tributary (the unit's StateDirectory)")
	}
}

// TestCloudUnit checks deploy/systemd/tributary-cloud.service: what the
// cloud relies on (binary and config path, state directory matching the
// example config's data:, a stop timeout above its drain_timeout) and the
// hardening. TestUnitsVerify has systemd-analyze check it.
func TestCloudUnit(t *testing.T) {
	const file = "systemd/tributary-cloud.service"
	kv, err := deploy.ReadUnit(file)
	if err != nil {
		t.Fatal(err)
	}
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
	for _, m := range kv.Mismatches(want) {
		t.Error(m)
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
}

// TestUnitsVerify runs systemd's own check on every unit in
// deploy/systemd, with the binary replaced by one that exists. Missing,
// systemd-analyze skips it; under TRIBUTARY_INTEROP=1 (make check, which
// installs it: deps-systemd) it fails.
func TestUnitsVerify(t *testing.T) {
	analyze := testenv.Need(t, "systemd-analyze", "Debian package systemd; `make deps-systemd`")
	units, err := filepath.Glob("systemd/*.service")
	if err != nil || len(units) < 2 {
		t.Fatalf("units %q, %v: want the agent's and the cloud's", units, err)
	}
	for _, file := range units {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			bin := "/usr/local/bin/" + strings.TrimSuffix(name, ".service") + " -config"
			text := readText(t, "deploy/"+file)
			if !strings.Contains(text, "ExecStart="+bin) {
				t.Fatalf("%s does not start %s", file, bin)
			}
			unit := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(unit, []byte(strings.ReplaceAll(text, bin, "/bin/true -config")), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(analyze, "verify", unit).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
	}
}

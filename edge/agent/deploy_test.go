package agent_test

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// TestSystemdUnit loads deploy/systemd/tributary-agent.service and checks
// what the agent relies on: the binary and config path, restart policy,
// the state directory, least privilege and bus access.
func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("../../deploy/systemd/tributary-agent.service")
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
				t.Fatalf("line %d: %q is not key=value in a section", n, line)
			}
			kv[section+k] = append(kv[section+k], v)
		}
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
	for k, v := range want {
		if got := kv[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(kv["[Service]DeviceAllow"]) < 3 {
		t.Errorf("DeviceAllow = %q: the agent needs i2c, spi and gpiochip devices", kv["[Service]DeviceAllow"])
	}
	// The example config keeps its queue where the unit grants write access.
	b, err := os.ReadFile("../../deploy/agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "data: /var/lib/tributary") {
		t.Errorf("agent.example.yaml should keep data in /var/lib/tributary (the unit's StateDirectory)")
	}
}

// TestARM64UnderQEMU cross-builds the agent for linux/arm64 (static, as
// make release does) and runs it under qemu-user: it must start and answer
// /healthz.
func TestARM64UnderQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	qemu := testenv.Need(t, "qemu-aarch64-static", "Debian package qemu-user-static")
	dir := t.TempDir()
	bin := filepath.Join(dir, "tributary-agent-linux-arm64")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./edge/cmd/tributary-agent")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cross-build: %v\n%s", err, out)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	if ef.Machine != elf.EM_AARCH64 {
		t.Fatalf("built for %v, want AArch64", ef.Machine)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has an ELF interpreter: not static")
		}
	}
	ef.Close()

	health := testenv.FreeAddr(t)
	cmd := exec.Command(qemu, bin, "-data", filepath.Join(dir, "data"), "-gateway", "gw-arm64",
		"-cloud", "http://127.0.0.1:9", "-token", "t", "-listen", health, "-mqtt-listen", testenv.FreeAddr(t))
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	p := testenv.Start(t, cmd)
	defer func() {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Errorf("agent under qemu after SIGTERM: %v", err)
		}
	}()
	var h struct {
		Gateway string `json:"gateway"`
		Status  string `json:"status"`
	}
	code := 0
	if !testenv.Poll(60*time.Second, func() bool {
		resp, err := http.Get("http://" + health + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		code = resp.StatusCode
		return json.NewDecoder(resp.Body).Decode(&h) == nil
	}) {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("no /healthz within 60s:\n%s", b)
	}
	if h.Gateway != "gw-arm64" {
		t.Fatalf("healthz: %+v", h)
	}
	t.Logf("arm64 agent under qemu answers /healthz: status %s (HTTP %d)", h.Status, code)
}

package agent_test

import (
	"debug/elf"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/deploy"
	"github.com/tributary-iot/tributary/protocol/mosquittotest"
)

// TestSystemdUnit loads deploy/systemd/tributary-agent.service and checks
// what the agent relies on: the binary and config path, restart policy,
// the state directory, least privilege and bus access.
func TestSystemdUnit(t *testing.T) {
	kv, err := deploy.ReadUnit("../../deploy/systemd/tributary-agent.service")
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
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		mosquittotest.Skip(t, "qemu-aarch64-static (Debian package qemu-user-static)")
	}
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

	health := freeAddr(t)
	cmd := exec.Command(qemu, bin, "-data", filepath.Join(dir, "data"), "-gateway", "gw-arm64",
		"-cloud", "http://127.0.0.1:9", "-token", "t", "-listen", health, "-mqtt-listen", freeAddr(t))
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent under qemu exited with %v after SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("agent under qemu did not stop within 30s of SIGTERM")
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + health + "/healthz")
		if err == nil {
			var h struct {
				Gateway string `json:"gateway"`
				Status  string `json:"status"`
			}
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err != nil || h.Gateway != "gw-arm64" {
				t.Fatalf("healthz: %+v, %v", h, err)
			}
			t.Logf("arm64 agent under qemu answers /healthz: status %s (HTTP %d)", h.Status, resp.StatusCode)
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("no /healthz within 60s: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

package agent_test

import (
	"context"
	"debug/elf"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/logging/logtest"
	"github.com/tributary-iot/tributary/internal/testenv"
)

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
		"-cloud", "http://127.0.0.1:9", "-token", "t", "-listen", health, "-mqtt-listen", testenv.FreeAddr(t), "-log-format", "json")
	var logs logtest.Writer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	p := testenv.Start(t, cmd)
	defer func() {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Errorf("agent under qemu after SIGTERM: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if _, err := logs.Wait(ctx, "agent started"); err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	resp, err := http.Get("http://" + health + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Gateway string `json:"gateway"`
		Status  string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Gateway != "gw-arm64" {
		t.Fatalf("healthz: %+v, %v", h, err)
	}
	t.Logf("arm64 agent under qemu answers /healthz: status %s (HTTP %d)", h.Status, resp.StatusCode)
}

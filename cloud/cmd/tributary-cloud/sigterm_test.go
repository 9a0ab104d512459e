package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/logging/logtest"
)

// The binary: token issue on stdout, serve, SIGTERM drains and exits 0.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tributary-cloud")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	tok, err := exec.Command(bin, "-data", data, "token", "issue", "gw-1").Output()
	if err != nil || !strings.HasPrefix(string(tok), "trib_") {
		t.Fatalf("token issue: %q %v", tok, err)
	}
	listen := freeAddr(t)
	cmd := exec.Command(bin, "-data", data, "-listen", listen, "-kinesis-listen", freeAddr(t), "-log-format", "json")
	var logs logtest.Writer
	cmd.Stderr = &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := logs.Wait(ctx, "tributary-cloud started"); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if resp, err := http.Get("http://" + listen + "/healthz"); err != nil {
		t.Error(err) // SIGTERM still stops the child
	} else {
		resp.Body.Close()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("no exit within 15s of SIGTERM")
	}
	if !strings.Contains(logs.String(), "tributary-cloud stopped") {
		t.Errorf("logs:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(data, "streams.db")); err != nil {
		t.Error(err)
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// The binary: token issue on stdout, serve, SIGTERM drains and exits 0.
func TestBinarySIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := testenv.Binary(t, "./cloud/cmd/tributary-cloud")
	data := filepath.Join(dir, "data")
	tok, err := exec.Command(bin, "-data", data, "token", "issue", "gw-1").Output()
	if err != nil || !strings.HasPrefix(string(tok), "trib_") {
		t.Fatalf("token issue: %q %v", tok, err)
	}
	var listen string
	var logs *testenv.Buffer
	p := testenv.StartServer(t, 10*time.Second, func() *exec.Cmd {
		listen, logs = testenv.FreeAddr(t), &testenv.Buffer{}
		cmd := exec.Command(bin, "-data", data, "-listen", listen, "-kinesis-listen", testenv.FreeAddr(t), "-admin-listen", testenv.FreeAddr(t))
		cmd.Stderr = logs
		return cmd
	}, func() bool { return testenv.HTTPReady("http://" + listen + "/healthz")() })
	if err := p.Stop(15 * time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "tributary-cloud stopped") {
		t.Errorf("logs:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(data, "streams.db")); err != nil {
		t.Error(err)
	}
}

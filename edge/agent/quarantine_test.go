package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/edge/agent"
	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// damagedQueue writes a queue file holding readings into dir, damages it
// (both meta pages zeroed) and returns the damaged bytes and the
// original's epoch.
func damagedQueue(t *testing.T, dir string) ([]byte, uint64) {
	t.Helper()
	path := filepath.Join(dir, agent.QueueFile)
	q, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]protocol.Reading, 2000)
	for i := range rs {
		rs[i] = protocol.Reading{Device: "dev-1", Name: "temp", Kind: protocol.KindFloat, Value: float64(i),
			Time: int64(1_700_000_000_000_000) + int64(i), Received: 1_700_000_000_000_000}
	}
	if _, err := q.Append(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	epoch := q.Epoch()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[:2*4096])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b, epoch
}

// The agent as a process, on a damaged queue file: by default it refuses
// to start and names queue.on_corrupt; with quarantine it moves the file
// aside untouched, starts a new queue with a new epoch, logs it, and
// reports it on /healthz and /metrics until the file is deleted.
func TestQueueOnCorruptProcess(t *testing.T) {
	bin := testenv.Binary(t, "./edge/cmd/tributary-agent")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	damaged, oldEpoch := damagedQueue(t, data)
	env := append(os.Environ(), "TRIBUTARY_TOKEN=t", "CREDENTIALS_DIRECTORY=")
	args := []string{"-data", data, "-gateway", "gw-1", "-cloud", "http://127.0.0.1:9", "-mqtt-listen", "127.0.0.1:0", "-log-format", "json"}

	refuse := exec.Command(bin, append(args, "-listen", "127.0.0.1:0")...)
	refuse.Env = env
	out, err := refuse.CombinedOutput()
	if code := refuse.ProcessState.ExitCode(); err == nil || code != 1 ||
		!bytes.Contains(out, []byte("corrupt database")) || !bytes.Contains(out, []byte("queue.on_corrupt: quarantine")) {
		t.Fatalf("refuse (the default): exit %d, %v:\n%s", code, err, out)
	}
	if now, _ := os.ReadFile(filepath.Join(data, agent.QueueFile)); !bytes.Equal(now, damaged) {
		t.Fatal("refuse changed the damaged file")
	}

	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte("queue:\n  on_corrupt: quarantine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	health := testenv.FreeAddr(t)
	d := newAgent(t, bin, dir, health, append([]string{"-config", cfg}, args...)...)
	d.Env = env
	d.Start()

	files, err := queue.DamagedFiles(filepath.Join(data, agent.QueueFile))
	if err != nil || len(files) != 1 {
		t.Fatalf("damaged files %q, %v", files, err)
	}
	if moved, err := os.ReadFile(files[0]); err != nil || !bytes.Equal(moved, damaged) {
		t.Errorf("the damaged file was not kept as it was: %v", err)
	}
	var h agent.Health
	code := getJSON(t, "http://"+health+"/healthz", &h)
	if code != http.StatusOK || h.Status != "degraded" || len(h.Queue.DamagedFiles) != 1 || h.Queue.DamagedFiles[0] != files[0] ||
		len(h.Reasons) == 0 || !strings.Contains(strings.Join(h.Reasons, "\n"), "damaged queue file") {
		t.Errorf("healthz %d: %+v", code, h)
	}
	if m := get(t, "http://"+health+"/metrics"); !strings.Contains(m, "tributary_queue_damaged_files 1") {
		t.Errorf("metrics lack tributary_queue_damaged_files 1")
	}
	d.Stop()
	logs, _ := os.ReadFile(d.Log)
	started := logLine(t, logs, "agent started")
	if e, _ := started["epoch"].(float64); e == 0 || uint64(e) == oldEpoch {
		t.Errorf("new queue's epoch %v, the damaged one's %d", started["epoch"], oldEpoch)
	}
	if moved := logLine(t, logs, "damaged queue file moved aside; starting a new, empty queue with a new epoch: "+
		"the readings in it that the cloud had not acknowledged are not sent (inspect the file, then delete it to clear the health alert)"); moved["moved_to"] != files[0] {
		t.Errorf("log: %v", moved)
	}

	// Deleting the damaged file clears the alert.
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	d.Start()
	h = agent.Health{}
	if code := getJSON(t, "http://"+health+"/healthz", &h); h.Queue.DamagedFiles != nil ||
		strings.Contains(strings.Join(h.Reasons, "\n"), "damaged") {
		t.Errorf("after deleting the damaged file: healthz %d: %+v", code, h)
	}
}

// logLine returns the fields of the first JSON log line whose msg is msg.
func logLine(t *testing.T, logs []byte, msg string) map[string]any {
	t.Helper()
	for _, l := range bytes.Split(logs, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil && m["msg"] == msg {
			return m
		}
	}
	t.Errorf("no log line %q in:\n%s", msg, logs)
	return nil
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

func get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

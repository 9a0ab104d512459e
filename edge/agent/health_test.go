package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/edge/agent"
	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/internal/jsonkeys"
)

// Every key of the /healthz document is snake_case, and every field has
// a key (none is left out of the document).
func TestHealthSchemaSnakeCase(t *testing.T) {
	if err := jsonkeys.CheckSchema(agent.Health{}, "intake.rejected_by", "uplink.refused_by"); err != nil {
		t.Error(err)
	}
}

// A running agent's /healthz is snake_case throughout, and /metrics has
// tributary_build_info.
func TestHealthz(t *testing.T) {
	cloud := uplinktest.NewServer(t, uplinktest.Options{})
	cloud.FailNext(1, http.StatusInternalServerError) // last_error and its time are set
	cfg := agent.Config{Gateway: "gw-1", Data: t.TempDir(), Listen: "127.0.0.1:0",
		MQTT:  agent.MQTTConfig{Listen: "127.0.0.1:0"},
		Cloud: agent.CloudConfig{URL: cloud.URL(), Token: "t"}, Health: agent.HealthConfig{Every: 10 * time.Millisecond}}
	a, err := agent.New(cfg, agent.Options{Logger: slog.New(slog.DiscardHandler), Version: "v0.0.1-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// The agent's own health readings reach the cloud after the failure.
	if err := cloud.WaitCount(ctx, 1); err != nil {
		t.Fatal(err)
	}
	code, body := fetch(t, "http://"+a.HTTPAddr()+"/healthz")
	if err := jsonkeys.CheckSnakeCase(body, "intake.rejected_by", "uplink.refused_by"); err != nil {
		t.Errorf("%v\n%s", err, body)
	}
	var h map[string]any
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	up, _ := h["uplink"].(map[string]any)
	if h["gateway"] != "gw-1" || up["last_error"] == nil || up["last_error_time"] == nil || up["backoff"] == nil ||
		(code == http.StatusServiceUnavailable) != (h["status"] == "failing") {
		t.Errorf("healthz (HTTP %d):\n%s", code, body)
	}
	_, metrics := fetch(t, "http://"+a.HTTPAddr()+"/metrics")
	if !bytes.Contains(metrics, []byte(`tributary_build_info{goversion="go`)) || !bytes.Contains(metrics, []byte(`version="v0.0.1-test"} 1`)) {
		t.Errorf("no tributary_build_info in /metrics:\n%s", metrics)
	}
}

// fetch GETs url and returns the status code and the body.
func fetch(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/internal/logging/logtest"
	"github.com/tributary-iot/tributary/protocol"
)

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"-version"}, 0, "tributary-agent dev (go", ""},
		{[]string{"-h"}, 0, "", "usage: tributary-agent"},
		{[]string{"extra"}, 2, "", `unexpected argument "extra"`},
		{[]string{"-nosuchflag"}, 2, "", "flag provided but not defined"},
		{[]string{"-gateway", "gw-1"}, 1, "", "invalid configuration"},
		{[]string{"-config", filepath.Join(t.TempDir(), "none.yaml")}, 1, "", "none.yaml"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tc.args, code, stdout.String(), stderr.String())
		}
	}
}

// The agent's JSON log lines, from start to stop through a cloud failure
// and a rejected message, have no duplicate key and log durations as Go
// duration strings.
func TestJSONLogs(t *testing.T) {
	cloud := uplinktest.NewServer(t, uplinktest.Options{})
	cloud.FailNext(1, http.StatusServiceUnavailable)
	var logs logtest.Writer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"-data", t.TempDir(), "-gateway", "gw-1", "-cloud", cloud.URL(), "-token", "t",
			"-listen", "127.0.0.1:0", "-mqtt-listen", "127.0.0.1:0", "-log-format", "json", "-log-level", "debug"}, io.Discard, &logs)
	}()
	started, err := logs.Wait(ctx, "agent started")
	if err != nil {
		stop()
		t.Fatalf("%v (exit %d)\n%s", err, <-done, logs.String())
	}
	broker := "tcp://" + strings.TrimPrefix(started["mqtt"].(string), "embedded ")
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("dev-1"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	for _, payload := range []string{`[{"n":"temp","u":"Cel","v":21.5}]`, `not senml`} {
		if tok := c.Publish(protocol.TelemetryTopic("dev-1"), 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	c.Disconnect(100)
	if err := cloud.WaitCount(ctx, 1); err != nil {
		t.Fatal(err)
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
	sum, err := logtest.Check(logs.Bytes())
	if err != nil {
		t.Error(err)
	}
	// drain_timeout at least: the check saw durations, not none.
	if sum.Lines < 4 || sum.Durations < 1 {
		t.Errorf("%+v:\n%s", sum, logs.String())
	}
}

// TestTokenSources: the token comes from -token-file or $TRIBUTARY_TOKEN
// as well as -token; with none the error names them.
func TestTokenSources(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stopped, cancel := context.WithCancel(t.Context())
	cancel() // the agent starts, then stops at once
	base := []string{"-data", filepath.Join(dir, "data"), "-gateway", "gw-1", "-cloud", "http://127.0.0.1:9",
		"-listen", "127.0.0.1:0", "-mqtt-listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		env    string
		args   []string
		code   int
		stderr string
	}{
		{"", []string{"-token-file", file}, 0, ""},
		{"t", nil, 0, ""},
		{"", []string{"-token-file", filepath.Join(dir, "none")}, 1, "cloud.token_file"},
		{"", nil, 1, "$TRIBUTARY_TOKEN"},
	} {
		t.Setenv("TRIBUTARY_TOKEN", tc.env)
		var stderr bytes.Buffer
		code := run(stopped, append(base, tc.args...), io.Discard, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("TRIBUTARY_TOKEN=%q %q: exit %d, stderr %q", tc.env, tc.args, code, stderr.String())
		}
	}
}

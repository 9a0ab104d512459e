package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/logging/logtest"
	"github.com/tributary-iot/tributary/simulator/fleet"
)

func TestParseFlagsWinOverFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sim.yml")
	if err := os.WriteFile(file, []byte("devices: 40\nrate: 2\nseed: 9\nanomalies: [spike]\nprefix: lab-\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cfg, _, code, done := parse([]string{"-config", file, "-rate", "5", "-duration", "1m", "-anomalies", "drift, dropout"}, io.Discard, &stderr)
	if done {
		t.Fatalf("parse: exit %d (%s)", code, stderr.String())
	}
	want := fleet.DefaultConfig()
	want.Devices, want.Seed, want.Prefix = 40, 9, "lab-" // from the file
	want.Rate, want.Duration = 5, time.Minute            // flags win
	want.Anomalies = []string{"drift", "dropout"}
	if cfg.Devices != want.Devices || cfg.Seed != want.Seed || cfg.Prefix != want.Prefix ||
		cfg.Rate != want.Rate || cfg.Duration != want.Duration || strings.Join(cfg.Anomalies, ",") != "drift,dropout" ||
		cfg.Broker != want.Broker || cfg.ConnectRate != want.ConnectRate {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

func TestRunBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-devices", "0"}, "devices 0: want 1..100000"},
		{[]string{"-rate", "fast"}, `invalid value "fast" for flag -rate`},
		{[]string{"-sensors", "bmp180", "-skew-fraction", "0.2"}, "skew fraction 0.2 with no skew"},
		{[]string{"-nosuchflag"}, "flag provided but not defined: -nosuchflag"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-config", "/nonexistent.yml"}, "no such file"},
		{[]string{"-anomalies", "spike,meteor"}, `anomaly kind "meteor"`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "tributary-sim ") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// A run's JSON log lines, the end-of-run summary included, have no
// duplicate key and log durations as Go duration strings.
func TestJSONLogs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close() // the devices' connections are refused
	var logs logtest.Writer
	code := run(t.Context(), []string{"-broker", "tcp://" + refused, "-devices", "2", "-rate", "10", "-duration", "300ms",
		"-stats-every", "100ms", "-log-format", "json"}, io.Discard, &logs)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, logs.String())
	}
	sum, err := logtest.Check(logs.Bytes())
	if err != nil {
		t.Error(err)
	}
	// duration at least; and the summary is a log line too.
	if sum.Lines < 3 || sum.Durations < 1 || !strings.Contains(logs.String(), `"msg":"fleet finished"`) {
		t.Errorf("%+v:\n%s", sum, logs.String())
	}
}

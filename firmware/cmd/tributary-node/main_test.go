package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"

	"github.com/tributary-iot/tributary/internal/logging/logtest"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("device: \"bad id\"\nbroker: http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nosensors := filepath.Join(dir, "nosensors.yaml")
	if err := os.WriteFile(nosensors, []byte("device: n1\nbroker: tcp://127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"version", []string{"-version"}, 0, "tributary-node dev", nil},
		{"no config", nil, 2, "", []string{"-config FILE is required"}},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.yaml")}, 1, "", []string{"no such file"}},
		{"invalid", []string{"-config", bad}, 1, "", []string{"is invalid", "invalid device id", `scheme "http" is not supported`}},
		{"no sensors", []string{"-config", nosensors, "-log-format", "json"}, 1, "", []string{"no sensors"}},
		{"bad log format", []string{"-config", bad, "-log-format", "xml"}, 2, "", []string{`log_format: "xml"`}},
		{"argument", []string{"extra"}, 2, "", []string{`unexpected argument "extra"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.stdout)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// fakeBuses has one GPIO pin, GPIO17, whose edges the test sends.
type fakeBuses struct{ pin *gpiotest.Pin }

var errNoBus = errors.New("no such bus")

func (f fakeBuses) I2C(string) (i2c.Bus, error)  { return nil, errNoBus }
func (f fakeBuses) SPI(string) (spi.Port, error) { return nil, errNoBus }
func (f fakeBuses) GPIO(name string) (gpio.PinIO, error) {
	if name != "GPIO17" {
		return nil, errNoBus
	}
	return f.pin, nil
}

// The node's JSON log lines, from start to stop while the broker cannot be
// reached, have no duplicate key and log durations as Go duration strings.
func TestJSONLogs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close() // connections to it are refused
	cfg := filepath.Join(t.TempDir(), "node.yaml")
	yaml := "device: n1\nbroker: tcp://" + refused + "\nreconnect_backoff: 10ms\ninterval: 10ms\n" +
		"sensors:\n  - kind: pulse\n    name: flow\n    bus: GPIO17\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	buses = fakeBuses{&gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}}
	defer func() { buses = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var logs logtest.Writer
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"-config", cfg, "-log-format", "json", "-log-level", "debug"}, io.Discard, &logs)
	}()
	if _, err := logs.Wait(ctx, "cannot connect to the broker; retrying"); err != nil {
		stop()
		t.Fatalf("%v (exit %d)\n%s", err, <-done, logs.String())
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("exit %d\n%s", code, logs.String())
	}
	sum, err := logtest.Check(logs.Bytes())
	if err != nil {
		t.Error(err)
	}
	if sum.Lines < 3 {
		t.Errorf("%+v:\n%s", sum, logs.String())
	}
}

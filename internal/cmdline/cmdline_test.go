package cmdline_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/cmdline"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		positional     bool
		code           int
		done           bool
		stdout, stderr string
	}{
		{nil, false, cmdline.ExitOK, false, "", ""},
		{[]string{"-version"}, false, cmdline.ExitOK, true, "tributary-x v1 (go", ""},
		{[]string{"-h"}, false, cmdline.ExitOK, true, "", "usage: tributary-x\n  -config file"},
		{[]string{"-nope"}, false, cmdline.ExitUsage, true, "", "flag provided but not defined: -nope"},
		{[]string{"arg"}, false, cmdline.ExitUsage, true, "", `tributary-x: unexpected argument "arg" (flags only; see -h)`},
		{[]string{"arg"}, true, cmdline.ExitOK, false, "", ""},
		{[]string{"-config", "f.yaml", "-log-format", "json"}, false, cmdline.ExitOK, false, "", ""},
	} {
		var stdout, stderr bytes.Buffer
		c := cmdline.New("tributary-x", "v1", "usage: tributary-x\n", "YAML config `file`", &stdout, &stderr)
		format, level := "text", "info"
		c.LogFlags(&format, &level)
		code, done := c.Parse(tc.args, tc.positional)
		if code != tc.code || done != tc.done || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: %d %v, stdout %q, stderr %q", tc.args, code, done, stdout.String(), stderr.String())
		}
		c.ApplyFlags()
		if len(tc.args) == 4 && (c.Config != "f.yaml" || format != "json" || level != "info") {
			t.Errorf("%q: config %q, log %q %q", tc.args, c.Config, format, level)
		}
	}
}

// Config fields set by flags take the flags' values at ApplyFlags, over
// what was loaded after Parse; fields without a flag given keep theirs.
func TestFlagsWinOverFile(t *testing.T) {
	type config struct{ Data, Listen, LogLevel string }
	var cfg config
	c := cmdline.New("tributary-x", "v1", "", "", io.Discard, io.Discard)
	c.String("data", "", func(v string) { cfg.Data = v })
	c.String("listen", "", func(v string) { cfg.Listen = v })
	level := ""
	c.LogFlags(new(string), &level)
	if _, done := c.Parse([]string{"-data", "/flag", "-log-level", "debug"}, false); done {
		t.Fatal("done")
	}
	if cfg.Data != "" {
		t.Errorf("set before ApplyFlags: %+v", cfg)
	}
	cfg = config{Data: "/file", Listen: ":1"} // the config file
	c.ApplyFlags()
	if cfg != (config{Data: "/flag", Listen: ":1"}) || level != "debug" {
		t.Errorf("%+v %q", cfg, level)
	}
}

func TestStartLogging(t *testing.T) {
	var stderr bytes.Buffer
	c := cmdline.New("tributary-x", "v1", "", "", io.Discard, &stderr)
	prev := slog.Default()
	defer slog.SetDefault(prev)
	log, err := c.StartLogging("json", "warn")
	if err != nil || slog.Default() != log {
		t.Fatalf("%v, default set: %v", err, slog.Default() == log)
	}
	slog.Info("dropped")
	slog.Warn("kept", "took", 1500*time.Millisecond)
	if out := stderr.String(); strings.Contains(out, "dropped") || !strings.Contains(out, `"took":"1.5s"`) {
		t.Errorf("%q", out)
	}
	if _, err := c.StartLogging("xml", ""); err == nil {
		t.Error("bad format accepted")
	}
}

func TestFailf(t *testing.T) {
	var stderr bytes.Buffer
	c := cmdline.New("tributary-x", "v1", "", "", &stderr, &stderr)
	if code := c.Failf(cmdline.ExitFail, "bad %s", "thing"); code != cmdline.ExitFail || stderr.String() != "tributary-x: bad thing\n" {
		t.Errorf("%d %q", code, stderr.String())
	}
	if c.Flags.Lookup("config") != nil {
		t.Error("-config without help text")
	}
}

// testConfig is a binary's config for LoadConfig and Start.
type testConfig struct{ Data, Listen, LogFormat, LogLevel string }

func (c testConfig) WithDefaults() testConfig {
	if c.Listen == "" {
		c.Listen = ":9100"
	}
	return c
}

func (c testConfig) Validate() error {
	if c.Data == "" {
		return errors.New("data: required")
	}
	return nil
}

func TestLoadConfigAndStart(t *testing.T) {
	prev := slog.Default()
	defer slog.SetDefault(prev)
	load := func(path string) (testConfig, error) {
		if path != "good.yaml" {
			return testConfig{}, fmt.Errorf("open %s: no such file", path)
		}
		return testConfig{Data: "/file", Listen: ":1", LogLevel: "warn"}, nil
	}
	for _, tc := range []struct {
		args   []string
		code   int
		ok     bool
		want   testConfig
		stderr string
	}{
		{[]string{"-config", "good.yaml", "-data", "/flag"}, cmdline.ExitOK, true, testConfig{"/flag", ":1", "", "warn"}, ""},
		{[]string{"-data", "/flag", "-log-format", "json"}, cmdline.ExitOK, true, testConfig{"/flag", ":9100", "json", ""}, ""},
		{[]string{"-config", "bad.yaml"}, cmdline.ExitFail, false, testConfig{}, "tributary-x: open bad.yaml: no such file"},
		{nil, cmdline.ExitFail, false, testConfig{Listen: ":9100"}, "tributary-x: invalid configuration:\ndata: required"},
		{[]string{"-data", "/d", "-log-level", "loud"}, cmdline.ExitFail, false, testConfig{"/d", ":9100", "", "loud"}, `log_level: "loud"`},
	} {
		var cfg testConfig
		var stderr bytes.Buffer
		c := cmdline.New("tributary-x", "v1", "", "config `file`", io.Discard, &stderr)
		c.String("data", "", func(v string) { cfg.Data = v })
		c.LogFlags(&cfg.LogFormat, &cfg.LogLevel)
		if _, done := c.Parse(tc.args, false); done {
			t.Fatalf("%q: done", tc.args)
		}
		code, ok := cmdline.LoadConfig(c, &cfg, load)
		var log *slog.Logger
		if ok {
			log, code, ok = cmdline.Start(c, &cfg)
		}
		if code != tc.code || ok != tc.ok || cfg != tc.want || !strings.Contains(stderr.String(), tc.stderr) || (ok && log == nil) {
			t.Errorf("%q: %d %v %+v, stderr %q", tc.args, code, ok, cfg, stderr.String())
		}
	}
}

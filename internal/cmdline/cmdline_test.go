package cmdline_test

import (
	"bytes"
	"strings"
	"testing"

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
		c.LogFlags("text", "info")
		code, done := c.Parse(tc.args, tc.positional)
		if code != tc.code || done != tc.done || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: %d %v, stdout %q, stderr %q", tc.args, code, done, stdout.String(), stderr.String())
		}
		if len(tc.args) == 4 && (c.Config != "f.yaml" || c.Log.Format != "json" || c.Log.Level != "info") {
			t.Errorf("%q: %+v", tc.args, c)
		}
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

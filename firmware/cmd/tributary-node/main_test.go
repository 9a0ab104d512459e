package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{"bad log format", []string{"-config", bad, "-log-format", "xml"}, 2, "", []string{`log format "xml"`}},
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

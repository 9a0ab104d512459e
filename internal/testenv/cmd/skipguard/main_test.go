package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const run = `{"Action":"start","Package":"m/a"}
{"Action":"run","Package":"m/a","Test":"TestOK"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"m/a","Test":"TestOK","Output":"    a_test.go:3: quiet when it passes\n"}
{"Action":"pass","Package":"m/a","Test":"TestOK"}
{"Action":"run","Package":"m/a","Test":"TestHW"}
{"Action":"output","Package":"m/a","Test":"TestHW","Output":"=== RUN   TestHW\n"}
{"Action":"output","Package":"m/a","Test":"TestHW","Output":"    a_test.go:9: no bus\n"}
{"Action":"output","Package":"m/a","Test":"TestHW","Output":"--- SKIP: TestHW (0.00s)\n"}
{"Action":"skip","Package":"m/a","Test":"TestHW"}
{"Action":"output","Package":"m/a","Output":"PASS\n"}
{"Action":"output","Package":"m/a","Output":"ok  \tm/a\t0.1s\n"}
{"Action":"pass","Package":"m/a"}
`

const skipped = `{"Action":"run","Package":"m/b","Test":"TestNeedsTool"}
{"Action":"output","Package":"m/b","Test":"TestNeedsTool","Output":"    b_test.go:5: tool is not installed\n"}
{"Action":"skip","Package":"m/b","Test":"TestNeedsTool"}
`

const buildFailed = `{"ImportPath":"m/d [m/d.test]","Action":"build-output","Output":"d_test.go:3:2: undefined: x\n"}
{"ImportPath":"m/d [m/d.test]","Action":"build-fail"}
{"Action":"start","Package":"m/d"}
{"Action":"output","Package":"m/d","Output":"FAIL\tm/d [build failed]\n"}
{"Action":"fail","Package":"m/d","FailedBuild":"m/d [m/d.test]"}
`

const failed = `{"Action":"run","Package":"m/c","Test":"TestBad"}
{"Action":"output","Package":"m/c","Test":"TestBad","Output":"    c_test.go:7: got 1, want 2\n"}
{"Action":"fail","Package":"m/c","Test":"TestBad"}
{"Action":"run","Package":"m/c","Test":"TestHangs"}
{"Action":"output","Package":"m/c","Test":"TestHangs","Output":"    c_test.go:9: waiting\n"}
{"Action":"output","Package":"m/c","Output":"panic: test timed out after 1s\n"}
{"Action":"fail","Package":"m/c"}
`

func check(t *testing.T, in string) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	g := newGuard(&out, allowed{"a": {"TestHW": true}})
	if err := g.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	ok := g.summary()
	return out.String(), ok
}

func TestAllowedSkipPasses(t *testing.T) {
	out, ok := check(t, run)
	if !ok {
		t.Errorf("an allowed skip failed the run:\n%s", out)
	}
	for _, want := range []string{"ok  \tm/a\t0.1s", "1 passed, 0 failed, 1 skipped as allowed, 0 skipped unexpectedly", "TestHW: a_test.go:9: no bus"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "quiet when it passes") || strings.Contains(out, "PASS\n") {
		t.Errorf("a passing test's output was printed:\n%s", out)
	}
}

func TestUnexpectedSkipFails(t *testing.T) {
	out, ok := check(t, run+skipped)
	if ok || !strings.Contains(out, "SKIP (not on the allowlist) m/b TestNeedsTool: b_test.go:5: tool is not installed") {
		t.Errorf("ok %v:\n%s", ok, out)
	}
}

func TestFailurePrintsOutput(t *testing.T) {
	out, ok := check(t, failed)
	if ok {
		t.Errorf("a failed run passed:\n%s", out)
	}
	for _, want := range []string{"got 1, want 2", "panic: test timed out", "c_test.go:9: waiting", "FAIL          m/c TestHangs did not finish"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBuildFailureFails(t *testing.T) {
	out, ok := check(t, buildFailed)
	if ok || !strings.Contains(out, "undefined: x") || !strings.Contains(out, "FAIL\tm/d [build failed]") {
		t.Errorf("ok %v:\n%s", ok, out)
	}
}

func TestAllowlistFile(t *testing.T) {
	a, err := readAllowlist("allowed-skips.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !a.has("github.com/tributary-iot/tributary/firmware/sensor", "TestHostBusesHardware") || a.has("x/firmware/sensor", "TestOther") {
		t.Errorf("allowlist %v", a)
	}
	bad := filepath.Join(t.TempDir(), "bad.txt")
	os.WriteFile(bad, []byte("pkg TestA extra # why\n"), 0o644)
	if _, err := readAllowlist(bad); err == nil || !strings.Contains(err.Error(), "bad.txt:1") {
		t.Errorf("a malformed line: %v", err)
	}
}

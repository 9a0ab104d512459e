package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestTokenCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	code, out, errOut := cli(t, "-data", data, "token", "issue", "gw-1")
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, auth.TokenPrefix) || strings.Count(out, "\n") != 1 {
		t.Fatalf("issue: %d %q %q", code, out, errOut)
	}
	st, err := auth.Open(filepath.Join(data, "tokens.db"), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if gw, ok := st.Verify(tok); !ok || gw != "gw-1" {
		t.Fatalf("issued token does not verify")
	}
	// Flags after the command work too.
	if code, _, errOut := cli(t, "token", "issue", "gw-1", "-data", data); code != 1 || !strings.Contains(errOut, "already has a token") {
		t.Errorf("second issue: %d %q", code, errOut)
	}
	code, out, _ = cli(t, "-data", data, "token", "rotate", "gw-1")
	if code != 0 || strings.TrimSpace(out) == tok {
		t.Errorf("rotate: %d %q", code, out)
	}
	cli(t, "-data", data, "token", "issue", "gw-2")
	code, out, _ = cli(t, "-data", data, "token", "list")
	if code != 0 || !strings.Contains(out, "gw-1") || !strings.Contains(out, "gw-2") || strings.Contains(out, auth.TokenPrefix) {
		t.Errorf("list: %d %q", code, out)
	}
	if code, _, _ := cli(t, "-data", data, "token", "revoke", "gw-2"); code != 0 {
		t.Errorf("revoke: %d", code)
	}
	if code, _, errOut := cli(t, "-data", data, "token", "revoke", "gw-2"); code != 1 || !strings.Contains(errOut, "no token") {
		t.Errorf("revoke again: %d %q", code, errOut)
	}
	for _, args := range [][]string{
		{"token", "issue", "gw-1"},            // no -data
		{"-data", data, "token"},              // no subcommand
		{"-data", data, "token", "issue"},     // no gateway
		{"-data", data, "token", "list", "x"}, // extra argument
		{"-data", data, "token", "frobnicate", "x"},
		{"-data", data, "serve"},
	} {
		if code, _, _ := cli(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := cli(t, "-data", data, "token", "issue", "bad id!"); code != 1 || !strings.Contains(errOut, "gateway id") {
		t.Errorf("bad id: %d %q", code, errOut)
	}
}

func TestInvalidConfig(t *testing.T) {
	code, _, errOut := cli(t, "-listen", "nope")
	if code != 1 || !strings.Contains(errOut, "data: required") || !strings.Contains(errOut, `listen: "nope"`) {
		t.Errorf("%d %q", code, errOut)
	}
	if code, _, errOut := cli(t, "-config", "missing.yaml"); code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("%d %q", code, errOut)
	}
	if code, out, _ := cli(t, "-version"); code != 0 || !strings.Contains(out, "tributary-cloud") {
		t.Errorf("-version: %d %q", code, out)
	}
}

// The server runs with flags over the example config, answers /healthz,
// and stops cleanly when its context ends (SIGTERM in main).
func TestServe(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done chan int
	var errOut *testenv.Buffer
	var listen string
	testenv.RetryAddrInUse(t, func() error {
		var kin string
		listen, kin = testenv.FreeAddr(t), testenv.FreeAddr(t)
		done, errOut = make(chan int, 1), &testenv.Buffer{}
		var out bytes.Buffer
		go func() {
			// The example's TLS files do not exist here: flags cannot unset
			// them, so start from no file at all.
			done <- run(ctx, []string{"-data", data, "-listen", listen, "-kinesis-listen", kin, "-log-format", "json"}, &out, errOut)
		}()
		var resp *http.Response
		exited := false
		testenv.Poll(10*time.Second, func() bool {
			select {
			case code := <-done:
				done <- code
				exited = true
				return true
			default:
			}
			var err error
			resp, err = http.Get("http://" + listen + "/healthz")
			return err == nil
		})
		switch {
		case exited:
			return fmt.Errorf("run exited at start: %s", errOut.String()) // errOut says so when the port was taken
		case resp == nil:
			return fmt.Errorf("no /healthz within 10s:\n%s", errOut.String())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("healthz %d", resp.StatusCode)
		}
		return nil
	})
	// While it runs, the token command works on the same folder.
	if code, tok, e := cli(t, "-data", data, "token", "issue", "gw-1"); code != 0 || tok == "" {
		t.Errorf("token issue while serving: %d %q", code, e)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d\n%s", code, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop")
	}
	if !strings.Contains(errOut.String(), `"msg":"tributary-cloud stopped"`) {
		t.Errorf("log: %s", errOut.String())
	}
}

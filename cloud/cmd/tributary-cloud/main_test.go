package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/internal/logging/logtest"
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

// admin-token prints a fresh token on stdout and the admin.tokens entry
// that accepts it (its hash, not the token) on stderr.
func TestAdminTokenCommand(t *testing.T) {
	code, out, errOut := cli(t, "admin-token")
	tok := strings.TrimSpace(out)
	if code != 0 || len(tok) < 40 || strings.Count(out, "\n") != 1 {
		t.Fatalf("admin-token: %d %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, server.HashAdminToken(tok)) || strings.Contains(errOut, tok) {
		t.Errorf("stderr %q: want the hash of the token and not the token", errOut)
	}
	if _, again, _ := cli(t, "admin-token"); strings.TrimSpace(again) == tok {
		t.Error("the same token twice")
	}
	if code, _, _ := cli(t, "admin-token", "x"); code != 2 {
		t.Errorf("admin-token x: exit %d, want 2", code)
	}
}

// Exposing the admin listener or the Kinesis API beyond loopback without
// authentication is refused at start, naming the setting to add.
func TestExposedWithoutAuth(t *testing.T) {
	data := t.TempDir()
	for _, c := range []struct{ flag, want string }{
		{"-admin-listen", "user add NAME) or set admin.tokens"},
		{"-kinesis-listen", "kinesis_api.credentials"},
	} {
		code, _, errOut := cli(t, "-data", data, c.flag, ":0")
		if code != 1 || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "not a loopback address") {
			t.Errorf("%s :0: exit %d %q, want 1 naming %s", c.flag, code, errOut, c.want)
		}
	}
}

// The server runs from flags, answers /healthz, and stops cleanly when its
// context ends (SIGTERM in main). The dashboard's API answers on the admin
// listener only. Its JSON log lines have no duplicate key and log
// durations as Go duration strings.
func TestServe(t *testing.T) {
	data := t.TempDir()
	listen, kin, admin := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	var logs logtest.Writer
	go func() {
		done <- run(runCtx, []string{"-data", data, "-listen", listen, "-kinesis-listen", kin, "-admin-listen", admin, "-log-format", "json", "-log-level", "debug"}, io.Discard, &logs)
	}()
	if _, err := logs.Wait(ctx, "tributary-cloud started"); err != nil {
		stop()
		t.Fatalf("%v (exit %d)\n%s", err, <-done, logs.String())
	}
	resp, err := http.Get("http://" + listen + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	for _, c := range []struct {
		url  string
		want int
	}{{"http://" + admin + "/api/v1/overview", 200}, {"http://" + admin + "/metrics", 200},
		{"http://" + listen + "/api/v1/overview", 404}, {"http://" + listen + "/metrics", 404}, {"http://" + listen + "/", 404}} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, resp.StatusCode, c.want)
		}
	}
	// While it runs, the token command works on the same folder.
	if code, tok, e := cli(t, "-data", data, "token", "issue", "gw-1"); code != 0 || tok == "" {
		t.Errorf("token issue while serving: %d %q", code, e)
	}
	// A refused upload is logged too.
	resp, err = http.Post("http://"+listen+"/v1/ingest", "application/cbor", strings.NewReader("junk"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stop()
	if code := <-done; code != 0 {
		t.Errorf("exit %d\n%s", code, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"tributary-cloud stopped"`) {
		t.Errorf("log: %s", logs.String())
	}
	sum, err := logtest.Check(logs.Bytes())
	if err != nil {
		t.Error(err)
	}
	if sum.Lines < 3 || sum.Durations < 1 { // drain_timeout at least
		t.Errorf("%+v:\n%s", sum, logs.String())
	}
}

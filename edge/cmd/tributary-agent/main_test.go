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
	"github.com/tributary-iot/tributary/internal/testenv"
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
		{[]string{"extra"}, 2, "", `unknown command "extra"`},
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

// runOut runs the command line and returns its exit code, stdout and
// stderr.
func runOut(t *testing.T, ctx context.Context, in string, args ...string) (int, string, string) {
	t.Helper()
	stdin = strings.NewReader(in)
	t.Cleanup(func() { stdin = os.Stdin })
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestDeviceCommand: device add prints a new password once and stores
// only its hash; -password-stdin keeps a device's password; list shows
// ids, never hashes; remove deletes; mistakes are refused with a reason.
func TestDeviceCommand(t *testing.T) {
	data := t.TempDir()
	code, pw, stderr := runOut(t, t.Context(), "", "device", "add", "dev-1", "-data", data)
	pw = strings.TrimSpace(pw)
	if code != 0 || len(pw) != 32 || !strings.Contains(stderr, "shown only this once") {
		t.Fatalf("device add: exit %d, stdout %q, stderr %q", code, pw, stderr)
	}
	if code, out, stderr := runOut(t, t.Context(), "old-password\n", "-data", data, "device", "add", "plc-1", "-password-stdin", "-admin"); code != 0 || out != "" {
		t.Fatalf("device add -password-stdin: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	file, err := os.ReadFile(filepath.Join(data, "devices.json"))
	if err != nil || strings.Contains(string(file), pw) || strings.Contains(string(file), "old-password") || !strings.Contains(string(file), "$argon2id$") {
		t.Fatalf("devices.json (%v):\n%s", err, file)
	}
	code, out, _ := runOut(t, t.Context(), "", "device", "list", "-data", data)
	if code != 0 || !strings.Contains(out, "dev-1") || !strings.Contains(out, "plc-1") || strings.Contains(out, "argon2") {
		t.Errorf("device list: exit %d:\n%s", code, out)
	}
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfg, []byte("gateway: gw-1\ndata: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"device", "add", "dev-1", "-data", data}, 1, "already has a password"},
		{[]string{"device", "add", "gw-1", "-config", cfg}, 1, "reserved"},
		{[]string{"device", "add", "bad id", "-data", data}, 1, "invalid device id"},
		{[]string{"device", "add", "dev-2"}, 2, "-data DIR"},
		{[]string{"device", "remove", "dev-9", "-data", data}, 1, "no such device"},
		{[]string{"device", "list", "-admin", "-data", data}, 2, "belong to device add"},
		{[]string{"device", "frob", "x", "-data", data}, 2, "unknown subcommand"},
		{[]string{"device"}, 2, "want add ID"},
		{[]string{"frob"}, 2, "unknown command"},
		{[]string{"device", "remove", "dev-1", "-config", cfg}, 0, "removed"},
	} {
		if code, _, stderr := runOut(t, t.Context(), "", tc.args...); code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, stderr %q", tc.args, code, stderr)
		}
	}
	if _, out, _ := runOut(t, t.Context(), "", "device", "list", "-config", cfg); strings.Contains(out, "dev-1") {
		t.Errorf("dev-1 listed after remove:\n%s", out)
	}
}

// TestDevicePasswordsEndToEnd: the agent started with a device file
// requires passwords: a device added with `device add` connects with the
// printed password and its readings reach the cloud; a wrong password or
// none is refused and nothing of it is queued; a device added or removed
// while the agent runs is accepted or refused at its next CONNECT.
func TestDevicePasswordsEndToEnd(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	data := t.TempDir()
	add := func(id string) string {
		code, pw, stderr := runOut(t, t.Context(), "", "device", "add", id, "-data", data)
		if code != 0 {
			t.Fatalf("device add %s: %s", id, stderr)
		}
		return strings.TrimSpace(pw)
	}
	pw1 := add("dev-1")
	cloud := uplinktest.NewServer(t, uplinktest.Options{})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logtest.Writer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"-data", data, "-gateway", "gw-1", "-cloud", cloud.URL(), "-token-file", tokenFile,
			"-listen", "127.0.0.1:0", "-mqtt-listen", "127.0.0.1:0", "-log-format", "json"}, io.Discard, &logs)
	}()
	defer func() {
		stop()
		<-done
	}()
	started, err := logs.Wait(ctx, "agent started")
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	broker := "tcp://" + strings.TrimPrefix(started["mqtt"].(string), "embedded ")
	dial := func(id, user, pass string) (mqtt.Client, error) {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetUsername(user).SetPassword(pass).
			SetConnectTimeout(10 * time.Second).SetAutoReconnect(false).SetConnectRetry(false))
		tok := c.Connect()
		if !tok.WaitTimeout(20 * time.Second) {
			return nil, context.DeadlineExceeded
		}
		return c, tok.Error()
	}
	for _, tc := range []struct{ user, pass string }{{"dev-1", "wrong"}, {"dev-1", ""}, {"", ""}, {"dev-9", pw1}} {
		if c, err := dial("x-"+tc.user, tc.user, tc.pass); err == nil {
			c.Publish(protocol.TelemetryTopic("dev-1"), 1, false, `[{"n":"forged","v":1}]`).WaitTimeout(time.Second)
			c.Disconnect(0)
			t.Errorf("user %q password %q: connected", tc.user, tc.pass)
		}
	}
	c, err := dial("dev-1", "dev-1", pw1)
	if err != nil {
		t.Fatalf("dev-1 with its password: %v", err)
	}
	if tok := c.Publish(protocol.TelemetryTopic("dev-1"), 1, false, `[{"n":"temp","v":21.5}]`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	c.Disconnect(100)
	if err := cloud.WaitCount(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// Added while running: accepted within a second or so.
	pw2 := add("dev-2")
	if !testenv.Poll(30*time.Second, func() bool {
		c, err := dial("dev-2", "dev-2", pw2)
		if err == nil {
			c.Disconnect(0)
		}
		return err == nil
	}) {
		t.Error("dev-2, added while the agent runs, never connected")
	}
	// Removed while running: refused.
	if code, _, stderr := runOut(t, t.Context(), "", "device", "remove", "dev-1", "-data", data); code != 0 {
		t.Fatal(stderr)
	}
	if !testenv.Poll(30*time.Second, func() bool {
		c, err := dial("dev-1", "dev-1", pw1)
		if err == nil {
			c.Disconnect(0)
		}
		return err != nil
	}) {
		t.Error("dev-1, removed while the agent runs, still connects")
	}
	for _, r := range cloud.Readings() {
		if r.Name == "forged" {
			t.Errorf("a refused client's reading reached the cloud: %+v", r)
		}
	}
	if n := len(cloud.Readings()); n != 1 {
		t.Errorf("%d readings reached the cloud, want 1", n)
	}
}

// TestValidateCommand: validate loads the config as a start would, prints
// the effective settings with secrets redacted, every problem, and exits
// 0 or 1.
func TestValidateCommand(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	t.Setenv("TRIBUTARY_TOKEN", "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte("gateway: gw-1\ndata: "+dir+"\ncloud:\n  url: http://127.0.0.1:8080\n  token: s3cret-token\n"+
		"mqtt:\n  listen: 127.0.0.1:1883\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runOut(t, t.Context(), "", "validate", "-config", cfg)
	if code != 0 || strings.Contains(out, "s3cret-token") || !strings.Contains(out, "token: REDACTED") ||
		!strings.Contains(out, "listen: :8284") || !strings.Contains(stderr, "configuration OK") || !strings.Contains(stderr, "warning: cloud.token") {
		t.Errorf("good config: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	// A token from the environment is no secret on a command line.
	if err := os.WriteFile(cfg, []byte("gateway: gw-1\ndata: "+dir+"\ncloud:\n  url: https://cloud.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TRIBUTARY_TOKEN", "env-token")
	code, out, stderr = runOut(t, t.Context(), "", "validate", "-config", cfg, "-mqtt-listen", "127.0.0.1:1883")
	if code != 0 || strings.Contains(out, "env-token") || strings.Contains(stderr, "warning") {
		t.Errorf("token from the environment: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	t.Setenv("TRIBUTARY_TOKEN", "")
	// Flags win over the file; every problem is listed.
	code, out, stderr = runOut(t, t.Context(), "", "validate", "-config", cfg, "-mqtt-listen", ":1883", "-cloud", "http://cloud.example",
		"-token-file", filepath.Join(dir, "none"))
	for _, want := range []string{"problem: mqtt.listen: \":1883\" is reachable from the network", "problem: cloud.url: \"http://cloud.example\"",
		"problem: agent: cloud.token_file", "3 problem(s)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("bad config: stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != 1 || !strings.Contains(out, "url: http://cloud.example") {
		t.Errorf("bad config: exit %d, stdout:\n%s", code, out)
	}
}

package deploy_test

import (
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/server"
)

// cloudDockerBinary builds tributary-cloud the way Dockerfile.cloud's
// builder does (its go build command, environment and flags) and returns
// the binary and the Dockerfile's final stage.
func cloudDockerBinary(t *testing.T) (string, stage) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds tributary-cloud (-short)")
	}
	file := filepath.Join("docker", "Dockerfile.cloud")
	stages := parseDockerfile(t, file)
	vars := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "TARGETVARIANT": "", "VERSION": "test"}
	gb := findGoBuild(t, file, stages[0], vars)
	out := filepath.Join(t.TempDir(), "tributary-cloud")
	gb.build(t, out)
	return out, stages[len(stages)-1]
}

// execForm reads an instruction's exec form (["a", "b"]).
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(in.args), &args); err != nil {
		t.Fatalf("line %d: %s %s: want the exec form [\"...\"]: %v", in.line, in.cmd, in.args, err)
	}
	return args
}

// validate runs `tributary-cloud validate ARGS...` and decodes the
// effective configuration it prints.
func validate(t *testing.T, bin string, args ...string) (server.Config, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"validate"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tributary-cloud validate %q: %v\n%s", args, err, stderr.String())
	}
	cfg, err := server.ParseConfig(stdout.Bytes())
	if err != nil {
		t.Fatalf("validate printed a config that does not decode: %v\n%s", err, stdout.String())
	}
	return cfg, stderr.String()
}

// The image's binary, run with the image's CMD, passes validate: the
// container starts with a valid configuration whose data folder is the
// image's VOLUME and whose listeners are the ports it EXPOSEs, with only
// the ingest API beyond loopback.
func TestDockerCloudValidates(t *testing.T) {
	bin, final := cloudDockerBinary(t)
	ep, cmds := final.all("ENTRYPOINT"), final.all("CMD")
	if len(ep) != 1 || len(cmds) != 1 {
		t.Fatalf("want one ENTRYPOINT and one CMD in the final stage, got %d and %d", len(ep), len(cmds))
	}
	if entry := execForm(t, ep[0]); len(entry) != 1 || filepath.Base(entry[0]) != "tributary-cloud" {
		t.Fatalf("ENTRYPOINT %q: want the binary alone (CMD holds its flags)", entry)
	}
	args := execForm(t, cmds[0])
	cfg, msg := validate(t, bin, args...)
	if !strings.Contains(msg, "configuration OK") {
		t.Errorf("validate: %s", msg)
	}
	var volumes []string
	for _, in := range final.all("VOLUME") {
		volumes = append(volumes, execForm(t, in)...)
	}
	if !slices.Contains(volumes, cfg.Data) {
		t.Errorf("CMD's data folder %q is not a VOLUME %q: the data would die with the container", cfg.Data, volumes)
	}
	var exposed []string
	for _, in := range final.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.args)...)
	}
	for name, addr := range map[string]string{"listen": cfg.Listen, "admin.listen": cfg.Admin.Listen, "kinesis_listen": cfg.KinesisListen} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil || !slices.Contains(exposed, port) {
			t.Errorf("%s %q: port not in EXPOSE %v", name, addr, exposed)
		}
	}
	if server.IsLoopback(cfg.Listen) || !server.IsLoopback(cfg.Admin.Listen) || !server.IsLoopback(cfg.KinesisListen) {
		t.Errorf("listeners: ingest %s, admin %s, kinesis %s: want only the ingest API beyond loopback", cfg.Listen, cfg.Admin.Listen, cfg.KinesisListen)
	}
}

// deploy/cloud.example.yaml passes validate (without reading the TLS
// files it names, which live on the cloud host), and what validate prints
// keeps the example's secrets out.
func TestCloudExampleValidates(t *testing.T) {
	bin, _ := cloudDockerBinary(t)
	example := filepath.Join(root, "deploy", "cloud.example.yaml")
	cfg, msg := validate(t, bin, "-config", example, "-no-files")
	if !strings.Contains(msg, "configuration OK") {
		t.Errorf("validate: %s", msg)
	}
	raw := readText(t, "deploy/cloud.example.yaml")
	want, err := server.LoadConfig(example)
	if err != nil {
		t.Fatal(err)
	}
	for id, secret := range want.KinesisAPI.Credentials {
		if cfg.KinesisAPI.Credentials[id] != "REDACTED" || !strings.Contains(raw, secret) {
			t.Errorf("kinesis_api.credentials[%s] printed as %q", id, cfg.KinesisAPI.Credentials[id])
		}
	}
	if want.Anomaly.WebhookSecret != "" && cfg.Anomaly.WebhookSecret != "REDACTED" {
		t.Errorf("anomaly.webhook_secret printed as %q", cfg.Anomaly.WebhookSecret)
	}
	if cfg.Data != want.Data || cfg.Listen != want.Listen || cfg.Admin.Listen != want.Admin.Listen {
		t.Errorf("effective data %q listen %q admin %q, the file says %q %q %q", cfg.Data, cfg.Listen, cfg.Admin.Listen, want.Data, want.Listen, want.Admin.Listen)
	}
}

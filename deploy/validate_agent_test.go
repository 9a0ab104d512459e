package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tributary-iot/tributary/edge/agent"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// TestValidateAgent builds tributary-agent the way Dockerfile.agent does
// and runs `validate` as its image would (ENTRYPOINT, then "validate" and
// the CMD's arguments) on deploy/agent.example.yaml: on a host laid out as
// the example expects (token file, TLS files under /etc/tributary) it
// passes and prints settings that load back as the same config, secrets
// redacted; on this bare host it fails naming each missing file.
func TestValidateAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	file := filepath.Join("docker", "Dockerfile.agent")
	stages := parseDockerfile(t, file)
	gb := findGoBuild(t, file, stages[0], map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "TARGETVARIANT": "", "VERSION": "test"})
	bin := filepath.Join(t.TempDir(), "tributary-agent")
	gb.build(t, bin)
	final := stages[len(stages)-1]
	ep, cmds := final.all("ENTRYPOINT"), final.all("CMD")
	if len(ep) != 1 || len(cmds) != 1 {
		t.Fatalf("%s: want one ENTRYPOINT and one CMD in the final stage, got %d and %d", file, len(ep), len(cmds))
	}
	entrypoint, cmd := execForm(t, ep[0]), execForm(t, cmds[0])
	if filepath.Base(entrypoint[0]) != "tributary-agent" {
		t.Fatalf("ENTRYPOINT %v does not run tributary-agent", entrypoint)
	}
	i := slices.Index(cmd, "-config")
	if i < 0 || i+1 >= len(cmd) || !strings.HasPrefix(cmd[i+1], "/etc/tributary/") {
		t.Fatalf("CMD %v: want -config /etc/tributary/...", cmd)
	}
	example := readText(t, "deploy/agent.example.yaml")
	env := append(os.Environ(), "TRIBUTARY_TOKEN=", "CREDENTIALS_DIRECTORY=")
	runValidate := func(configPath string) (int, string, string) {
		args := append(append(slices.Clone(entrypoint[1:]), "validate"), cmd...)
		args[slices.Index(args, "-config")+1] = configPath
		c := exec.Command(bin, args...)
		c.Env = env
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return c.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}

	// A host laid out as the example expects, under a temporary root.
	host := t.TempDir()
	etc := filepath.Join(host, "etc", "tributary")
	config := strings.NewReplacer("/etc/tributary/", etc+"/", "/var/lib/tributary", filepath.Join(host, "var", "lib", "tributary")).Replace(example)
	pki := testenv.NewPKI(t)
	cert, key := pki.Server(t, "gateway")
	for to, from := range map[string]string{"tls/gateway.crt": cert, "tls/gateway.key": key, "tls/devices-ca.crt": pki.CAFile, "tls/cloud-ca.crt": pki.CAFile} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(etc, to), b)
	}
	write(t, filepath.Join(etc, "token"), []byte("example-secret-token\n"))
	configPath := filepath.Join(etc, filepath.Base(cmd[i+1]))
	write(t, configPath, []byte(config))
	code, stdout, stderr := runValidate(configPath)
	if code != 0 || !strings.Contains(stderr, "configuration OK") {
		t.Fatalf("validate on the example, laid out: exit %d\n%s", code, stderr)
	}
	shown, err := agent.ParseConfig([]byte(stdout))
	if err != nil {
		t.Fatalf("validate's settings do not load as a config: %v\n%s", err, stdout)
	}
	want, err := agent.ParseConfig([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	want = want.WithDefaults()
	if d := cmp.Diff(want, shown, cmpopts.EquateEmpty(), cmpopts.IgnoreUnexported(agent.Config{})); d != "" {
		t.Errorf("validate's settings differ from the example with defaults (-want +validate):\n%s", d)
	}
	if strings.Contains(stdout, "example-secret-token") {
		t.Error("validate printed the token")
	}

	// The example as it is, on this host: every missing file is a problem.
	write(t, filepath.Join(host, "bare.yaml"), []byte(example))
	code, _, stderr = runValidate(filepath.Join(host, "bare.yaml"))
	for _, want := range []string{"cloud.token_file", "cloud.tls", "mqtt.tls", "problem(s)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("validate on the bare example: stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != 1 {
		t.Errorf("validate on the bare example: exit %d, want 1", code)
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

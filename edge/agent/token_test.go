package agent_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/edge/agent"
)

// TestWithEnvToken: an explicit token or token file wins; else the
// systemd credential, else $TRIBUTARY_TOKEN.
func TestWithEnvToken(t *testing.T) {
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, agent.CredentialName), []byte("from-credential\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		name             string
		cfg              agent.CloudConfig
		env              map[string]string
		token, tokenFile string
	}{
		{"explicit token", agent.CloudConfig{Token: "cfg"}, map[string]string{agent.TokenEnv: "env", "CREDENTIALS_DIRECTORY": creds}, "cfg", ""},
		{"explicit file", agent.CloudConfig{TokenFile: "/etc/t"}, map[string]string{agent.TokenEnv: "env"}, "", "/etc/t"},
		{"credential", agent.CloudConfig{}, map[string]string{agent.TokenEnv: "env", "CREDENTIALS_DIRECTORY": creds}, "", filepath.Join(creds, agent.CredentialName)},
		{"no such credential", agent.CloudConfig{}, map[string]string{agent.TokenEnv: " env\n", "CREDENTIALS_DIRECTORY": empty}, "env", ""},
		{"nothing", agent.CloudConfig{}, nil, "", ""},
	} {
		got := agent.Config{Cloud: tc.cfg}.WithEnvToken(func(k string) string { return tc.env[k] })
		if got.Cloud.Token != tc.token || got.Cloud.TokenFile != tc.tokenFile {
			t.Errorf("%s: token %q, token_file %q; want %q, %q", tc.name, got.Cloud.Token, got.Cloud.TokenFile, tc.token, tc.tokenFile)
		}
	}
	err := agent.Config{Gateway: "gw-1"}.WithEnvToken(func(string) string { return "" }).WithDefaults().Validate()
	if err == nil || !strings.Contains(err.Error(), agent.TokenEnv) || !strings.Contains(err.Error(), "-token-file") {
		t.Errorf("no token anywhere: %v, want an error naming the sources", err)
	}
}

// TestTokenFileMode: a token file readable by its group or others is
// used, with a warning; one readable by its owner only gives none; an
// empty one is an error.
func TestTokenFileMode(t *testing.T) {
	for _, tc := range []struct {
		mode    os.FileMode
		content string
		warn    bool
		err     string
	}{
		{0o600, "tok\n", false, ""},
		{0o400, "tok", false, ""},
		{0o640, "tok", true, ""},
		{0o604, "tok", true, ""},
		{0o600, " \n", false, "is empty"},
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "token")
		if err := os.WriteFile(file, []byte(tc.content), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, tc.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		var logs bytes.Buffer
		a, err := agent.New(agent.Config{Gateway: "gw-1", Data: filepath.Join(dir, "data"), Listen: "127.0.0.1:0",
			MQTT:  agent.MQTTConfig{Listen: "127.0.0.1:0"},
			Cloud: agent.CloudConfig{URL: "http://127.0.0.1:9", TokenFile: file}},
			agent.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if a != nil {
			a.Close()
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("mode %v, %q: %v, want an error containing %q", tc.mode, tc.content, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("mode %v: %v", tc.mode, err)
		}
		if warned := strings.Contains(logs.String(), "level=WARN msg=\"the token file is readable by its group or by others"); warned != tc.warn {
			t.Errorf("mode %v: warned %v, want %v; log:\n%s", tc.mode, warned, tc.warn, logs.String())
		}
	}
}

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/server"
)

// withStdin runs f with s as the user command's stdin.
func withStdin(t *testing.T, s string, f func()) {
	t.Helper()
	prev := stdin
	stdin = strings.NewReader(s)
	defer func() { stdin = prev }()
	f()
}

func verify(t *testing.T, data, name, password string) bool {
	t.Helper()
	u, err := auth.OpenUsers(filepath.Join(data, server.UsersFile), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = u.Verify(context.Background(), name, password)
	return err == nil
}

func TestUserCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	withStdin(t, "correct horse battery\n", func() {
		if code, out, errOut := cli(t, "-data", data, "user", "add", "ops"); code != 0 || out != "" || strings.Contains(errOut, "correct horse") {
			t.Fatalf("user add: %d %q %q", code, out, errOut)
		}
	})
	if !verify(t, data, "ops", "correct horse battery") || verify(t, data, "ops", "correct horse battery\n") {
		t.Fatal("the password read from stdin does not verify (or kept its newline)")
	}
	withStdin(t, "another long password\n", func() {
		if code, _, errOut := cli(t, "user", "add", "ops", "-data", data); code != 1 || !strings.Contains(errOut, "already exists") {
			t.Errorf("second add: %d %q", code, errOut)
		}
	})
	// -generate prints a random password on stdout, once.
	code, out, errOut := cli(t, "-data", data, "user", "add", "-generate", "viewer")
	pw := strings.TrimSpace(out)
	if code != 0 || len(pw) < auth.MinPasswordLen || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "only this once") {
		t.Fatalf("add -generate: %d %q %q", code, out, errOut)
	}
	if !verify(t, data, "viewer", pw) {
		t.Error("the generated password does not verify")
	}
	withStdin(t, "a different password\r\n", func() {
		if code, _, errOut := cli(t, "-data", data, "user", "passwd", "viewer"); code != 0 {
			t.Errorf("passwd: %d %q", code, errOut)
		}
	})
	if verify(t, data, "viewer", pw) || !verify(t, data, "viewer", "a different password") {
		t.Error("passwd did not replace the password")
	}
	code, out, _ = cli(t, "-data", data, "user", "list")
	if code != 0 || !strings.Contains(out, "ops") || !strings.Contains(out, "viewer") || !strings.Contains(out, "argon2id m=19456,t=2,p=1") ||
		strings.Contains(out, "$argon2id") || strings.Contains(out, "password") && strings.Contains(out, "a different") {
		t.Errorf("list: %d %q", code, out)
	}
	if code, _, _ := cli(t, "-data", data, "user", "remove", "viewer"); code != 0 {
		t.Errorf("remove: %d", code)
	}
	if code, _, errOut := cli(t, "-data", data, "user", "remove", "viewer"); code != 1 || !strings.Contains(errOut, "no such user") {
		t.Errorf("remove again: %d %q", code, errOut)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"", []string{"-data", data, "user", "add", "nobody"}, 1, "no password on stdin"},
		{"short\n", []string{"-data", data, "user", "add", "nobody"}, 1, "too short"},
		{"long enough password\n", []string{"-data", data, "user", "add", "bad name!"}, 1, "bad user name"},
		{"long enough password\n", []string{"-data", data, "user", "add", "-password", "x", "nobody"}, 2, "not defined: -password"}, // never a flag
		{"long enough password\n", []string{"user", "add", "nobody"}, 2, "-data DIR"},
		{"", []string{"-data", data, "user"}, 2, "add, passwd, remove or list"},
		{"", []string{"-data", data, "user", "add"}, 2, "want a user NAME"},
		{"", []string{"-data", data, "user", "frob", "x"}, 2, "unknown subcommand"},
		{"", []string{"-data", data, "user", "list", "extra"}, 2, "unexpected argument"},
	} {
		withStdin(t, c.stdin, func() {
			if code, _, errOut := cli(t, c.args...); code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("%q: %d %q, want %d and %q", c.args, code, errOut, c.code, c.want)
			}
		})
	}
	if verify(t, data, "nobody", "long enough password") {
		t.Error("a refused command added a user")
	}
}

// validate prints the effective settings (flags applied, secrets
// redacted) as YAML that decodes strictly, and every problem.
func TestValidateCommand(t *testing.T) {
	example := filepath.Join("..", "..", "..", "deploy", "cloud.example.yaml")
	code, out, errOut := cli(t, "validate", "-config", example, "-no-files", "-listen", ":9999")
	if code != 0 || !strings.Contains(errOut, "configuration OK") {
		t.Fatalf("example: %d\n%s\n%s", code, out, errOut)
	}
	raw, _ := os.ReadFile(example)
	for _, secret := range []string{"change-me-to-a-long-random-secret", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"} {
		if !strings.Contains(string(raw), secret) {
			t.Fatalf("the example no longer holds %q: update the test", secret)
		}
		if strings.Contains(out, secret) {
			t.Errorf("validate printed the secret %q", secret)
		}
	}
	cfg, err := server.ParseConfig([]byte(out))
	if err != nil {
		t.Fatalf("the printed config does not decode: %v\n%s", err, out)
	}
	if cfg.Listen != ":9999" || cfg.Admin.SessionTTL != server.DefaultSessionTTL || cfg.KinesisAPI.Credentials["AKIDTRIBUTARYEXAMPLE"] != "REDACTED" {
		t.Errorf("printed %+v", cfg)
	}
	// Every problem, not just the first, with files read.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("data: "+dir+"\nstream:\n  shards: -2\nanomaly:\n  webhook: https://u:hunter2@hooks.example.com/x?key=s3cr3t\n"+
		"  webhook_secret_file: "+filepath.Join(dir, "missing-secret")+"\nadmin:\n  token_files: ["+filepath.Join(dir, "missing-token")+"]\n"), 0o600)
	code, out, errOut = cli(t, "validate", "-config", bad, "-admin-listen", "0.0.0.0:8081", "-kinesis-listen", "0.0.0.0:4567")
	if code != 1 {
		t.Errorf("bad config: exit %d", code)
	}
	for _, want := range []string{"stream.shards: -2", "missing-secret", "missing-token", `kinesis_listen: "0.0.0.0:4567"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("problems do not mention %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out+errOut, "hunter2") || strings.Contains(out+errOut, "s3cr3t") {
		t.Errorf("the webhook URL's secrets were printed:\n%s\n%s", out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, server.UsersFile)); err == nil {
		t.Error("validate created users.db")
	}
	if code, _, errOut := cli(t, "validate", "-config", filepath.Join(dir, "nope.yaml")); code != 1 || !strings.Contains(errOut, "nope.yaml") {
		t.Errorf("missing file: %d %q", code, errOut)
	}
	if code, _, _ := cli(t, "validate", "extra"); code != 2 {
		t.Errorf("validate extra: %d, want 2", code)
	}
}

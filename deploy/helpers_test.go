package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository root, relative to this package.
const root = ".."

// goBin finds the go command (go test puts its GOROOT/bin first in PATH).
func goBin(t *testing.T) string {
	t.Helper()
	g, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// readText reads a file of the repository.
func readText(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// defaultPort finds `name = ":PORT"` in a Go file of the repository: the
// code's default listen address.
func defaultPort(t *testing.T, rel, name string) string {
	t.Helper()
	m := regexp.MustCompile(name + `\s*=\s*"[^":]*:(\d+)"`).FindStringSubmatch(readText(t, rel))
	if m == nil {
		t.Fatalf("%s: no %s = \"[HOST]:PORT\"", rel, name)
	}
	return m[1]
}

// goFiles lists the non-test .go files under dir (relative to root).
func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

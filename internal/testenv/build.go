package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	buildMu   sync.Mutex
	built     = map[string]builtBinary{} // by package
	binDir    string
	binDirErr error
)

type builtBinary struct {
	path string
	err  error
}

// binDirPrefix names the folders of built binaries in os.TempDir; the
// number after it is the pid of the test binary that owns one.
const binDirPrefix = "tributary-testenv-bin-"

// Binary builds the main package pkg of this module, given from the module
// root (such as "./edge/cmd/tributary-agent"), into a temporary folder, once
// per test binary, and returns the binary's path. When this test binary
// runs with the race detector (Race), so does the built one: an end-to-end
// test then races the whole program under real load. The build fails the
// test.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	b, ok := built[pkg]
	if !ok {
		b.path, b.err = build(pkg)
		built[pkg] = b
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func build(pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if binDir == "" && binDirErr == nil {
		removeStaleBinDirs()
		binDir, binDirErr = os.MkdirTemp("", binDirPrefix+strconv.Itoa(os.Getpid())+"-")
	}
	if binDirErr != nil {
		return "", fmt.Errorf("testenv: %w", binDirErr)
	}
	gobin, err := exec.LookPath("go") // go test puts its own first in PATH
	if err != nil {
		return "", fmt.Errorf("testenv: the go command: %w", err)
	}
	out := filepath.Join(binDir, filepath.Base(pkg))
	args := []string{"build", "-o", out}
	if Race {
		args = append(args, "-race")
	}
	cmd := exec.Command(gobin, append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	return out, nil
}

// removeStaleBinDirs removes the binaries that earlier test binaries,
// now gone, built (a test binary has no hook at its end to do it).
func removeStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, d := range dirs {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), binDirPrefix), "-")
		if _, err := os.Stat("/proc/" + pid); err != nil && os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

// ModuleRoot returns the folder of this module's go.mod, found from the
// working directory (a package's folder under go test) upwards.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

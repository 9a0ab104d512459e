package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InteropEnv is the environment variable that makes outside programs
// mandatory: with TRIBUTARY_INTEROP=1 (set by `make check`) a test that
// misses one fails instead of skipping.
const InteropEnv = "TRIBUTARY_INTEROP"

// Interop reports whether outside programs are mandatory
// (TRIBUTARY_INTEROP=1).
func Interop() bool { return os.Getenv(InteropEnv) == "1" }

// Missing skips the test because what (an outside program, described for
// a human) is not installed, or fails it when Interop is true.
func Missing(t testing.TB, what string) {
	t.Helper()
	if Interop() {
		t.Fatalf("%s is not installed and %s=1: run `make deps`", what, InteropEnv)
	}
	t.Skipf("%s is not installed (run `make deps`, or `make check` which installs it)", what)
}

// sbin are where Debian installs daemons (mosquitto) that a user's PATH
// may lack.
var sbin = []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}

// Look returns the path of program (on $PATH, or in an sbin folder), or ""
// when it is not installed.
func Look(program string) string {
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	for _, dir := range sbin {
		p := filepath.Join(dir, program)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Need returns the path of the outside program the test needs, skipping
// the test when it is not installed (failing it under TRIBUTARY_INTEROP=1).
// hint names what installs it, e.g. "Debian package qemu-user-static".
func Need(t testing.TB, program, hint string) string {
	t.Helper()
	p := Look(program)
	if p == "" {
		what := program
		if hint != "" {
			what += " (" + hint + ")"
		}
		Missing(t, what)
	}
	return p
}

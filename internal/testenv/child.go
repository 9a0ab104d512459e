package testenv

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment of a helper child: which helper to run, and the file size
// limit to set first.
const (
	helperEnv    = "TRIBUTARY_TESTENV_HELPER"
	fileLimitEnv = "TRIBUTARY_TESTENV_FILE_LIMIT"
)

// RunHelper goes first in a package's TestMain. In a child that Helper
// started, it runs the named function from helpers (after setting the file
// size limit HelperFileLimit asked for) and exits: 0 when the function
// returns, 2 when it is not in helpers. In the test binary itself it
// returns at once.
func RunHelper(helpers map[string]func()) {
	name := os.Getenv(helperEnv)
	if name == "" {
		return
	}
	os.Unsetenv(helperEnv) // not for the child's own children
	f, ok := helpers[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "testenv: no helper %q in this test binary\n", name)
		os.Exit(2)
	}
	if s := os.Getenv(fileLimitEnv); s != "" {
		os.Unsetenv(fileLimitEnv)
		n, err := strconv.ParseUint(s, 10, 64)
		if err == nil {
			err = LimitFileSize(n)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "testenv: helper %s: file size limit %q: %v\n", name, s, err)
			os.Exit(2)
		}
	}
	f()
	os.Exit(0)
}

// Helper returns a command that runs this test binary again as the helper
// child name (which RunHelper in its TestMain runs instead of the tests),
// with env ("KEY=value") added to this process's environment. Start it
// with Start to kill it with SIGKILL.
func Helper(t testing.TB, name string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("testenv: the test binary: %v", err)
	}
	cmd := exec.Command(exe, "-test.run=^$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+name), env...)
	return cmd
}

// HelperFileLimit is Helper for a child whose files may not grow past
// limit bytes, as on a full disk: the child sets RLIMIT_FSIZE on itself
// and ignores SIGXFSZ before the helper runs, so a write past the limit
// fails with EFBIG (syscall.EFBIG) instead of killing it. A limit of 0
// means none.
func HelperFileLimit(t testing.TB, name string, limit uint64, env ...string) *exec.Cmd {
	t.Helper()
	cmd := Helper(t, name, env...)
	if limit == 0 {
		return cmd // no limit: the disk has room again
	}
	cmd.Env = append(cmd.Env, fileLimitEnv+"="+strconv.FormatUint(limit, 10))
	return cmd
}

// NoFileLimit lifts the limit of LimitFileSize (RLIM_INFINITY): the space
// returns.
const NoFileLimit = ^uint64(0)

// LimitFileSize limits the size of every file this process writes to n
// bytes (the soft RLIMIT_FSIZE; the hard limit stays, so NoFileLimit lifts
// it again) and ignores SIGXFSZ, so a write past n fails with EFBIG. A
// helper child that must first write its starting state calls it itself,
// later than HelperFileLimit would.
func LimitFileSize(n uint64) error {
	signal.Ignore(syscall.SIGXFSZ)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return fmt.Errorf("testenv: getrlimit RLIMIT_FSIZE: %w", err)
	}
	lim.Cur = min(n, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return fmt.Errorf("testenv: setrlimit RLIMIT_FSIZE %d: %w", n, err)
	}
	return nil
}

// ReadyLine is the line a helper child prints, first, when it starts the
// work that KillWhileRunning interrupts.
const ReadyLine = "READY"

// KillWhileRunning is the power-failure harness: it starts cmd (a helper
// child from Helper) with Start, waits up to 30 seconds for its first line
// to be ReadyLine, lets it run for a random time in [least, most), kills it
// with SIGKILL and returns the complete lines it wrote to stdout after
// ReadyLine (what it had been told before it died) and its stderr. A child
// that does not say ReadyLine fails the test.
func KillWhileRunning(t testing.TB, cmd *exec.Cmd, least, most time.Duration) (lines []string, stderr string) {
	t.Helper()
	var out Lines
	var errOut Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	p := Start(t, cmd)
	if !Poll(30*time.Second, func() bool { return out.Len() > 0 || p.Exited() }) || p.Exited() {
		p.Kill9()
		t.Fatalf("testenv: helper child did not start: %s", errOut.String())
	}
	if first := out.All()[0]; first != ReadyLine {
		p.Kill9()
		t.Fatalf("testenv: helper child said %q, want %q: %s", first, ReadyLine, errOut.String())
	}
	time.Sleep(least + rand.N(most-least)) // a random moment to cut the power: deliberate
	p.Kill9()
	return out.All()[1:], errOut.String()
}

// OutputLines runs cmd (a helper child) to completion and returns the
// lines it wrote to stdout; a child that fails fails the test, showing
// what it wrote to both streams.
func OutputLines(t testing.TB, cmd *exec.Cmd) []string {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("testenv: child %s: %v\n%s%s", cmd.Args[0], err, out, stderr.String())
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}

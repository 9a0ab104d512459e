package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Daemon is a server program run as a child process that a test can kill
// with SIGKILL and start again with the same arguments, as a power cut and
// a restart would. Its output, over every run, goes to Log, whose last
// lines the test log shows when the test fails.
type Daemon struct {
	Name  string
	Path  string
	Args  []string
	Env   []string    // the environment, if not this process's
	Ready func() bool // a started process serves (e.g. GET /healthz answers)
	Log   string      // path of the log file

	t     testing.TB
	logf  *os.File
	mu    sync.Mutex
	proc  *Proc
	kills int
}

// daemonReadyTimeout bounds how long a started daemon may take to be ready.
const daemonReadyTimeout = 60 * time.Second

// NewDaemon prepares a daemon logging to dir/name.log; Start runs it. When
// the test ends the daemon is stopped (SIGTERM).
func NewDaemon(t testing.TB, dir, name, path string, args []string, ready func() bool) *Daemon {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Name: name, Path: path, Args: args, Ready: ready, Log: logf.Name(), t: t, logf: logf}
	t.Cleanup(func() {
		d.Stop()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(d.Log)
			t.Logf("last lines of %s:\n%s", d.Log, Tail(string(b), 40))
		}
	})
	return d
}

// Start starts the daemon and waits until it is ready; it returns how long
// that took. It fails the test when the daemon exits or is not ready
// within a minute; call it from the test's goroutine (see TryStart).
func (d *Daemon) Start() time.Duration {
	d.t.Helper()
	took, err := d.TryStart()
	if err != nil {
		d.t.Fatal(err)
	}
	return took
}

// TryStart is Start returning the failure instead: for goroutines other
// than the test's. The error wraps ErrAddrInUse when the daemon said that
// its listen address was taken.
func (d *Daemon) TryStart() (time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	began := time.Now()
	cmd := exec.Command(d.Path, d.Args...)
	cmd.Env = d.Env
	cmd.Stdout, cmd.Stderr = d.logf, d.logf
	p, err := start(cmd)
	if err != nil {
		return 0, err
	}
	d.proc = p
	if Poll(daemonReadyTimeout, func() bool { return p.Exited() || d.Ready() }) && !p.Exited() {
		return time.Since(began), nil
	}
	p.Kill9()
	b, _ := os.ReadFile(d.Log)
	if IsAddrInUse(nil, string(b)) {
		return 0, fmt.Errorf("%w: %s: %s", ErrAddrInUse, d.Name, Tail(string(b), 5))
	}
	if p.Exited() {
		return 0, fmt.Errorf("testenv: %s exited at start (%v); log %s:\n%s", d.Name, p.err, d.Log, Tail(string(b), 20))
	}
	return 0, fmt.Errorf("testenv: %s not ready within %s; log %s:\n%s", d.Name, daemonReadyTimeout, d.Log, Tail(string(b), 20))
}

// Kill9 kills the daemon with SIGKILL and waits for it to be gone.
func (d *Daemon) Kill9() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.proc.Kill9()
	d.kills++
}

// Kills is how many times Kill9 was called.
func (d *Daemon) Kills() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kills
}

// Stop sends SIGTERM (a clean stop) and waits; a daemon still running 30
// seconds later is killed and the test fails. Its exit status is not
// checked (tests that care use a Proc). A stopped daemon stays stopped.
func (d *Daemon) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil || d.proc.Exited() {
		return
	}
	if err := d.proc.Stop(30 * time.Second); errors.Is(err, ErrNoStop) {
		d.t.Errorf("%s did not stop within 30s of SIGTERM", d.Name)
	}
}

// Package mosquittotest starts a real mosquitto broker for interop tests.
//
// The broker listens on a free loopback port with the stock limits that
// silently drop messages raised (max_queued_messages and
// max_inflight_messages set to 0, unlimited; see TOOLING.md), no
// persistence, and anonymous access. Tests that need it call Start; when the
// mosquitto binary is missing the test is skipped, unless the environment
// sets TRIBUTARY_INTEROP=1 (as `make check` does), in which case it fails:
// CI must never pass by skipping its interop tests.
package mosquittotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Broker is a running mosquitto.
type Broker struct {
	URL  string // tcp://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   sync.Mutex
	done chan struct{}
}

// Binary returns the path of the mosquitto binary, or "" if none.
func Binary() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Required reports whether interop tests must run (TRIBUTARY_INTEROP=1).
func Required() bool { return os.Getenv("TRIBUTARY_INTEROP") == "1" }

// Skip skips (or, when Required, fails) a test because name is missing.
func Skip(t testing.TB, name string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is not installed and TRIBUTARY_INTEROP=1: run `make deps`", name)
	}
	t.Skipf("%s is not installed (run `make deps`, or `make check` which installs it)", name)
}

// Options tune the broker.
type Options struct {
	// Extra lines appended to the generated mosquitto.conf.
	Extra []string
}

// Start runs mosquitto until the test ends.
func Start(t testing.TB, o *Options) *Broker {
	t.Helper()
	bin := Binary()
	if bin == "" {
		Skip(t, "mosquitto")
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		b, err := start(t, bin, o)
		if err == nil {
			return b
		}
		lastErr = err
	}
	t.Fatalf("mosquittotest: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, o *Options) (*Broker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 0
max_queued_bytes 0
log_dest stderr
log_type error
log_type warning
`, port)
	if o != nil {
		for _, l := range o.Extra {
			conf += l + "\n"
		}
	}
	cf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	b := &Broker{Addr: "127.0.0.1:" + strconv.Itoa(port), log: &bytes.Buffer{}, done: make(chan struct{})}
	b.URL = "tcp://" + b.Addr
	b.cmd = exec.Command(bin, "-c", cf)
	b.cmd.Stderr = syncWriter{b}
	b.cmd.Stdout = syncWriter{b}
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-b.done:
			return nil, fmt.Errorf("mosquitto exited at start: %s", b.Log())
		default:
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("mosquitto did not listen on %s within 10s: %s", b.Addr, b.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", b.Log())
		}
	})
	return b, nil
}

type syncWriter struct{ b *Broker }

func (w syncWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	if w.b.log.Len() < 1<<20 {
		w.b.log.Write(p)
	}
	return len(p), nil
}

// Log returns what the broker printed (errors and warnings).
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.String()
}

// Stop terminates the broker and waits for it; safe to call twice.
func (b *Broker) Stop() {
	if b.cmd.Process != nil {
		b.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

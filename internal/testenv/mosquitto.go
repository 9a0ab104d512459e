package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Mosquitto is a running mosquitto broker, started by StartMosquitto.
type Mosquitto struct {
	URL  string // tcp://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT
	proc *Proc
	log  *Buffer
}

// StartMosquitto runs a real mosquitto until the test ends, from a
// configuration of its own: a free loopback port, anonymous access, no
// persistence, and the stock limits that silently drop messages raised
// (max_queued_messages, max_inflight_messages and max_queued_bytes 0, that
// is unlimited). Extra lines are appended to the configuration. A missing
// mosquitto skips the test (fails it under TRIBUTARY_INTEROP=1).
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	bin := Need(t, "mosquitto", "Debian package mosquitto")
	var m *Mosquitto
	RetryAddrInUse(t, func() (err error) {
		m, err = startMosquitto(t, bin, extra)
		return err
	})
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.Log())
		}
	})
	return m
}

func startMosquitto(t testing.TB, bin string, extra []string) (*Mosquitto, error) {
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`listener %s 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 0
max_queued_bytes 0
log_dest stderr
log_type error
log_type warning
`, port) + strings.Join(append(extra, ""), "\n")
	cf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	m := &Mosquitto{Addr: addr, URL: "tcp://" + addr, log: &Buffer{}}
	cmd := exec.Command(bin, "-c", cf)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	p, err := start(cmd)
	if err != nil {
		return nil, err
	}
	m.proc = p
	if err := waitListening(p, addr, 10*time.Second); err != nil {
		return nil, startError("mosquitto", err, m.log.String())
	}
	return m, nil
}

// waitListening waits until addr accepts TCP connections; it kills p and
// fails when p exits first or the timeout passes.
func waitListening(p *Proc, addr string, timeout time.Duration) error {
	ok := Poll(timeout, func() bool {
		if p.Exited() {
			return true
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	switch {
	case p.Exited():
		return fmt.Errorf("exited at start (%v)", p.err)
	case !ok:
		p.Kill9()
		return fmt.Errorf("did not listen on %s within %s", addr, timeout)
	}
	return nil
}

// startError describes a server that did not start, wrapping ErrAddrInUse
// when its output says its port was taken.
func startError(name string, err error, output string) error {
	if IsAddrInUse(nil, output) {
		return fmt.Errorf("%w: %s %v", ErrAddrInUse, name, err)
	}
	return fmt.Errorf("testenv: %s %v: %s", name, err, output)
}

// Log returns what the broker printed (errors and warnings).
func (m *Mosquitto) Log() string { return m.log.String() }

// Stop stops the broker (SIGTERM, then SIGKILL after 5 seconds) and waits
// for it; it is safe to call again.
func (m *Mosquitto) Stop() { _ = m.proc.Stop(5 * time.Second) }

package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process started by Start.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// Start starts cmd in a process group of its own (so that a kill reaches
// the processes it starts, such as node's workers), with SIGKILL as its
// parent-death signal, and waits for it in the background: callers use
// Wait, Done or Kill9, never cmd.Wait. When the test ends, a child still
// running is killed with its group. Output that the test reads while the
// child runs goes through an io.Writer such as Lines, not a pipe from
// cmd.StdoutPipe (whose reads would race with the wait).
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p, err := start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill9)
	return p
}

func start(cmd *exec.Cmd) (*Proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start %s: %w", cmd.Path, err)
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the child has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the child to exit and returns what exec.Cmd.Wait said.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Kill9 sends SIGKILL to the child's process group and waits for the
// child to be gone. It does nothing once the child has exited.
func (p *Proc) Kill9() {
	if !p.Exited() {
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// ErrNoStop is returned by Stop when the child outlived its grace period.
var ErrNoStop = errors.New("testenv: the child did not stop within its grace period")

// Stop sends SIGTERM to the child and waits up to grace for it to exit;
// then it kills the group and returns ErrNoStop. Otherwise it returns what
// exec.Cmd.Wait said (nil for a clean exit).
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return p.err
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill9()
		return fmt.Errorf("%w (%s)", ErrNoStop, grace)
	}
}

// Buffer is an io.Writer for output that a test reads while it is
// written (a child's, a logger's): a bytes.Buffer safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines is an io.Writer that splits a child's output into lines. A last
// fragment without a newline is never returned: the child was killed while
// writing it, so what it says never completed.
type Lines struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
}

func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) == 0 {
		l.partial = nil
	}
	return len(p), nil
}

// All returns the complete lines so far.
func (l *Lines) All() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Len is how many complete lines were written.
func (l *Lines) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// Tail returns the last n lines of s, for a failure message.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartServer starts the server program that newCmd returns (with Start)
// and waits up to timeout until ready holds. When the child exits first
// saying that its address was already in use, it calls newCmd again, which
// picks new addresses with FreeAddr, up to five times (RetryAddrInUse). A
// child that exits for another reason, or is not ready in time, fails the
// test with its output.
func StartServer(t testing.TB, timeout time.Duration, newCmd func() *exec.Cmd, ready func() bool) *Proc {
	t.Helper()
	var p *Proc
	RetryAddrInUse(t, func() error {
		cmd := newCmd()
		out := &Buffer{}
		for _, w := range []*io.Writer{&cmd.Stdout, &cmd.Stderr} {
			if *w == nil {
				*w = out
			} else {
				*w = io.MultiWriter(*w, out)
			}
		}
		p = Start(t, cmd)
		ok := Poll(timeout, func() bool { return p.Exited() || ready() })
		switch {
		case p.Exited() && IsAddrInUse(nil, out.String()):
			return fmt.Errorf("%w: %s", ErrAddrInUse, Tail(out.String(), 3))
		case p.Exited():
			return fmt.Errorf("testenv: %s exited at start: %v\n%s", cmd.Path, p.err, out.String())
		case !ok:
			p.Kill9()
			return fmt.Errorf("testenv: %s not ready within %s:\n%s", cmd.Path, timeout, out.String())
		}
		return nil
	})
	return p
}

// HTTPReady returns a readiness check for StartServer and NewDaemon: GET
// url answers (any status).
func HTTPReady(url string) func() bool {
	return func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return true
	}
}

// Package kinesalitetest starts kinesalite, an independent Kinesis
// emulator (npm), for interop tests.
//
// It runs in memory on a free loopback port with streams that turn ACTIVE
// after 50 ms. kinesalite never throttles, lacks UpdateShardCount and
// ListShards paging (TOOLING.md). When it is missing the test is skipped,
// unless TRIBUTARY_INTEROP=1 (`make check`), in which case it fails, as
// mosquittotest does.
package kinesalitetest

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

	"github.com/tributary-iot/tributary/protocol/mosquittotest"
)

// relBin is where `make deps-kinesalite` installs it, under the module root.
const relBin = ".tools/kinesalite/node_modules/.bin/kinesalite"

// Binary returns the kinesalite executable, or "" if none: $KINESALITE,
// then .tools/ in the module root (found from the working directory up),
// then $PATH. It also needs node on $PATH.
func Binary() string {
	if _, err := exec.LookPath("node"); err != nil {
		return ""
	}
	if p := os.Getenv("KINESALITE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, relBin)
				if _, err := os.Stat(p); err == nil {
					return p
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("kinesalite"); err == nil {
		return p
	}
	return ""
}

// Server is a running kinesalite.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Addr     string // 127.0.0.1:PORT
	cmd      *exec.Cmd
	mu       sync.Mutex
	log      bytes.Buffer
	done     chan struct{}
}

// Start runs kinesalite until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		mosquittotest.Skip(t, "kinesalite (and node)")
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("kinesalitetest: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	s.Endpoint = "http://" + s.Addr
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--createStreamMs", "50",
		"--deleteStreamMs", "50", "--updateStreamMs", "50", "--shardLimit", "100")
	s.cmd.Stdout = (*logWriter)(s)
	s.cmd.Stderr = (*logWriter)(s)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("kinesalite exited at start: %s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("kinesalite did not listen on %s within 15s: %s", s.Addr, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("kinesalite log:\n%s", s.Log())
		}
	})
	return s, nil
}

func (s *Server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Log is what kinesalite printed.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

type logWriter Server

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.log.Len() < 1<<20 {
		w.log.Write(p)
	}
	return len(p), nil
}

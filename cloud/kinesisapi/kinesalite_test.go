package kinesisapi_test

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

// kinesaliteBin finds kinesalite: `make deps-kinesalite` installs it in
// the repository's .tools folder; one on PATH also does.
func kinesaliteBin() string {
	if _, err := exec.LookPath("node"); err != nil {
		return ""
	}
	if p, err := filepath.Abs("../../.tools/kinesalite/node_modules/.bin/kinesalite"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("kinesalite"); err == nil {
		return p
	}
	return ""
}

// startKinesalite runs kinesalite on a free loopback port until the test
// ends and returns its URL. Missing kinesalite skips the test, or fails it
// under TRIBUTARY_INTEROP=1 (mosquittotest.Skip).
func startKinesalite(t testing.TB) string {
	t.Helper()
	bin := kinesaliteBin()
	if bin == "" {
		mosquittotest.Skip(t, "kinesalite (and node)")
	}
	var lastErr error
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		var out syncBuf
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--createStreamMs", "50", "--deleteStreamMs", "50", "--updateStreamMs", "50", "--shardLimit", "100")
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start kinesalite: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // node and its children
			<-exited
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				t.Cleanup(stop)
				return "http://" + addr
			}
			select {
			case <-exited:
				lastErr = fmt.Errorf("kinesalite exited: %s", out.String())
			default:
				if time.Now().After(deadline) {
					lastErr = fmt.Errorf("kinesalite did not listen within 20 s: %s", out.String())
				} else {
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			stop()
			break
		}
	}
	t.Fatal(lastErr)
	return ""
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

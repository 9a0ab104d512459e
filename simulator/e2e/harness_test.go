package e2e_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// bin builds tributary-cloud, tributary-agent or tributary-sim once per
// test binary (with -race when the tests run with it) and returns its path.
func bin(t testing.TB, name string) string {
	t.Helper()
	pkg := map[string]string{
		"tributary-cloud": "./cloud/cmd/tributary-cloud",
		"tributary-agent": "./edge/cmd/tributary-agent",
		"tributary-sim":   "./simulator/cmd/tributary-sim",
	}[name]
	return testenv.Binary(t, pkg)
}

// cloudProc is a tributary-cloud with the embedded store, on free ports.
type cloudProc struct {
	*testenv.Daemon
	addr, kinesisAddr string // the ingest API (gateways) and the Kinesis API
	adminAddr         string // the dashboard, /api/v1 and /metrics
	token             string // the bearer token of the test's gateway
}

// startCloud issues a token for gateway in a new data folder under dir and
// starts tributary-cloud on it, with extra flags appended (e.g. -config).
func startCloud(t *testing.T, dir, gateway string, extra ...string) *cloudProc {
	t.Helper()
	cloudBin := bin(t, "tributary-cloud")
	c := &cloudProc{addr: testenv.FreeAddr(t), kinesisAddr: testenv.FreeAddr(t), adminAddr: testenv.FreeAddr(t)}
	data := filepath.Join(dir, "cloud")
	out, err := exec.Command(cloudBin, "-data", data, "token", "issue", gateway).Output()
	if err != nil {
		t.Fatalf("token issue: %v", err)
	}
	c.token = strings.TrimSpace(string(out))
	c.Daemon = testenv.NewDaemon(t, dir, "cloud", cloudBin,
		append([]string{"-data", data, "-listen", c.addr, "-kinesis-listen", c.kinesisAddr,
			"-admin-listen", c.adminAddr, "-log-level", "warn"}, extra...),
		testenv.HTTPReady("http://"+c.addr+"/healthz"))
	c.Start()
	return c
}

// httpOK reports whether GET url answers 2xx.
func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// getJSON decodes GET url into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// proxy is a TCP proxy the test can cut (every connection closed, new
// ones refused) and restore: the gateway's uplink.
type proxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, addr: testenv.FreeAddr(t), target: target, conns: map[net.Conn]bool{}}
	p.restore()
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

// cut closes the listener and every connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore listens again on the same address.
func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ln net.Listener
	var err error
	testenv.Poll(2*time.Second, func() bool { // the port may linger for a moment
		ln, err = net.Listen("tcp", p.addr)
		return err == nil
	})
	if err != nil {
		p.t.Errorf("proxy: listen %s: %v", p.addr, err)
		return
	}
	p.ln = ln
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.serve(c) })
		}
	})
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) serve(c net.Conn) {
	if !p.track(c) {
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(up) {
		c.Close()
		return
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(up, c) })
	wg.Go(func() { pipe(c, up) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

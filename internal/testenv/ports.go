package testenv

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// ports picked outside the kernel's ephemeral range: listeners on
// 127.0.0.1:0 and outgoing connections of every process on the machine
// take their ports from that range, so a port from below it is much less
// likely to be taken between FreeAddr and its use.
const (
	lowestPort   = 10000
	ephemeralLow = 32768 // Linux's default, when /proc says nothing
)

var (
	portsMu sync.Mutex
	handed  = map[int]bool{} // never hand out a port twice in one process
)

// FreeAddr returns a loopback address "127.0.0.1:PORT" on which nothing
// listened a moment ago and that this process has not handed out before.
// It is for programs that must be told an address (a child process's
// flags); where the code under test accepts a net.Listener, pass it one
// instead. Nothing stops another process from taking the port before the
// test uses it: a test that can start its server again on new addresses
// wraps the start in RetryAddrInUse.
func FreeAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	high := ephemeralStart()
	for range 200 {
		port := lowestPort + rand.IntN(high-lowestPort)
		if handed[port] {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		handed[port] = true
		return addr
	}
	// Crowded below the ephemeral range: let the kernel pick.
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: listen on a free loopback port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handed[port] {
			handed[port] = true
			return l.Addr().String()
		}
	}
	t.Fatal("testenv: no free loopback port")
	return ""
}

// ephemeralStart reads the start of the kernel's ephemeral port range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return ephemeralLow
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return ephemeralLow
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= lowestPort+1000 {
		return ephemeralLow
	}
	return n
}

// IsAddrInUse reports whether err, or the output of a process that
// failed, says that a listen address was already in use.
func IsAddrInUse(err error, output ...string) bool {
	if errors.Is(err, syscall.EADDRINUSE) {
		return true
	}
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		return true
	}
	for _, o := range output {
		if strings.Contains(o, "address already in use") {
			return true
		}
	}
	return false
}

// ErrAddrInUse is what a start function given to RetryAddrInUse returns
// (possibly wrapped) when its server could not listen because another
// process took the port after FreeAddr.
var ErrAddrInUse = errors.New("testenv: address already in use")

// RetryAddrInUse calls start, which picks its addresses with FreeAddr on
// each call, until it succeeds, up to five times while it fails with an
// error for which IsAddrInUse is true (or ErrAddrInUse). Any other error
// fails the test at once.
func RetryAddrInUse(t testing.TB, start func() error) {
	t.Helper()
	var err error
	for range 5 {
		if err = start(); err == nil {
			return
		}
		if !errors.Is(err, ErrAddrInUse) && !IsAddrInUse(err) {
			t.Fatal(err)
		}
		t.Logf("testenv: port taken meanwhile, starting again on new ports: %v", err)
	}
	t.Fatalf("testenv: five starts found their ports taken: %v", err)
}

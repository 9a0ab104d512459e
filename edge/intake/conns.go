package intake

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-iot/tributary/internal/loglimit"
)

// Connection refusals: the values of
// tributary_intake_connections_refused_total's reason label.
const (
	RefusedMaxClients     = "max_clients"     // MaxClients connections were open
	RefusedPerSource      = "per_source"      // MaxClientsPerSource connections from that address were open
	RefusedConnectTimeout = "connect_timeout" // no CONNECT within ConnectTimeout
)

// refusals lists every refusal, in the order of the counters (ref*).
var refusals = [...]string{RefusedMaxClients, RefusedPerSource, RefusedConnectTimeout}

const (
	refMaxClients = iota
	refPerSource
	refConnectTimeout
)

// limitListener guards the embedded broker's listener. mochi reads a new
// connection's CONNECT with no deadline and counts only the clients that
// completed it (server.go attachClient), so a host that opens connections
// and sends nothing would hold them forever, without bound. Here every
// accepted connection counts against MaxClients and, unless it comes from
// a loopback address, MaxClientsPerSource (over either it is closed at
// once), and gets ConnectTimeout to send CONNECT: mochi sets the
// keepalive deadline after reading it (client.refreshDeadline), which
// replaces this one.
type limitListener struct {
	net.Listener
	max, perSource int
	connectTimeout time.Duration
	log            *slog.Logger
	limit          *loglimit.Keyed

	mu       sync.Mutex
	open     int
	bySource map[string]int
	refused  [len(refusals)]atomic.Uint64
}

func newLimitListener(ln net.Listener, max, perSource int, connectTimeout time.Duration, log *slog.Logger, limit *loglimit.Keyed) *limitListener {
	return &limitListener{Listener: ln, max: max, perSource: perSource, connectTimeout: connectTimeout,
		log: log, limit: limit, bySource: map[string]int{}}
}

// Accept returns the next connection within the caps; it closes the
// others as they come.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src, local := source(c.RemoteAddr())
		if i := l.admit(src, local); i >= 0 {
			l.refuse(i, c.RemoteAddr())
			c.Close()
			continue
		}
		_ = c.SetDeadline(time.Now().Add(l.connectTimeout))
		return &limitConn{Conn: c, l: l, src: src}, nil
	}
}

// admit takes a place for a connection from src, or returns the index of
// the refusal reason.
func (l *limitListener) admit(src string, local bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		return refMaxClients
	case !local && l.bySource[src] >= l.perSource:
		return refPerSource
	}
	l.open++
	l.bySource[src]++
	return -1
}

func (l *limitListener) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

func (l *limitListener) refuse(i int, remote net.Addr) {
	l.refused[i].Add(1)
	if ok, n := l.limit.Allow("conn:" + refusals[i]); ok {
		l.log.Warn("connection closed", "reason", refusals[i], "remote", remote.String(),
			"max_clients", l.max, "max_clients_per_source", l.perSource, "connect_timeout", l.connectTimeout, "suppressed", n)
	}
}

// counts returns the open connections and the refusals by reason.
func (l *limitListener) counts() (open int, refused [len(refusals)]uint64) {
	l.mu.Lock()
	open = l.open
	l.mu.Unlock()
	for i := range refused {
		refused[i] = l.refused[i].Load()
	}
	return open, refused
}

// source returns the address a connection came from, and whether it is a
// loopback address (the gateway itself: not held to the per-source cap).
func source(a net.Addr) (string, bool) {
	host := a.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return host, ip != nil && ip.IsLoopback()
}

// limitConn releases its place when closed and counts a CONNECT that did
// not come in time.
type limitConn struct {
	net.Conn
	l           *limitListener
	src         string
	established atomic.Bool // CONNECT read (the OnConnect hook)
	timedOut    atomic.Bool
	closed      sync.Once
}

func (c *limitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.established.Load() && c.timedOut.CompareAndSwap(false, true) {
		c.l.refuse(refConnectTimeout, c.RemoteAddr())
	}
	return n, err
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.l.release(c.src) })
	return err
}

// connected marks conn (a *limitConn, or a *tls.Conn over one) as past
// its CONNECT.
func connected(conn net.Conn) {
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		conn = nc.NetConn()
	}
	if lc, ok := conn.(*limitConn); ok {
		lc.established.Store(true)
	}
}

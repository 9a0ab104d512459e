package fleet

import (
	"bufio"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// limiter paces events to a rate with a small burst, fleet-wide: each Wait
// reserves the next free slot and sleeps until it. It keeps no queue, only
// the time of the next slot, so any number of waiters cost nothing but
// their own timers.
type limiter struct {
	mu    sync.Mutex
	every time.Duration // 1/rate
	burst time.Duration // how far behind now the next slot may lag
	next  time.Time
}

// newLimiter lets perSecond events through per second, up to burst
// (at least 1) at once after a quiet time.
func newLimiter(perSecond float64, burst int) *limiter {
	every := time.Duration(float64(time.Second) / perSecond)
	return &limiter{every: every, burst: time.Duration(max(burst, 1)-1) * every}
}

// Wait blocks until the caller's slot comes or ctx ends.
func (l *limiter) Wait(ctx context.Context) error {
	now := time.Now()
	l.mu.Lock()
	if floor := now.Add(-l.burst); l.next.Before(floor) {
		l.next = floor
	}
	at := l.next
	l.next = l.next.Add(l.every)
	l.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// link is one device's network connection as the fleet sees it: the dial
// hook records the connection so that a storm can sever it.
type link struct {
	mu        sync.Mutex
	conn      net.Conn
	severedAt time.Time // when a storm severed the connection; zero if not pending
	dials     int       // successful dials
	cuts      uint64    // connections severed
}

// set records a newly dialled connection and returns the time a storm
// severed the previous one, if that disconnect is still open.
func (l *link) set(c net.Conn) (severedAt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conn = c
	l.dials++
	severedAt, l.severedAt = l.severedAt, time.Time{}
	return severedAt
}

// sever closes the current connection, if any, and reports whether there
// was one (a device whose link is already down is not severed again).
func (l *link) sever(now time.Time) bool {
	l.mu.Lock()
	c := l.conn
	if c == nil || !l.severedAt.IsZero() {
		l.mu.Unlock()
		return false
	}
	l.conn = nil
	l.severedAt = now
	l.cuts++
	l.mu.Unlock()
	c.Close()
	return true
}

// pending returns the time of a storm disconnect not yet followed by a new
// connection, and clears it.
func (l *link) pending() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.severedAt
	l.severedAt = time.Time{}
	return t
}

// trackedConn clears its link's record when the connection closes, so a
// storm never severs a connection that is already gone. It also buffers
// reads: paho reads a packet's header byte by byte, which would cost three
// read system calls per PUBACK.
type trackedConn struct {
	net.Conn
	r      *bufio.Reader
	link   *link
	closed atomic.Bool
}

// readBuffer holds a few acknowledgements; larger packets (commands) are
// read through it.
const readBuffer = 256

func newTrackedConn(c net.Conn, l *link) *trackedConn {
	return &trackedConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer), link: l}
}

func (c *trackedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *trackedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.link.mu.Lock()
		if c.link.conn == net.Conn(c) {
			c.link.conn = nil
		}
		c.link.mu.Unlock()
	}
	return c.Conn.Close()
}

// severed returns how many connections storms severed.
func (l *link) severed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cuts
}

// dialled reports whether the device ever connected.
func (l *link) dialled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dials > 0
}

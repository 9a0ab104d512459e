package intake

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/internal/loglimit"
)

// chanListener is a net.Listener whose connections come from a channel.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { close(l.done); return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 100), Port: 1883} }

// fromConn is one end of a net.Pipe that says it comes from addr.
type fromConn struct {
	net.Conn
	addr net.Addr
}

func (c fromConn) RemoteAddr() net.Addr { return c.addr }

// limitHarness accepts connections through a limitListener in a
// goroutine; dial returns the client end of a connection from ip, and the
// server end if it was accepted (nil if it was closed at once).
type limitHarness struct {
	ln       *limitListener
	raw      *chanListener
	accepted chan net.Conn
}

func newLimitHarness(t *testing.T, max, perSource int, timeout time.Duration) *limitHarness {
	raw := newChanListener()
	h := &limitHarness{ln: newLimitListener(raw, max, perSource, timeout, slog.New(slog.DiscardHandler), &loglimit.Keyed{Every: time.Minute}),
		raw: raw, accepted: make(chan net.Conn, 100)}
	go func() {
		for {
			c, err := h.ln.Accept()
			if err != nil {
				return
			}
			h.accepted <- c
		}
	}()
	t.Cleanup(func() { raw.Close() })
	return h
}

func (h *limitHarness) dial(t *testing.T, ip string) (client, server net.Conn) {
	t.Helper()
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close(); srv.Close() })
	h.raw.conns <- fromConn{srv, &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
	synctest.Wait()
	select {
	case c := <-h.accepted:
		return cli, c
	default:
		// Refused: the client end reads EOF at once.
		if _, err := cli.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("connection from %s neither accepted nor closed: %v", ip, err)
		}
		return cli, nil
	}
}

// TestLimitListenerCaps: a connection over the total or per-source cap is
// closed at once and counted; loopback sources are held to the total cap
// only; closing a connection frees its place.
func TestLimitListenerCaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newLimitHarness(t, 5, 2, 10*time.Second)
		accepted := func(ip string, want bool) net.Conn {
			t.Helper()
			_, srv := h.dial(t, ip)
			if (srv != nil) != want {
				t.Fatalf("connection from %s: accepted %v, want %v", ip, srv != nil, want)
			}
			return srv
		}
		first := accepted("192.0.2.1", true)
		accepted("192.0.2.1", true)
		accepted("192.0.2.1", false) // per source
		accepted("192.0.2.2", true)
		accepted("127.0.0.1", true)
		accepted("127.0.0.1", true)  // loopback: not held to the per-source cap
		accepted("192.0.2.3", false) // total
		first.Close()
		first.Close() // idempotent: frees one place only
		accepted("192.0.2.1", true)
		accepted("192.0.2.4", false)
		open, refused := h.ln.counts()
		if open != 5 || refused != [3]uint64{2, 1, 0} {
			t.Errorf("open %d, refused %v; want 5 and [2 1 0]", open, refused)
		}
	})
}

// TestLimitListenerConnectTimeout: a connection that sends no CONNECT is
// cut at ConnectTimeout, not before, and counted; one past its CONNECT
// (mochi then sets the keepalive deadline) is not.
func TestLimitListenerConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 10 * time.Second
		h := newLimitHarness(t, 10, 10, timeout)
		read := func(c net.Conn) chan error {
			done := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 1))
				done <- err
			}()
			return done
		}
		_, silent := h.dial(t, "192.0.2.1")
		cli, prompt := h.dial(t, "192.0.2.2")
		silentRead := read(silent)
		// prompt sends its CONNECT: the hook marks it, mochi replaces the
		// deadline with the keepalive's.
		go cli.Write([]byte{0x10})
		if _, err := prompt.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		connected(prompt)
		prompt.SetDeadline(time.Now().Add(time.Hour))
		promptRead := read(prompt)

		time.Sleep(timeout - time.Millisecond)
		synctest.Wait()
		select {
		case err := <-silentRead:
			t.Fatalf("silent connection cut before the connect timeout: %v", err)
		default:
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		select {
		case err := <-silentRead:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("silent connection: %v, want a deadline error", err)
			}
		default:
			t.Fatal("silent connection still open after the connect timeout")
		}
		select {
		case err := <-promptRead:
			t.Fatalf("connection past CONNECT cut: %v", err)
		default:
		}
		if _, refused := h.ln.counts(); refused != [3]uint64{0, 0, 1} {
			t.Errorf("refused %v, want one connect_timeout", refused)
		}
		prompt.Close()
		<-promptRead
	})
}

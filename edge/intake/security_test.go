package intake_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/edge/devicecreds"
	"github.com/tributary-iot/tributary/edge/intake"
	"github.com/tributary-iot/tributary/internal/logging/logtest"
	"github.com/tributary-iot/tributary/protocol"
)

func ptr[T any](v T) *T { return &v }

// TestEmbeddedAnonymousPolicy: anonymous clients are admitted on a
// loopback listener; a listener reachable from the network with no
// authentication is refused at start unless AllowAnonymous says so, and
// then every start logs a warning.
func TestEmbeddedAnonymousPolicy(t *testing.T) {
	for _, listen := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:1883", "gateway.example:1883"} {
		e, err := intake.NewEmbedded(intake.EmbeddedConfig{Listen: listen}, &memStore{}, intake.Options{})
		if err == nil {
			e.Close()
		}
		if !errors.Is(err, intake.ErrUnauthenticated) {
			t.Errorf("listen %q without authentication: %v, want ErrUnauthenticated", listen, err)
			continue
		}
		for _, setting := range []string{"device add", "client_ca_file", "allow_anonymous"} {
			if !strings.Contains(err.Error(), setting) {
				t.Errorf("listen %q: error %q does not name %s", listen, err, setting)
			}
		}
	}
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0", "127.0.0.2:1883"} {
		if !intake.LoopbackAddr(listen) {
			t.Errorf("LoopbackAddr(%q) = false", listen)
		}
	}

	// Loopback: anonymous devices connect and their telemetry is stored.
	store := &memStore{}
	_, url := newEmbedded(t, store)
	publish(t, publisher(t, url, "dev-1"), protocol.TelemetryTopic("dev-1"), pack("x", 1, true))
	if _, _, rs, _ := store.snapshot(); len(rs) != 1 {
		t.Errorf("loopback anonymous publish: store = %v", rs)
	}

	// Every interface with AllowAnonymous: served, with a warning.
	var logs logtest.Writer
	e, err := intake.NewEmbedded(intake.EmbeddedConfig{Listen: "0.0.0.0:0", AllowAnonymous: true}, &memStore{},
		intake.Options{Clock: testClock{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	start(t, e)
	waitFor(t, 5*time.Second, "the broker to serve", func() bool { return e.Stats().Connected })
	_, port, _ := net.SplitHostPort(e.Addr())
	publisher(t, "tcp://127.0.0.1:"+port, "dev-1")
	if !strings.Contains(logs.String(), "level=WARN msg=\"anonymous MQTT clients are accepted") {
		t.Errorf("no warning about anonymous clients; log:\n%s", logs.String())
	}

	// Every interface with passwords: anonymous clients are refused.
	_, url = newEmbedded(t, &memStore{}, func(c *intake.EmbeddedConfig) {
		c.Listen = "0.0.0.0:0"
		c.Passwords = passwords(t, "dev-1:a")
	})
	if c, err := connect(url, "anon"); err == nil {
		c.Disconnect(0)
		t.Error("anonymous client connected to a listener with passwords")
	}
}

// TestEmbeddedReserved: with passwords, strict identity is on by default:
// telemetry under another device's id, under the gateway's id or with a
// reading named like the agent's health is dead-lettered and nothing of
// it is stored; the gateway's topics are refused; no user may be named
// after the gateway.
func TestEmbeddedReserved(t *testing.T) {
	users := passwords(t, "dev-1:a")
	store := &memStore{}
	_, url := newEmbedded(t, store, func(c *intake.EmbeddedConfig) {
		c.Gateway = "gw-1"
		c.Passwords = users
	})
	dev1 := publisher(t, url, "dev-1", func(o *mqtt.ClientOptions) { o.SetUsername("dev-1").SetPassword("a") })
	publish(t, dev1, protocol.TelemetryTopic("dev-2"), pack("x", 2, true))
	publish(t, dev1, protocol.TelemetryTopic("gw-1"), pack("x", 3, true))
	publish(t, dev1, protocol.TelemetryTopic("dev-1"), []byte(`[{"n":"`+protocol.HealthUplinkOK+`","vb":true}]`))
	publish(t, dev1, protocol.TelemetryTopic("dev-1"), pack("x", 1, true))
	_, _, rs, dead := store.snapshot()
	if len(rs) != 1 || rs[0].Device != "dev-1" || rs[0].Value != 1 {
		t.Errorf("store = %v, want dev-1's own reading only", rs)
	}
	if want, codes := "[identity reserved reserved]", reasonCodes(dead); fmt.Sprint(codes) != want {
		t.Errorf("dead letters %v, want %s", codes, want)
	}
	// The gateway's status topic: refused, the client disconnected.
	dev1.Publish(protocol.StatusTopic("gw-1"), 1, false, []byte(`{"state":"offline"}`)).WaitTimeout(2 * time.Second)
	waitFor(t, 5*time.Second, "dev-1 to be disconnected", func() bool { return !dev1.IsConnectionOpen() })

	_, err := intake.NewEmbedded(intake.EmbeddedConfig{Listen: "127.0.0.1:0", Gateway: "dev-1", Passwords: users}, store, intake.Options{})
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("a user named after the gateway: %v", err)
	}
	_, err = intake.NewEmbedded(intake.EmbeddedConfig{Listen: "127.0.0.1:0", StrictDeviceIdentity: ptr(true)}, store, intake.Options{})
	if err == nil || !strings.Contains(err.Error(), "strict_identity needs device passwords or client_ca_file") {
		t.Errorf("strict identity without authentication: %v", err)
	}
}

// rawConnect sends an MQTT 3.1.1 CONNECT with a last will and returns the
// CONNACK's return code and the connection.
func rawConnect(t *testing.T, addr, id, user, pass, willTopic string) (byte, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.ClientIdentifier = "MQTT", 4, id
	cp.CleanSession, cp.Keepalive = true, 30
	if user != "" {
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, user, true, []byte(pass)
	}
	cp.WillFlag, cp.WillQos, cp.WillRetain = true, 1, true
	cp.WillTopic, cp.WillMessage = willTopic, []byte(`{"state":"offline","reason":"lost"}`)
	if err := cp.Write(conn); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	ack, err := packets.ReadPacket(conn)
	if err != nil {
		t.Fatalf("%s: reading CONNACK: %v", id, err)
	}
	return ack.(*packets.ConnackPacket).ReturnCode, conn
}

// TestEmbeddedWillAbuse: a last will may go only where its client may
// publish, and never on a telemetry topic (a will bypasses the store);
// an abusive will refuses the connection, so it is never sent.
func TestEmbeddedWillAbuse(t *testing.T) {
	store := &memStore{}
	strict, url := newEmbedded(t, store, func(c *intake.EmbeddedConfig) {
		c.Gateway = "gw-1"
		c.Passwords = passwords(t, "dev-1:a")
	})
	// Anonymous on loopback (no strict identity): still no telemetry wills
	// and nothing under the gateway's id.
	open, openURL := newEmbedded(t, store, func(c *intake.EmbeddedConfig) { c.Gateway = "gw-1" })
	var conns []net.Conn
	for _, tc := range []struct {
		url, user, will string
		ok              bool
	}{
		{url, "dev-1", protocol.StatusTopic("dev-1"), true},
		{url, "dev-1", protocol.StatusTopic("dev-2"), false},
		{url, "dev-1", protocol.StatusTopic("gw-1"), false},
		{url, "dev-1", protocol.TelemetryTopic("dev-1"), false},
		{url, "dev-1", protocol.TelemetryTopic("dev-2"), false},
		{openURL, "", protocol.StatusTopic("dev-2"), true},
		{openURL, "", protocol.StatusTopic("gw-1"), false},
		{openURL, "", protocol.TelemetryTopic("dev-2"), false},
	} {
		pass := map[string]string{"dev-1": "a"}[tc.user]
		code, conn := rawConnect(t, strings.TrimPrefix(tc.url, "tcp://"), "c-"+tc.will, tc.user, pass, tc.will)
		if (code == 0) != tc.ok {
			t.Errorf("user %q, will on %s: CONNACK %d, want accepted %v", tc.user, tc.will, code, tc.ok)
		}
		conns = append(conns, conn)
	}
	// Every connection breaks: the accepted wills are sent, and only they.
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, 5*time.Second, "the accepted wills", func() bool { return len(strict.Devices()) > 0 && len(open.Devices()) > 0 })
	appends, _, rs, dead := store.snapshot()
	if appends != 0 || len(rs) != 0 || len(dead) != 0 {
		t.Errorf("store: %d appends, readings %v, dead letters %v; want nothing", appends, rs, dead)
	}
	if d := strict.Devices(); len(d) != 1 || d[0].ID != "dev-1" {
		t.Errorf("strict broker's device table %+v, want dev-1's will only", d)
	}
	if d := open.Devices(); len(d) != 1 || d[0].ID != "dev-2" {
		t.Errorf("anonymous broker's device table %+v, want dev-2's will only", d)
	}
}

// TestEmbeddedConnectionGuards: through the real broker, connections over
// MaxClients are closed at once; connections that never send CONNECT are
// closed after ConnectTimeout, which frees their places for devices; every
// refusal is counted.
func TestEmbeddedConnectionGuards(t *testing.T) {
	store := &memStore{}
	e, url := newEmbedded(t, store, func(c *intake.EmbeddedConfig) {
		c.MaxClients = 2
		c.ConnectTimeout = 300 * time.Millisecond
	})
	addr := strings.TrimPrefix(url, "tcp://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closed waits (at most 10s) for the broker to close c.
	closed := func(c net.Conn) error {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err
	}
	silent := []net.Conn{dial(), dial()}
	waitFor(t, 5*time.Second, "two open connections", func() bool { return e.Stats().Connections == 2 })
	if err := closed(dial()); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("third connection over max_clients 2: read %v, want it closed at once", err)
	}
	began := time.Now()
	for _, c := range silent {
		if err := closed(c); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("silent connection: read %v, want it closed by the broker", err)
		}
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("silent connections closed after %s, connect timeout 300ms", d)
	}
	// Their places are free again.
	publish(t, publisher(t, url, "dev-1"), protocol.TelemetryTopic("dev-1"), pack("x", 1, true))
	st := e.Stats()
	if st.ConnectionsRefused[intake.RefusedMaxClients] != 1 || st.ConnectionsRefused[intake.RefusedConnectTimeout] != 2 {
		t.Errorf("refused %v, want 1 max_clients and 2 connect_timeout", st.ConnectionsRefused)
	}
	if _, _, rs, _ := store.snapshot(); len(rs) != 1 {
		t.Errorf("store = %v", rs)
	}
}

// TestEmbeddedPasswordRefusals: with device passwords, a wrong, empty or
// missing password and an unknown username are refused at CONNECT and
// nothing they send is stored; after FailureBurst failures from one
// address its attempts that need a key derivation are refused without
// one (counted), while a device verified before still connects.
func TestEmbeddedPasswordRefusals(t *testing.T) {
	path := filepath.Join(t.TempDir(), devicecreds.FileName)
	for _, d := range []string{"dev-1", "dev-2"} {
		if err := devicecreds.Add(path, d, []byte("pw-"+d), false, devicecreds.Params{Memory: 64, Time: 1, Threads: 1}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	v, err := devicecreds.NewVerifier(path, devicecreds.Options{FailureBurst: 3, FailureEvery: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	store := &memStore{}
	_, url := newEmbedded(t, store, func(c *intake.EmbeddedConfig) { c.Passwords = v })
	addr := strings.TrimPrefix(url, "tcp://")
	if code, _ := rawConnect(t, addr, "ok", "dev-1", "pw-dev-1", protocol.StatusTopic("dev-1")); code != 0 {
		t.Fatalf("dev-1 with its password: CONNACK %d", code) // now cached
	}
	for _, tc := range []struct{ user, pass string }{
		{"dev-2", "pw-dev-1"}, // another device's password
		{"dev-2", ""},         // empty
		{"dev-9", "pw-dev-2"}, // unknown device
		{"dev-2", "guess"},    // over the allowance: throttled
		{"dev-2", "pw-dev-2"}, // the right one, but it would need a derivation: throttled
		{"", ""},              // anonymous
	} {
		if code, _ := rawConnect(t, addr, "c-"+tc.user, tc.user, tc.pass, protocol.StatusTopic(cmpOr(tc.user, "x"))); code == 0 {
			t.Errorf("user %q password %q: accepted", tc.user, tc.pass)
		}
		// A refused client's telemetry goes nowhere.
		if c, err := connect(url, "p-"+tc.user, func(o *mqtt.ClientOptions) {
			o.SetUsername(tc.user).SetPassword(tc.pass).SetConnectTimeout(2 * time.Second)
		}); err == nil {
			c.Publish(protocol.TelemetryTopic(cmpOr(tc.user, "x")), 1, false, pack("x", 1, true)).WaitTimeout(time.Second)
			c.Disconnect(0)
			t.Errorf("paho, user %q password %q: connected", tc.user, tc.pass)
		}
	}
	if code, _ := rawConnect(t, addr, "ok2", "dev-1", "pw-dev-1", protocol.StatusTopic("dev-1")); code != 0 {
		t.Errorf("dev-1 again, from the throttled address: CONNACK %d", code)
	}
	if appends, _, rs, dead := store.snapshot(); appends != 0 || len(rs) != 0 || len(dead) != 0 {
		t.Errorf("store: %d appends, readings %v, dead letters %v; want nothing", appends, rs, dead)
	}
	mfs, _ := reg.Gather()
	var throttled, hashes float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case mf.GetName() == "tributary_intake_password_checks_total" && m.GetLabel()[0].GetValue() == devicecreds.ResultThrottled:
				throttled = m.GetCounter().GetValue()
			case mf.GetName() == "tributary_intake_password_hashes_total":
				hashes = m.GetCounter().GetValue()
			}
		}
	}
	if throttled < 2 || hashes > 4 {
		t.Errorf("throttled %v (want at least 2), derivations %v (want at most 4: dev-1 once, then the allowance of 3 failures)", throttled, hashes)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

package intake_test

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/tributary-iot/tributary/edge/intake"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

func newEmbedded(t *testing.T, store intake.Store, tune ...func(*intake.EmbeddedConfig)) (*intake.Embedded, string) {
	t.Helper()
	cfg := intake.EmbeddedConfig{Listen: "127.0.0.1:0"}
	for _, f := range tune {
		f(&cfg)
	}
	e, err := intake.NewEmbedded(cfg, store, intake.Options{Clock: testClock{}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, e)
	waitFor(t, 5*time.Second, "the broker to serve", func() bool { return e.Stats().Connected })
	scheme := "tcp://"
	if cfg.TLS.CertFile != "" {
		scheme = "ssl://"
	}
	return e, scheme + e.Addr()
}

// TestEmbeddedAckAfterCommit: the publisher's PUBACK (its token) comes
// only after Append returned.
func TestEmbeddedAckAfterCommit(t *testing.T) {
	store := &memStore{}
	store.block()
	_, url := newEmbedded(t, store)
	pub := publisher(t, url, "dev-1")
	tok := pub.Publish(protocol.TelemetryTopic("dev-1"), 1, false, pack("x", 1, true))
	waitFor(t, 5*time.Second, "Append to be called", func() bool {
		_, blocked, _, _ := store.snapshot()
		return blocked == 1
	})
	if tok.WaitTimeout(300 * time.Millisecond) {
		t.Fatalf("publish completed (err %v) while Append was blocked: acknowledged before durable", tok.Error())
	}
	store.unblock()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish after Append returned: done=%v err=%v", tok.WaitTimeout(0), tok.Error())
	}
	if _, _, rs, _ := store.snapshot(); len(rs) != 1 || rs[0].Device != "dev-1" || rs[0].Value != 1 {
		t.Errorf("store = %v", rs)
	}
}

// TestEmbeddedStoreFailureRetried: when Append fails the message is not
// acknowledged and the client is disconnected; it reconnects and publishes
// the message again from its session (paho resends only unacknowledged
// QoS 1 messages), and the second Append stores it.
func TestEmbeddedStoreFailureRetried(t *testing.T) {
	store := &memStore{failNext: 1}
	e, url := newEmbedded(t, store)
	var lost atomic.Int32
	pub := publisher(t, url, "dev-1", func(o *mqtt.ClientOptions) {
		o.SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(100 * time.Millisecond).
			SetConnectionLostHandler(func(mqtt.Client, error) { lost.Add(1) })
	})
	pub.Publish(protocol.TelemetryTopic("dev-1"), 1, false, pack("x", 5, true))
	waitFor(t, 10*time.Second, "the message to be stored", func() bool {
		_, _, rs, _ := store.snapshot()
		return len(rs) == 1
	})
	appends, _, rs, _ := store.snapshot()
	if appends != 2 || rs[0].Value != 5 {
		t.Errorf("store: %d Appends, readings %v; want a failed Append, then the resent message stored", appends, rs)
	}
	if lost.Load() != 1 {
		t.Errorf("publisher lost its connection %d times, want once (disconnected after the failed Append)", lost.Load())
	}
	if st := e.Stats(); st.AppendErrors != 1 || st.Acked != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestEmbeddedSharedCommits: many clients publishing at once share the
// store's commits, although each client's messages go one at a time.
func TestEmbeddedSharedCommits(t *testing.T) {
	store := newGroupStore(t, 5*time.Millisecond)
	e, url := newEmbedded(t, store)
	const clients, each = 40, 25
	var wg sync.WaitGroup
	for c := range clients {
		pub := publisher(t, url, fmt.Sprintf("dev-%d", c))
		wg.Go(func() {
			toks := make([]mqtt.Token, 0, each)
			for i := range each {
				toks = append(toks, pub.Publish(protocol.TelemetryTopic(fmt.Sprintf("dev-%d", c)), 1, false, pack("x", c*each+i, i%2 == 0)))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
					t.Errorf("client %d: publish: %v", c, tok.Error())
					return
				}
			}
		})
	}
	wg.Wait()
	appends, readings, commits := store.counts()
	t.Logf("%d messages, %d readings in %d commits", appends, readings, commits)
	if appends != clients*each || readings != clients*each {
		t.Fatalf("store got %d Appends with %d readings, want %d", appends, readings, clients*each)
	}
	if commits > appends/4 {
		t.Errorf("%d commits for %d messages: messages from different clients do not share commits", commits, appends)
	}
	if st := e.Stats(); st.Acked != clients*each {
		t.Errorf("Stats = %+v", st)
	}
}

// TestEmbeddedTLSPasswords: TLS with username/password; with Passwords set,
// anonymous clients are refused by default.
func TestEmbeddedTLSPasswords(t *testing.T) {
	pki := testenv.NewPKI(t)
	serverCert, serverKey := pki.Server(t, "server")
	store := &memStore{}
	_, url := newEmbedded(t, store, func(c *intake.EmbeddedConfig) {
		c.TLS = tlsfiles.Server{CertFile: serverCert, KeyFile: serverKey}
		c.Passwords = passwords(t, "dev-1:s3cret")
	})
	tlsc := pki.ClientTLS(t, "")
	withTLS := func(user, pass string) func(*mqtt.ClientOptions) {
		return func(o *mqtt.ClientOptions) { o.SetTLSConfig(tlsc).SetUsername(user).SetPassword(pass) }
	}
	pub := publisher(t, url, "dev-1", withTLS("dev-1", "s3cret"))
	publish(t, pub, protocol.TelemetryTopic("dev-1"), pack("x", 1, true))
	if _, _, rs, _ := store.snapshot(); len(rs) != 1 {
		t.Errorf("store = %v", rs)
	}
	for _, tc := range []struct{ user, pass string }{{"dev-1", "wrong"}, {"nobody", "s3cret"}, {"", ""}} {
		if c, err := connect(url, "dev-x", withTLS(tc.user, tc.pass)); err == nil {
			c.Disconnect(0)
			t.Errorf("user %q password %q: connected", tc.user, tc.pass)
		}
	}
	// Plain TCP to a TLS listener fails.
	if c, err := connect(strings.Replace(url, "ssl://", "tcp://", 1), "dev-1", func(o *mqtt.ClientOptions) {
		o.SetUsername("dev-1").SetPassword("s3cret").SetConnectTimeout(time.Second)
	}); err == nil {
		c.Disconnect(0)
		t.Error("plain TCP client connected to the TLS listener")
	}
}

// TestEmbeddedStrictIdentity: with client certificates and
// StrictDeviceIdentity a device may publish telemetry only under its own
// id (its certificate's CN); telemetry under another id is dead-lettered,
// acknowledged and not forwarded; subscribing to other devices' topics is
// refused; an admin user may do anything.
func TestEmbeddedStrictIdentity(t *testing.T) {
	pki := testenv.NewPKI(t)
	serverCert, serverKey := pki.Server(t, "server")
	store := &memStore{}
	_, url := newEmbedded(t, store, func(c *intake.EmbeddedConfig) {
		c.TLS = tlsfiles.Server{CertFile: serverCert, KeyFile: serverKey, ClientCAFile: pki.CAFile}
		c.StrictDeviceIdentity = ptr(true)
	})
	withCert := func(cn string) func(*mqtt.ClientOptions) {
		tc := pki.ClientTLS(t, cn)
		return func(o *mqtt.ClientOptions) { o.SetTLSConfig(tc) }
	}
	// No client certificate: refused at the TLS handshake.
	if c, err := connect(url, "anon", withCert(""), func(o *mqtt.ClientOptions) { o.SetConnectTimeout(2 * time.Second) }); err == nil {
		c.Disconnect(0)
		t.Error("client without a certificate connected")
	}

	// A device subscribing to every device's telemetry: refused.
	dev1 := publisher(t, url, "whatever-id", withCert("dev-1"))
	sub := dev1.Subscribe(protocol.TelemetryFilter, 1, nil)
	if !sub.WaitTimeout(5 * time.Second) {
		t.Fatal("no SUBACK")
	}
	if q := sub.(*mqtt.SubscribeToken).Result()[protocol.TelemetryFilter]; q != 0x80 {
		t.Errorf("dev-1 subscribing to every device's telemetry: granted 0x%02x, want refused (0x80)", q)
	}
	own := dev1.Subscribe(protocol.CommandFilter("dev-1"), 1, func(mqtt.Client, mqtt.Message) {})
	if !own.WaitTimeout(5*time.Second) || own.(*mqtt.SubscribeToken).Result()[protocol.CommandFilter("dev-1")] != 1 {
		t.Errorf("dev-1 subscribing to its own commands: %v", own.(*mqtt.SubscribeToken).Result())
	}

	publish(t, dev1, protocol.TelemetryTopic("dev-1"), pack("x", 1, true))
	publish(t, dev1, protocol.TelemetryTopic("dev-2"), pack("x", 2, true)) // acknowledged, not stored
	_, _, rs, dead := store.snapshot()
	if len(rs) != 1 || rs[0].Device != "dev-1" {
		t.Errorf("store = %v, want dev-1's reading only", rs)
	}
	if len(dead) != 1 || !strings.HasPrefix(dead[0].reason, intake.ReasonIdentity+": ") || !strings.Contains(dead[0].reason, `"dev-2"`) {
		t.Errorf("dead letters = %+v, want one %q naming dev-2", dead, intake.ReasonIdentity)
	}
}

// TestEmbeddedStrictIdentityPasswords: the identity is the username; admin
// users are exempt.
func TestEmbeddedStrictIdentityPasswords(t *testing.T) {
	store := &memStore{}
	_, url := newEmbedded(t, store, func(c *intake.EmbeddedConfig) {
		c.Passwords = passwords(t, "dev-1:a", "console:b:admin")
		c.StrictDeviceIdentity = ptr(true)
	})
	user := func(u, p string) func(*mqtt.ClientOptions) {
		return func(o *mqtt.ClientOptions) { o.SetUsername(u).SetPassword(p) }
	}
	console := publisher(t, url, "console", user("console", "b"))
	got := make(chan mqtt.Message, 10)
	if tok := console.Subscribe(protocol.TelemetryFilter, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) ||
		tok.(*mqtt.SubscribeToken).Result()[protocol.TelemetryFilter] != 1 {
		t.Fatalf("admin subscribing to all telemetry: %v", tok.(*mqtt.SubscribeToken).Result())
	}
	dev1 := publisher(t, url, "dev-1", user("dev-1", "a"))
	publish(t, dev1, protocol.TelemetryTopic("dev-9"), pack("x", 9, true))
	publish(t, dev1, protocol.TelemetryTopic("dev-1"), pack("x", 1, true))
	select {
	case m := <-got:
		if m.Topic() != protocol.TelemetryTopic("dev-1") {
			t.Errorf("subscriber got %s first: a rejected message was forwarded", m.Topic())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber got nothing")
	}
	// Another device's status topic: refused by ACL, the client is
	// disconnected (MQTT 3.1.1 has no negative PUBACK).
	tok := dev1.Publish(protocol.StatusTopic("dev-9"), 1, false, []byte(`{"state":"online"}`))
	tok.WaitTimeout(2 * time.Second)
	waitFor(t, 5*time.Second, "dev-1 to be disconnected", func() bool { return !dev1.IsConnectionOpen() })
	publish(t, console, protocol.TelemetryTopic("dev-9"), pack("x", 10, false))
	_, _, rs, dead := store.snapshot()
	if distinct, _ := values(rs); fmt.Sprint(distinct) != "[1 10]" || len(dead) != 1 {
		t.Errorf("store values %v, %d dead letters; want [1 10] and 1", distinct, len(dead))
	}
}

// TestEmbeddedBadInput: bad telemetry is dead-lettered and acknowledged;
// retained telemetry is not retained; other topics pass through.
func TestEmbeddedBadInput(t *testing.T) {
	store := &memStore{}
	e, url := newEmbedded(t, store)
	pub := publisher(t, url, "dev-1")
	publish(t, pub, protocol.TelemetryTopic("dev-1"), make([]byte, protocol.MaxPackBytes+10))
	publish(t, pub, protocol.TopicPrefix+"dev-1/extra/telemetry", pack("x", 1, true))
	publish(t, pub, protocol.TopicPrefix+"bad$id/telemetry", pack("x", 1, true))
	publish(t, pub, protocol.TelemetryTopic("dev-1"), []byte(`[{"n":"t","v":"NaN"}]`))
	if tok := pub.Publish(protocol.TelemetryTopic("dev-1"), 1, true, pack("x", 3, true)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal("retained publish failed")
	}
	publish(t, pub, "site/lights", []byte("on")) // not ours: brokered as usual
	_, _, rs, dead := store.snapshot()
	if len(rs) != 1 || rs[0].Value != 3 {
		t.Errorf("store = %v", rs)
	}
	if want, reasons := "[too_large bad_topic bad_device_id wrong_type]", reasonCodes(dead); fmt.Sprint(reasons) != want {
		t.Errorf("dead letter reasons %v, want %s", reasons, want)
	}
	if st := e.Stats(); st.Acked != 5 || st.Rejected != 4 {
		t.Errorf("Stats = %+v", st)
	}
	// A later subscriber gets no retained telemetry: a broker sends
	// retained messages when the subscription is made, before anything
	// published after it, so the first message it gets is the marker.
	sub := publisher(t, url, "sub")
	got := make(chan []byte, 8)
	if tok := sub.Subscribe(protocol.TelemetryFilter, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribing: %v", tok.Error())
	}
	marker := pack("x", 4, true)
	publish(t, pub, protocol.TelemetryTopic("dev-1"), marker)
	select {
	case p := <-got:
		if !bytes.Equal(p, marker) {
			t.Errorf("retained telemetry delivered to a new subscriber: %x", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscriber got nothing")
	}
}

// TestEmbeddedStatus: birth messages and last wills fill the device
// table.
func TestEmbeddedStatus(t *testing.T) {
	store := &memStore{}
	e, url := newEmbedded(t, store)
	pub := publisher(t, url, "dev-1")
	publish(t, pub, protocol.StatusTopic("dev-1"), []byte(`{"state":"online","firmware":"1.0"}`))

	// dev-2 connects with a last will and its connection breaks.
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.ClientIdentifier = "MQTT", 4, "dev-2"
	cp.CleanSession, cp.Keepalive = true, 30
	cp.WillFlag, cp.WillQos, cp.WillRetain = true, 1, true
	cp.WillTopic, cp.WillMessage = protocol.StatusTopic("dev-2"), []byte(`{"state":"offline","reason":"lost"}`)
	if err := cp.Write(conn); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if ack, err := packets.ReadPacket(conn); err != nil || ack.(*packets.ConnackPacket).ReturnCode != 0 {
		t.Fatalf("CONNACK: %v %v", ack, err)
	}
	conn.Close()
	waitFor(t, 5*time.Second, "two devices", func() bool { return len(e.Devices()) == 2 })
	devs := e.Devices()
	if devs[0].ID != "dev-1" || devs[0].State != "online" || devs[1].ID != "dev-2" || devs[1].State != "offline" {
		t.Errorf("Devices() = %+v", devs)
	}
}

func TestEmbeddedConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  intake.EmbeddedConfig
		want string
	}{
		{intake.EmbeddedConfig{Listen: "nonsense"}, "listen"},
		{intake.EmbeddedConfig{Listen: "127.0.0.1:0", TLS: tlsfiles.Server{CertFile: "c"}}, "go together"},
		{intake.EmbeddedConfig{Listen: "127.0.0.1:0", TLS: tlsfiles.Server{ClientCAFile: "ca"}}, "client certificates need TLS"},
		{intake.EmbeddedConfig{Listen: "127.0.0.1:0", MaxPacketBytes: 1000}, "max_packet_bytes"},
		{intake.EmbeddedConfig{Listen: "127.0.0.1:0", TLS: tlsfiles.Server{CertFile: "/nonexistent", KeyFile: "/nonexistent"}}, "cert_file"},
	} {
		e, err := intake.NewEmbedded(tc.cfg, &memStore{}, intake.Options{})
		if err == nil {
			e.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewEmbedded(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	// A busy port is reported by NewEmbedded.
	e, err := intake.NewEmbedded(intake.EmbeddedConfig{Listen: "127.0.0.1:0"}, &memStore{}, intake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e2, err := intake.NewEmbedded(intake.EmbeddedConfig{Listen: e.Addr()}, &memStore{}, intake.Options{}); err == nil {
		e2.Close()
		t.Error("second broker on the same port: no error")
	}
}

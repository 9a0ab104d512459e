package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const dev = "dev-1"

// startBroker runs an embedded mochi-mqtt broker on a free loopback port
// and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "tcp", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return l.Address()
}

// allowAll lets every client connect, publish and subscribe. (mochi's own
// auth.AllowHook would pull in gopkg.in/yaml.v3 through its ledger.)
type allowAll struct{ mochi.HookBase }

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *allowAll) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

// msg is one message a subscriber received.
type msg struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// subscriber is a paho client that records every message on a filter.
type subscriber struct {
	c       mqtt.Client
	mu      sync.Mutex
	msgs    []msg
	changed chan struct{}
}

func subscribe(t *testing.T, addr, filter string) *subscriber {
	t.Helper()
	s := &subscriber{changed: make(chan struct{}, 1)}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("sub-%d", time.Now().UnixNano())).
		SetAutoReconnect(false).SetCleanSession(true)
	s.c = mqtt.NewClient(o)
	if tok := s.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	tok := s.c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, msg{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
		s.mu.Unlock()
		select {
		case s.changed <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return s
}

func (s *subscriber) publish(t *testing.T, topic, payload string) {
	t.Helper()
	if tok := s.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// snapshot returns the messages received so far on topic ("" = all).
func (s *subscriber) snapshot(topic string) []msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []msg
	for _, m := range s.msgs {
		if topic == "" || m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until ok holds for the messages on topic, or fails.
func (s *subscriber) waitFor(t *testing.T, topic string, what string, ok func([]msg) bool) []msg {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		ms := s.snapshot(topic)
		if ok(ms) {
			return ms
		}
		select {
		case <-s.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s on %s; got %d messages", what, topic, len(ms))
		}
	}
}

// readings decodes every telemetry message received so far.
func (s *subscriber) readings(t *testing.T) []protocol.Reading {
	t.Helper()
	var rs []protocol.Reading
	for _, m := range s.snapshot(protocol.TelemetryTopic(dev)) {
		if f, err := protocol.DetectFormat(m.Payload); err != nil || f != protocol.FormatCBOR {
			t.Fatalf("telemetry payload is not SenML-CBOR: %v %v", f, err)
		}
		got, err := protocol.DecodeSenML(m.Payload, protocol.DecodeOptions{Device: dev})
		if err != nil {
			t.Fatalf("decode telemetry: %v", err)
		}
		rs = append(rs, got...)
	}
	return rs
}

func statusOf(t *testing.T, m msg) node.Status {
	t.Helper()
	var st node.Status
	if err := json.Unmarshal(m.Payload, &st); err != nil {
		t.Fatalf("status %s: %v", m.Payload, err)
	}
	return st
}

// netSwitch is the nodes' network: Dial goes through it; cut closes every
// connection it made (abruptly, as a network failure would) and, while
// down, refuses new ones.
type netSwitch struct {
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

var errNetDown = errors.New("test network is down")

func (s *netSwitch) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, errNetDown
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		s.conns = append(s.conns, c)
	}
	return c, err
}

func (s *netSwitch) cut(stayDown bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = stayDown
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *netSwitch) restore() {
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
}

// seqSensor counts: each Sense returns the next integer as "seq". With a
// gate, each Sense waits for one value from it.
type seqSensor struct {
	name string
	gate chan struct{}
	mu   sync.Mutex
	n    int
}

func (s *seqSensor) Sense(ctx context.Context) ([]sensor.Measurement, error) {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	name := s.name
	if name == "" {
		name = "seq"
	}
	return []sensor.Measurement{{Name: name, Unit: "count", Value: float64(s.n)}}, nil
}

func (s *seqSensor) String() string { return "seq sensor" }
func (s *seqSensor) Close() error   { return nil }

// envSensor returns fixed temperature and humidity and a growing meter
// total (a counter with Sum).
type envSensor struct {
	mu    sync.Mutex
	total float64
}

func (s *envSensor) Sense(context.Context) ([]sensor.Measurement, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total += 0.5
	total := s.total
	return []sensor.Measurement{
		{Name: "room.temperature", Unit: "Cel", Value: 21.5},
		{Name: "room.humidity", Unit: "%RH", Value: 40},
		{Name: "water", Unit: "l", Value: total, Sum: &total},
	}, nil
}

func (s *envSensor) String() string { return "env sensor" }
func (s *envSensor) Close() error   { return nil }

// failSensor always fails, or returns a NaN when nan is set.
type failSensor struct{ nan bool }

func (s *failSensor) Sense(context.Context) ([]sensor.Measurement, error) {
	if s.nan {
		return []sensor.Measurement{{Name: "broken", Unit: "V", Value: nanValue()}}, nil
	}
	return nil, errors.New("i2c: no ack from 0x76")
}

func nanValue() float64 { var z float64; return z / z }

func (s *failSensor) String() string { return "fail sensor" }
func (s *failSensor) Close() error   { return nil }

// testConfig is a fast config against addr.
func testConfig(addr string) node.Config {
	return node.Config{
		Device:              dev,
		Broker:              "tcp://" + addr,
		Interval:            20 * time.Millisecond,
		ConnectTimeout:      2 * time.Second,
		ReconnectBackoff:    20 * time.Millisecond,
		MaxReconnectBackoff: 100 * time.Millisecond,
		DrainTimeout:        2 * time.Second,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start builds a node and runs it until the test ends (or stop is called);
// stop returns Run's error.
func start(t *testing.T, cfg node.Config, opts node.Options) (n *node.Node, stop func() error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	n, err := node.New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(15 * time.Second):
				runErr = errors.New("Run did not return within 15s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n, stop
}

// waitStats polls the node's stats until ok holds.
func waitStats(t *testing.T, n *node.Node, what string, ok func(node.Stats) bool) node.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := n.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/protocol"
)

// TestTelemetry: readings arrive on the telemetry topic as SenML-CBOR with
// the sensors' names, units, sums and the node clock's times.
func TestTelemetry(t *testing.T) {
	addr := startBroker(t)
	sub := subscribe(t, addr, protocol.TelemetryTopic(dev))
	skew := -90 * time.Minute // the node's clock is off; times must follow it
	clock := func() time.Time { return time.Now().Add(skew) }
	before := clock().UnixMicro()
	n, stop := start(t, testConfig(addr), node.Options{Sensors: []sensor.Sensor{&envSensor{}}, Clock: clock})

	sub.waitFor(t, protocol.TelemetryTopic(dev), "5 packs", func(ms []msg) bool { return len(ms) >= 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	after := clock().UnixMicro()
	rs := sub.readings(t)
	if len(rs)%3 != 0 {
		t.Fatalf("got %d readings, want whole samples of 3", len(rs))
	}
	var lastTime int64
	for i := 0; i < len(rs); i += 3 {
		sample := rs[i : i+3]
		want := []struct {
			name, unit string
			value      float64
			sum        bool
		}{
			{"room.temperature", "Cel", 21.5, false},
			{"room.humidity", "%RH", 40, false},
			{"water", "l", 0.5 * float64(i/3+1), true},
		}
		for j, w := range want {
			r := sample[j]
			if r.Device != dev || r.Name != w.name || r.Unit != w.unit || r.Kind != protocol.KindFloat || r.Value != w.value {
				t.Errorf("sample %d reading %d = %v, want %s=%v%s", i/3, j, r.String(), w.name, w.value, w.unit)
			}
			if r.HasSum != w.sum || w.sum && r.Sum != w.value {
				t.Errorf("sample %d %s: HasSum %v Sum %v, want %v %v", i/3, r.Name, r.HasSum, r.Sum, w.sum, w.value)
			}
			if r.Flags&protocol.FlagReceiverTime != 0 {
				t.Errorf("reading %s has no absolute time", r.String())
			}
			if r.Time != sample[0].Time {
				t.Errorf("the readings of one sample have different times: %d, %d", r.Time, sample[0].Time)
			}
		}
		if tm := sample[0].Time; tm < before || tm > after || tm <= lastTime {
			t.Errorf("sample %d time %d: want increasing, within the node clock's [%d, %d]", i/3, tm, before, after)
		} else {
			lastTime = tm
		}
	}
	st := n.Stats()
	if st.ReadingsPublished != uint64(len(rs)) || st.PacksPublished != uint64(len(rs)/3) || st.Samples != st.PacksPublished {
		t.Errorf("stats %+v, subscriber got %d readings in %d packs", st, len(rs), len(rs)/3)
	}
	if st.Unsent != 0 || st.Dropped != 0 || st.SenseErrors != 0 {
		t.Errorf("stats %+v: want nothing unsent, dropped or failed", st)
	}
}

// TestBatching: BatchSamples coalesces samples into one pack.
func TestBatching(t *testing.T) {
	addr := startBroker(t)
	sub := subscribe(t, addr, protocol.TelemetryTopic(dev))
	cfg := testConfig(addr)
	cfg.BatchSamples = 4
	cfg.BatchDelay = time.Hour
	start(t, cfg, node.Options{Sensors: []sensor.Sensor{&seqSensor{}}})
	ms := sub.waitFor(t, protocol.TelemetryTopic(dev), "3 packs", func(ms []msg) bool { return len(ms) >= 3 })
	for i, m := range ms[:3] {
		rs, err := protocol.DecodeSenML(m.Payload, protocol.DecodeOptions{Device: dev})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 4 || rs[0].Value != float64(4*i+1) || rs[3].Value != float64(4*i+4) {
			t.Errorf("pack %d holds %v, want seq %d..%d", i, rs, 4*i+1, 4*i+4)
		}
	}
}

// TestBirthWillShutdown: a retained birth on connect; the retained last
// will when the connection is cut; birth again on reconnect; the shutdown
// status and no will on a clean stop, after the buffer was flushed.
func TestBirthWillShutdown(t *testing.T) {
	addr := startBroker(t)
	net := &netSwitch{}
	cfg := testConfig(addr)
	cfg.Sensors = []sensor.Spec{{Kind: sensor.KindBME280, Name: "room"}, {Kind: sensor.KindPulse, Name: "flow", Bus: "GPIO17", Interval: time.Second}}
	n, stop := start(t, cfg, node.Options{Sensors: []sensor.Sensor{&seqSensor{name: "room.temperature"}, &seqSensor{name: "flow"}},
		Dial: net.Dial, Firmware: "v9.9.9"})
	waitStats(t, n, "connected", func(s node.Stats) bool { return s.Connected })

	// A subscriber arriving later gets the retained birth.
	status := protocol.StatusTopic(dev)
	sub := subscribe(t, addr, status)
	ms := sub.waitFor(t, status, "retained birth", func(ms []msg) bool { return len(ms) >= 1 })
	if !ms[0].Retained {
		t.Error("birth is not retained")
	}
	birth := statusOf(t, ms[0])
	want := node.Status{State: "online", Firmware: "v9.9.9", IntervalMS: 20, Sensors: []node.SensorStatus{
		{ID: "room", Kind: "bme280", Desc: "seq sensor", IntervalMS: 20,
			Metrics: []string{"room.temperature", "room.humidity", "room.pressure"}},
		{ID: "flow", Kind: "pulse", Desc: "seq sensor", IntervalMS: 1000, Metrics: []string{"flow", "flow.rate"}},
	}}
	if _, err := time.Parse(time.RFC3339, birth.Time); err != nil {
		t.Errorf("birth time %q: %v", birth.Time, err)
	}
	birth.Time = ""
	if got, _ := json.Marshal(birth); string(got) != string(mustMarshal(want)) {
		t.Errorf("birth\n got %s\nwant %s", got, mustMarshal(want))
	}

	// Cut the connection abruptly and keep the network down: the broker
	// publishes the will, and it is retained.
	net.cut(true)
	ms = sub.waitFor(t, status, "last will", func(ms []msg) bool { return len(ms) >= 2 })
	if st := statusOf(t, ms[1]); st.State != "offline" || st.Reason != "lost" {
		t.Errorf("will = %+v, want offline/lost", st)
	}
	late := subscribe(t, addr, status)
	ms = late.waitFor(t, status, "retained will", func(ms []msg) bool { return len(ms) >= 1 })
	if st := statusOf(t, ms[0]); !ms[0].Retained || st.State != "offline" || st.Reason != "lost" {
		t.Errorf("retained status after the cut = %+v (retained %v), want the will", st, ms[0].Retained)
	}

	// Back up: a new birth, and a reconnect counted.
	net.restore()
	sub.waitFor(t, status, "birth after reconnect", func(ms []msg) bool {
		return len(ms) >= 3 && statusOf(t, ms[len(ms)-1]).State == "online"
	})
	st := waitStats(t, n, "reconnect", func(s node.Stats) bool { return s.Reconnects == 1 && s.Connected })

	// Clean stop: the buffer is flushed, then "shutdown", never the will.
	tele := subscribe(t, addr, protocol.TelemetryTopic(dev))
	waitStats(t, n, "more samples", func(s node.Stats) bool { return s.Samples > st.Samples+3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ms = sub.waitFor(t, status, "shutdown status", func(ms []msg) bool { return len(ms) >= 4 })
	if st := statusOf(t, ms[3]); st.State != "offline" || st.Reason != "shutdown" || st.Time == "" {
		t.Errorf("status on stop = %+v, want offline/shutdown with a time", st)
	}
	time.Sleep(100 * time.Millisecond) // a will would come right after the disconnect
	if ms := sub.snapshot(status); len(ms) != 4 {
		t.Errorf("got %d status messages after the stop, want 4 (no will)", len(ms))
	}
	final := n.Stats()
	if final.Unsent != 0 || final.Buffered != 0 || final.Connected {
		t.Errorf("stats after stop %+v: want everything flushed", final)
	}
	// Everything published after tele subscribed arrived, through the last one.
	rs := tele.readings(t)
	if len(rs) == 0 {
		t.Fatal("no telemetry after reconnect")
	}
	last := rs[len(rs)-1]
	if final.ReadingsPublished == 0 || last.Time == 0 {
		t.Errorf("last reading %v, stats %+v", last.String(), final)
	}
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestOutage: readings sampled while the broker is unreachable are
// buffered and delivered in order after the reconnect; with a tiny buffer
// the oldest are dropped, exactly counted, and the newest survive.
func TestOutage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		buffer    int
		survivors []int // of the 10 outage samples 6..15
	}{
		{"roomy", 100, []int{6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		{"tiny", 3, []int{13, 14, 15}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startBroker(t)
			sub := subscribe(t, addr, protocol.TelemetryTopic(dev))
			net := &netSwitch{}
			gate := make(chan struct{})
			cfg := testConfig(addr)
			cfg.Interval = node.MinInterval
			cfg.BufferReadings = tc.buffer
			n, _ := start(t, cfg, node.Options{Sensors: []sensor.Sensor{&seqSensor{gate: gate}}, Dial: net.Dial})
			waitStats(t, n, "connected", func(s node.Stats) bool { return s.Connected })
			sample := func(k int) {
				gate <- struct{}{}
				waitStats(t, n, "sample", func(s node.Stats) bool { return s.Samples == uint64(k) })
			}

			for k := 1; k <= 5; k++ {
				sample(k)
			}
			waitStats(t, n, "5 published", func(s node.Stats) bool { return s.PacksPublished == 5 })

			net.cut(true)
			waitStats(t, n, "disconnected", func(s node.Stats) bool { return !s.Connected })
			for k := 6; k <= 15; k++ {
				sample(k)
			}
			st := waitStats(t, n, "buffered", func(s node.Stats) bool { return s.Buffered == len(tc.survivors) })
			if want := uint64(10 - len(tc.survivors)); st.Dropped != want {
				t.Errorf("dropped %d, want %d", st.Dropped, want)
			}

			net.restore()
			waitStats(t, n, "reconnected", func(s node.Stats) bool { return s.Connected && s.Buffered == 0 && s.Inflight == 0 })
			sample(16)
			want := append([]int{1, 2, 3, 4, 5}, tc.survivors...)
			want = append(want, 16)
			sub.waitFor(t, protocol.TelemetryTopic(dev), "sample 16", func(ms []msg) bool { return len(ms) >= len(want) })

			var got []int
			for _, r := range sub.readings(t) {
				got = append(got, int(r.Value))
			}
			if !slices.Equal(got, want) {
				t.Errorf("delivered %v\nwant      %v", got, want)
			}
			// The subscriber can see sample 16 before the node has its PUBACK,
			// and only an acknowledged reading counts as published.
			st = waitStats(t, n, "sample 16 acknowledged", func(s node.Stats) bool { return s.Inflight == 0 && s.ReadingsPublished >= uint64(len(want)) })
			if st.Dropped != uint64(10-len(tc.survivors)) || st.ReadingsPublished != uint64(len(want)) || st.Reconnects != 1 {
				t.Errorf("stats %+v: want %d dropped, %d published, 1 reconnect", st, 10-len(tc.survivors), len(want))
			}
		})
	}
}

// TestCommandInterval: cmd/interval changes the sampling rate, of all
// sensors or one, and refuses bad requests with a reply that says why.
func TestCommandInterval(t *testing.T) {
	addr := startBroker(t)
	replies := subscribe(t, addr, node.ReplyTopic(dev, "+"))
	cfg := testConfig(addr)
	cfg.Interval = time.Hour // no sample before the command (unless the hour turns now)
	cfg.Sensors = []sensor.Spec{{Kind: sensor.KindPulse, Name: "a", Bus: "GPIO5"}, {Kind: sensor.KindPulse, Name: "b", Bus: "GPIO6"}}
	a, b := &seqSensor{name: "a"}, &seqSensor{name: "b"}
	n, _ := start(t, cfg, node.Options{Sensors: []sensor.Sensor{a, b}})
	waitStats(t, n, "connected", func(s node.Stats) bool { return s.Connected })
	before := n.Stats().Samples

	reply := func(cmd, payload string) node.Reply {
		t.Helper()
		k := len(replies.snapshot(""))
		// Connected comes before the node's command subscription is
		// acknowledged: a command published in between is not delivered
		// (MQTT does not keep it), so resend until the first reply. The
		// commands here are idempotent.
		var ms []msg
		for try := 0; len(ms) <= k; try++ {
			if try == 20 {
				t.Fatalf("no reply to %s %q within 10s", cmd, payload)
			}
			replies.publish(t, protocol.CommandTopic(dev, cmd), payload)
			deadline := time.Now().Add(500 * time.Millisecond)
			for ms = replies.snapshot(""); len(ms) <= k && time.Now().Before(deadline); ms = replies.snapshot("") {
				time.Sleep(5 * time.Millisecond)
			}
		}
		// Let the replies to resent copies (if any) arrive before the next
		// command counts from here.
		for n := len(ms); ; n = len(ms) {
			time.Sleep(200 * time.Millisecond)
			if ms = replies.snapshot(""); len(ms) == n {
				break
			}
		}
		if want := node.ReplyTopic(dev, cmd); ms[k].Topic != want {
			t.Errorf("reply on %s, want %s", ms[k].Topic, want)
		}
		var r node.Reply
		if err := json.Unmarshal(ms[k].Payload, &r); err != nil {
			t.Fatalf("reply %s: %v", ms[k].Payload, err)
		}
		return r
	}

	r := reply("interval", "20ms")
	if !r.OK || r.Interval != "20ms" || !slices.Equal(r.Sensors, []string{"a", "b"}) {
		t.Errorf("reply %+v, want ok for a and b at 20ms", r)
	}
	waitStats(t, n, "sampling at 20ms", func(s node.Stats) bool { return s.Samples >= before+10 })

	r = reply("interval", `{"interval":"1h","sensor":"b","id":"req-7"}`)
	if !r.OK || r.ID != "req-7" || !slices.Equal(r.Sensors, []string{"b"}) {
		t.Errorf("reply %+v, want ok for b only, id req-7", r)
	}
	time.Sleep(50 * time.Millisecond) // a sample of b in progress may finish
	bBefore := b.count()
	aBefore := a.count()
	waitStats(t, n, "a keeps sampling", func(node.Stats) bool { return a.count() >= aBefore+5 })
	if got := b.count(); got != bBefore {
		t.Errorf("b sampled %d more times at 1h", got-bBefore)
	}

	for _, tc := range []struct{ payload, want string }{
		{"1ms", "outside 10ms..24h0m0s"},
		{"soon", `"soon" is not a duration`},
		{"", "payload is empty"},
		{`{"interval":"5s","sensor":"nope"}`, `no sensor "nope": this node has a, b`},
		{`{"interval":"5s","every":"day"}`, `unknown field "every"`},
	} {
		r := reply("interval", tc.payload)
		if r.OK || !strings.Contains(r.Error, tc.want) || r.Command != "interval" {
			t.Errorf("interval %q: reply %+v, want an error containing %q", tc.payload, r, tc.want)
		}
	}
	if r := reply("reboot", ""); r.OK || !strings.Contains(r.Error, `unknown command "reboot"`) {
		t.Errorf("reboot: reply %+v, want unknown command", r)
	}

	// The retained status shows the new intervals.
	status := subscribe(t, addr, protocol.StatusTopic(dev))
	ms := status.waitFor(t, protocol.StatusTopic(dev), "status", func(ms []msg) bool { return len(ms) >= 1 })
	st := statusOf(t, ms[0])
	if len(st.Sensors) != 2 || st.Sensors[0].IntervalMS != 20 || st.Sensors[1].IntervalMS != 3_600_000 {
		t.Errorf("status after the commands: %+v", st)
	}
}

func (s *seqSensor) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// TestCommandPing: cmd/ping replies with the request id and the stats.
func TestCommandPing(t *testing.T) {
	addr := startBroker(t)
	replies := subscribe(t, addr, node.ReplyTopic(dev, "ping"))
	n, _ := start(t, testConfig(addr), node.Options{Sensors: []sensor.Sensor{&seqSensor{}}})
	waitStats(t, n, "published", func(s node.Stats) bool { return s.Connected && s.PacksPublished > 0 })
	replies.publish(t, protocol.CommandTopic(dev, "ping"), `{"id":"p1"}`)
	ms := replies.waitFor(t, node.ReplyTopic(dev, "ping"), "pong", func(ms []msg) bool { return len(ms) >= 1 })
	var r node.Reply
	if err := json.Unmarshal(ms[0].Payload, &r); err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Command != "ping" || r.ID != "p1" || r.Time == "" || r.Uptime == "" || r.Stats == nil ||
		r.Stats.PacksPublished == 0 || !r.Stats.Connected {
		t.Errorf("ping reply %s", ms[0].Payload)
	}
}

// TestSenseErrors: a failing sensor and a NaN are counted, produce no
// reading and do not stop the node or the other sensors.
func TestSenseErrors(t *testing.T) {
	addr := startBroker(t)
	sub := subscribe(t, addr, protocol.TelemetryTopic(dev))
	n, stop := start(t, testConfig(addr), node.Options{Sensors: []sensor.Sensor{&failSensor{}, &failSensor{nan: true}, &seqSensor{}}})
	waitStats(t, n, "errors and readings", func(s node.Stats) bool {
		return s.SenseErrors >= 5 && s.Rejected >= 5 && s.ReadingsPublished >= 5
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, r := range sub.readings(t) {
		if r.Name != "seq" {
			t.Errorf("unexpected reading %v", r.String())
		}
	}
}

// TestRunClose: Close is idempotent and stops Run; Run runs once; a node
// that never reached its broker stops promptly and counts what it held.
func TestRunClose(t *testing.T) {
	net := &netSwitch{down: true}
	cfg := testConfig("127.0.0.1:1")
	n, err := node.New(cfg, node.Options{Sensors: []sensor.Sensor{&seqSensor{}}, Dial: net.Dial, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- n.Run(context.Background()) }()
	waitStats(t, n, "buffering", func(s node.Stats) bool { return s.Buffered >= 3 })
	if err := n.Run(context.Background()); !errors.Is(err, node.ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Run after Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, node.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	st := n.Stats()
	if st.Unsent != st.Samples || st.Buffered != 0 || st.ReadingsPublished != 0 {
		t.Errorf("stats %+v: want every sample unsent", st)
	}
}

// TestNewErrors: New refuses what it cannot run.
func TestNewErrors(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	if _, err := node.New(cfg, node.Options{}); !errors.Is(err, node.ErrNoSensors) {
		t.Errorf("no sensors: %v", err)
	}
	cfg.Sensors = []sensor.Spec{{Kind: "bme280", Name: "a"}, {Kind: "sht3x", Name: "b"}}
	if _, err := node.New(cfg, node.Options{Sensors: []sensor.Sensor{&seqSensor{}}}); err == nil ||
		!strings.Contains(err.Error(), "1 sensors passed in Options.Sensors but 2 configured") {
		t.Errorf("mismatched sensors: %v", err)
	}
	cfg.Sensors = nil
	cfg.Device = "bad device"
	if _, err := node.New(cfg, node.Options{Sensors: []sensor.Sensor{&seqSensor{}}}); err == nil ||
		!strings.Contains(err.Error(), "invalid device id") {
		t.Errorf("bad device: %v", err)
	}
}

// TestQoS0: at QoS 0 packs are published (and counted) when written.
func TestQoS0(t *testing.T) {
	addr := startBroker(t)
	sub := subscribe(t, addr, protocol.TelemetryTopic(dev))
	cfg := testConfig(addr)
	qos := 0
	cfg.QoS = &qos
	n, stop := start(t, cfg, node.Options{Sensors: []sensor.Sensor{&seqSensor{}}})
	sub.waitFor(t, protocol.TelemetryTopic(dev), "3 packs", func(ms []msg) bool { return len(ms) >= 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	published := int(n.Stats().PacksPublished)
	sub.waitFor(t, protocol.TelemetryTopic(dev), "every published pack", func(ms []msg) bool { return len(ms) == published })
}

package intake_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/edge/intake"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

func newExternal(t *testing.T, url, clientID string, store intake.Store, tune ...func(*intake.ExternalConfig)) *intake.External {
	t.Helper()
	cfg := intake.ExternalConfig{Broker: url, Gateway: "gw-1", ClientID: clientID,
		ReconnectBackoff: 50 * time.Millisecond, MaxReconnectBackoff: 200 * time.Millisecond}
	for _, f := range tune {
		f(&cfg)
	}
	e, err := intake.NewExternal(cfg, store, intake.Options{Clock: testClock{flags: protocol.FlagClockUnsynced}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runExternal starts e and waits until it is subscribed.
func runExternal(t *testing.T, e *intake.External) (stop func()) {
	t.Helper()
	stop = start(t, e)
	waitFor(t, 10*time.Second, "the intake to subscribe", func() bool { return e.Stats().Connected })
	return stop
}

// TestExternalDelivers: QoS 1 messages in both encodings reach the store
// exactly once, stamped by the clock; after a restart with the same client
// id nothing comes again (every message was acknowledged).
func TestExternalDelivers(t *testing.T) {
	b := testenv.StartMosquitto(t)
	store := &memStore{}
	reg := prometheus.NewRegistry()
	e, err := intake.NewExternal(intake.ExternalConfig{Broker: b.URL, Gateway: "gw-1"}, store,
		intake.Options{Clock: testClock{flags: protocol.FlagClockUnsynced}, Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	stop := runExternal(t, e)

	const n = 500
	pub := publisher(t, b.URL, "pub-1")
	before := time.Now().UnixMicro()
	var toks []mqtt.Token
	for i := range n {
		toks = append(toks, pub.Publish(protocol.TelemetryTopic(fmt.Sprintf("dev-%d", i%7)), 1, false, pack("x", i, i%2 == 0)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	waitFor(t, 10*time.Second, "all readings", func() bool { st := e.Stats(); return st.Acked == n && st.InFlight == 0 })
	_, _, rs, dead := store.snapshot()
	if len(dead) != 0 {
		t.Errorf("dead letters: %+v", dead)
	}
	distinct, dups := values(rs)
	if len(distinct) != n || dups != 0 || len(rs) != n {
		t.Fatalf("store got %d readings, %d distinct, %d duplicates; want %d exactly once", len(rs), len(distinct), dups, n)
	}
	for _, r := range rs {
		v := int(r.Value)
		if r.Device != fmt.Sprintf("dev-%d", v%7) || r.Name != "m" || r.Unit != "Cel" || r.Time != t0+int64(v)*1_000_000 {
			t.Fatalf("reading %v does not match what was published", &r)
		}
		if r.Received < before || r.Received > time.Now().UnixMicro() || r.Flags != protocol.FlagClockUnsynced {
			t.Fatalf("reading %v: received %d flags %b, want the clock's time and flags", &r, r.Received, r.Flags)
		}
	}
	st := e.Stats()
	if st.Messages != n || st.Readings != n || st.Rejected != 0 || st.AppendErrors != 0 || st.Connects != 1 || st.InFlight != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if got, _ := metric(t, reg, "tributary_intake_readings_total"); got != n {
		t.Errorf("tributary_intake_readings_total = %v, want %d", got, n)
	}
	stop()

	// Restart under the same client id: the broker has nothing left to
	// redeliver, and the persistent session still holds the subscription.
	store2 := restartWithMarker(t, b.URL, "tributary-agent-gw-1", pub, "dev-0", 100000)
	if _, _, rs, _ := store2.snapshot(); len(rs) != 1 || rs[0].Value != 100000 {
		t.Errorf("after a restart the store got %d readings, want only the marker: acknowledged messages came again", len(rs))
	}
}

// restartWithMarker runs a new External under clientID with a new store,
// publishes a marker reading (value v) from device through pub and waits
// until the marker is acknowledged with nothing in flight. The broker
// sends a session's queued messages (a redelivery) before later ones, in
// order, so by then any redelivered message is in the store too.
func restartWithMarker(t *testing.T, url, clientID string, pub mqtt.Client, device string, v int) *memStore {
	t.Helper()
	store := &memStore{}
	e := newExternal(t, url, clientID, store)
	runExternal(t, e)
	publish(t, pub, protocol.TelemetryTopic(device), pack("x", v, true))
	waitFor(t, 10*time.Second, "the marker", func() bool { st := e.Stats(); return st.Acked >= 1 && st.InFlight == 0 })
	return store
}

// metric sums the values of the series of a counter or gauge in reg,
// and counts the series.
func metric(t *testing.T, reg *prometheus.Registry, name string) (sum float64, series int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			series++
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if series == 0 {
		t.Fatalf("metric %s not registered", name)
	}
	return sum, series
}

// TestExternalNoAckBeforeDurable: while Append blocks nothing is
// acknowledged. The intake is stopped with the Appends still blocked; a
// new intake under the same client id gets every message again from the
// broker's persistent session.
func TestExternalNoAckBeforeDurable(t *testing.T) {
	b := testenv.StartMosquitto(t)
	store := &memStore{}
	store.block()
	e := newExternal(t, b.URL, "agent-a", store)
	stop := runExternal(t, e)

	const n = 40
	pub := publisher(t, b.URL, "pub-1")
	for i := range n {
		publish(t, pub, protocol.TelemetryTopic("dev-1"), pack("x", i, i%2 == 1))
	}
	waitFor(t, 10*time.Second, "every Append to block", func() bool {
		_, blocked, _, _ := store.snapshot()
		return blocked == n
	})
	if st := e.Stats(); st.Acked != 0 || st.InFlight != n {
		t.Fatalf("Stats with every Append blocked = %+v, want nothing acknowledged, %d in flight", st, n)
	}
	stop() // Appends end with ctx: not acknowledged
	if _, _, rs, _ := store.snapshot(); len(rs) != 0 {
		t.Fatalf("blocked store kept %d readings", len(rs))
	}
	if st := e.Stats(); st.AppendErrors != n || st.Acked != 0 {
		t.Errorf("Stats after stop = %+v, want %d append errors, none acknowledged", st, n)
	}

	store2 := &memStore{}
	e2 := newExternal(t, b.URL, "agent-a", store2)
	runExternal(t, e2)
	waitFor(t, 10*time.Second, "the redelivered messages", func() bool { return e2.Stats().Acked == n })
	_, _, rs, _ := store2.snapshot()
	if distinct, _ := values(rs); len(distinct) != n {
		t.Fatalf("after restart the store got %d distinct readings, want %d", len(distinct), n)
	}
	if st := e2.Stats(); st.Duplicates != n {
		t.Errorf("redelivered messages with DUP set: %d, want %d", st.Duplicates, n)
	}
}

// TestExternalDeadLetters: bad payloads are dead-lettered with their
// reason and acknowledged, so they are not redelivered after a restart.
func TestExternalDeadLetters(t *testing.T) {
	b := testenv.StartMosquitto(t)
	store := &memStore{}
	reg := prometheus.NewRegistry()
	e, err := intake.NewExternal(intake.ExternalConfig{Broker: b.URL, ClientID: "agent-dl", Status: true}, store,
		intake.Options{Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	stop := runExternal(t, e)
	pub := publisher(t, b.URL, "pub-1")
	bad := []struct {
		topic   string
		payload []byte
		reason  string
	}{
		{protocol.TelemetryTopic("dev-1"), bytes.Repeat([]byte("["), protocol.MaxPackBytes+1), intake.ReasonTooLarge},
		{protocol.TelemetryTopic("dev-1"), []byte("temperature=21.5"), intake.ReasonMalformed},
		{protocol.TelemetryTopic("dev-1"), []byte(`[{"n":"bad name!","v":1}]`), intake.ReasonBadName},
		{protocol.TelemetryTopic("dev-1"), []byte(`[]`), intake.ReasonEmpty},
		{protocol.TelemetryTopic("dev-1"), []byte(`[{"n":"a","v":1,"vs":"x"}]`), intake.ReasonMultipleValues},
		{protocol.TopicPrefix + "bad id/telemetry", pack("x", 1, true), intake.ReasonBadDeviceID},
		{protocol.TopicPrefix + "_x/telemetry", pack("x", 1, false), intake.ReasonBadDeviceID},
	}
	for _, m := range bad {
		publish(t, pub, m.topic, m.payload)
	}
	publish(t, pub, protocol.StatusTopic("dev-1"), []byte(`{"state":"online"}`))
	publish(t, pub, protocol.TelemetryTopic("dev-1"), pack("x", 7, true))
	waitFor(t, 10*time.Second, "every message handled", func() bool { return e.Stats().Acked == uint64(len(bad))+1 })
	_, _, rs, dead := store.snapshot()
	if len(rs) != 1 || rs[0].Value != 7 {
		t.Errorf("store readings = %v, want the one good reading", rs)
	}
	if len(dead) != len(bad) {
		t.Fatalf("%d dead letters, want %d: %+v", len(dead), len(bad), dead)
	}
	got := map[string]int{}
	for _, d := range dead {
		code, detail, _ := strings.Cut(d.reason, ": ")
		got[code]++
		if detail == "" {
			t.Errorf("dead letter reason %q has no detail", d.reason)
		}
		if len(d.payload) > protocol.MaxPackBytes {
			t.Errorf("dead letter payload %d bytes, want at most %d", len(d.payload), protocol.MaxPackBytes)
		}
	}
	want := map[string]int{}
	for _, m := range bad {
		want[m.reason]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dead letter reasons %v, want %v", got, want)
	}
	st := e.Stats()
	if fmt.Sprint(st.RejectedBy) != fmt.Sprint(want) || st.Rejected != uint64(len(bad)) {
		t.Errorf("Stats.RejectedBy = %v, want %v", st.RejectedBy, want)
	}
	if sum, series := metric(t, reg, "tributary_intake_rejected_total"); sum != float64(len(bad)) || series < len(want) {
		t.Errorf("tributary_intake_rejected_total: sum %v over %d series, want %d", sum, series, len(bad))
	}
	if devs := e.Devices(); len(devs) != 1 || devs[0].ID != "dev-1" || devs[0].State != "online" {
		t.Errorf("Devices() = %+v, want dev-1 online", devs)
	}
	stop()

	store2 := restartWithMarker(t, b.URL, "agent-dl", pub, "dev-1", 8)
	if _, _, rs, dead := store2.snapshot(); len(dead) != 0 || len(rs) != 1 {
		t.Errorf("after a restart: %d dead letters, %d readings; want none redelivered", len(dead), len(rs))
	}
}

// TestExternalShedsAndRecovers: with MaxInFlight 2 and MaxQueued 2 and the
// store blocked, later messages are left unacknowledged (shed); once the
// store moves again the intake reconnects and the broker redelivers them.
func TestExternalShedsAndRecovers(t *testing.T) {
	b := testenv.StartMosquitto(t)
	store := &memStore{}
	store.block()
	e := newExternal(t, b.URL, "agent-shed", store, func(c *intake.ExternalConfig) { c.MaxInFlight, c.MaxQueued = 2, 2 })
	runExternal(t, e)
	const n = 30
	pub := publisher(t, b.URL, "pub-1")
	for i := range n {
		publish(t, pub, protocol.TelemetryTopic("dev-1"), pack("x", i, true))
	}
	waitFor(t, 10*time.Second, "messages shed", func() bool { return e.Stats().Shed > 0 })
	if st := e.Stats(); st.InFlight > 2 || st.Waiting > 2 {
		t.Errorf("Stats = %+v, want at most 2 in flight and 2 waiting", st)
	}
	store.unblock()
	waitFor(t, 10*time.Second, "every reading after redelivery", func() bool {
		_, _, rs, _ := store.snapshot()
		distinct, _ := values(rs)
		return len(distinct) == n
	})
	waitFor(t, 10*time.Second, "a reconnect after shedding", func() bool { return e.Stats().Connects >= 2 })
}

// TestExternalStoreFailure: a message whose Append failed is not
// acknowledged; the intake reconnects and the broker redelivers it.
func TestExternalStoreFailure(t *testing.T) {
	b := testenv.StartMosquitto(t)
	store := &memStore{failNext: 1}
	e := newExternal(t, b.URL, "agent-fail", store)
	runExternal(t, e)
	pub := publisher(t, b.URL, "pub-1")
	const n = 5
	for i := range n {
		publish(t, pub, protocol.TelemetryTopic("dev-1"), pack("x", i, true))
	}
	waitFor(t, 10*time.Second, "every reading", func() bool {
		_, _, rs, _ := store.snapshot()
		distinct, _ := values(rs)
		return len(distinct) == n
	})
	waitFor(t, 10*time.Second, "the second session", func() bool { return e.Stats().Connects >= 2 })
	if st := e.Stats(); st.AppendErrors != 1 {
		t.Errorf("Stats = %+v, want 1 append error", st)
	}
}

func TestExternalConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  intake.ExternalConfig
		want string
	}{
		{intake.ExternalConfig{Gateway: "gw"}, "broker is missing"},
		{intake.ExternalConfig{Broker: "http://h:1", Gateway: "gw"}, "scheme \"http\""},
		{intake.ExternalConfig{Broker: "tcp://h:1883"}, "set gateway"},
		{intake.ExternalConfig{Broker: "tcp://h:1883", Gateway: "bad id"}, "gateway \"bad id\""},
		{intake.ExternalConfig{Broker: "tcp://h:1883", Gateway: "gw", Password: "p"}, "without username"},
		{intake.ExternalConfig{Broker: "tcp://h:1883", Gateway: "gw", TLS: tlsfiles.Client{CAFile: "ca.pem"}}, "not TLS"},
		{intake.ExternalConfig{Broker: "ssl://h", Gateway: "gw", TLS: tlsfiles.Client{CertFile: "c.pem"}}, "go together"},
		{intake.ExternalConfig{Broker: "ssl://h", Gateway: "gw", TLS: tlsfiles.Client{CAFile: "/nonexistent/ca.pem"}}, "ca_file"},
		{intake.ExternalConfig{Broker: "tcp://h", Gateway: "gw", MaxInFlight: -1}, "max_in_flight"},
	} {
		_, err := intake.NewExternal(tc.cfg, &memStore{}, intake.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewExternal(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := intake.NewExternal(intake.ExternalConfig{Broker: "tcp://h", Gateway: "gw"}, nil, intake.Options{}); err == nil {
		t.Error("NewExternal with a nil store succeeded")
	}
}

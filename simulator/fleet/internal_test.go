package fleet

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/model"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testDevices(c *Config) []*device {
	devs := make([]*device, c.Devices)
	for i := range devs {
		devs[i] = &device{index: i, id: c.DeviceID(i), layout: layoutOf(c.Sensors, i)}
	}
	return devs
}

func TestPlanAnomalies(t *testing.T) {
	c := DefaultConfig()
	c.Devices, c.Sensors, c.AnomalyRate = 200, SensorsMixed, 600
	devs := testDevices(&c)
	f, err := model.NewFleet(c.Seed, t0)
	if err != nil {
		t.Fatal(err)
	}
	const run = 20 * time.Second
	evs, err := planAnomalies(f, &c, devs, t0, 0, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatal("no anomalies planned")
	}
	kinds := map[string]int{}
	for i, e := range evs {
		kinds[e.Kind]++
		if e.Start.Before(t0) || e.End.After(t0.Add(run)) || !e.End.After(e.Start) {
			t.Errorf("event %d %+v outside [%s, %s)", i, e, t0, t0.Add(run))
		}
		if d := e.End.Sub(e.Start); d > run/4 {
			t.Errorf("event %d lasts %s, more than a quarter of the run", i, d)
		}
		if i > 0 && e.Start.Before(evs[i-1].Start) {
			t.Errorf("events not sorted by start at %d", i)
		}
		if e.Metric != "" {
			d := devs[slices.IndexFunc(devs, func(d *device) bool { return d.id == e.Device })]
			if !slices.Contains(d.layout.metrics(), e.Metric) {
				t.Errorf("event %d on metric %q that %s (%v) does not publish", i, e.Metric, e.Device, d.layout.metrics())
			}
		}
	}
	for _, k := range AnomalyKinds {
		if kinds[k] == 0 {
			t.Errorf("no %s planned: %v", k, kinds)
		}
	}

	// The same seed plans the same anomalies, relative to the start,
	// whenever the run starts.
	later := t0.Add(7*time.Hour + 123*time.Millisecond)
	again, err := planAnomalies(f, &c, devs, later, 0, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(evs) {
		t.Fatalf("%d events planned at a later start, %d before", len(again), len(evs))
	}
	for i := range evs {
		a, b := evs[i], again[i]
		if a.Device != b.Device || a.Kind != b.Kind || a.Metric != b.Metric || a.Start.Sub(t0) != b.Start.Sub(later) || a.Magnitude != b.Magnitude {
			t.Fatalf("event %d differs: %+v vs %+v", i, a, b)
		}
	}

	// Only the kinds asked for.
	c.Anomalies = []string{model.KindDropout}
	only, err := planAnomalies(f, &c, devs, t0, 0, run)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range only {
		if e.Kind != model.KindDropout {
			t.Fatalf("planned %s with only dropout enabled", e.Kind)
		}
	}
	c.AnomalyRate = 0
	if none, _ := planAnomalies(f, &c, devs, t0, 0, run); len(none) != 0 {
		t.Fatalf("rate 0 planned %d events", len(none))
	}
}

func TestTruthReleaseAndFinish(t *testing.T) {
	var buf bytes.Buffer
	tr := newTruth(model.NewTruthWriter(&buf))
	ev := func(startS, endS int, kind string) model.Event {
		return model.Event{Device: "d", Metric: "temperature", Kind: kind,
			Start: t0.Add(time.Duration(startS) * time.Second), End: t0.Add(time.Duration(endS) * time.Second), Magnitude: 1}
	}
	tr.plan([]model.Event{ev(1, 2, model.KindSpike), ev(3, 9, model.KindDrift), ev(8, 9, model.KindSpike)})
	tr.release(t0.Add(1 * time.Second))
	tr.write(model.Event{Device: "d", Kind: model.KindDisconnect, Start: t0, End: t0.Add(time.Second)})
	tr.finish(t0.Add(5 * time.Second)) // the drift is cut short, the last spike never happened
	if err := tr.close(); err != nil {
		t.Fatal(err)
	}
	got, err := model.ReadTruth(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []model.Event{ev(1, 2, model.KindSpike), {Device: "d", Kind: model.KindDisconnect, Start: t0, End: t0.Add(time.Second)}, ev(3, 5, model.KindDrift)}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i].Kind != want[i].Kind || !got[i].Start.Equal(want[i].Start) || !got[i].End.Equal(want[i].End) {
			t.Errorf("line %d: %+v, want %+v", i+1, got[i], want[i])
		}
	}
	if c := tr.snapshot(); c[model.KindSpike] != 1 || c[model.KindDrift] != 1 || c[model.KindDisconnect] != 1 {
		t.Errorf("counts %v", c)
	}
}

func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(100, 5) // 10 ms apart, 5 at once
		start := time.Now()
		for range 25 {
			if err := l.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		// 5 at once, then 20 more at 10 ms each.
		if got := time.Since(start); got != 200*time.Millisecond {
			t.Errorf("25 waits took %s, want 200ms", got)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for range 10 {
			l.Wait(context.Background()) // reserve the next 100 ms
		}
		if err := l.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait on a cancelled context: %v", err)
		}
	})
}

func TestLinkSever(t *testing.T) {
	var l link
	a, b := net.Pipe()
	defer b.Close()
	if l.sever(t0) {
		t.Fatal("severed a link with no connection")
	}
	if pending := l.set(newTrackedConn(a, &l)); !pending.IsZero() {
		t.Fatal("first connection closed a disconnect")
	}
	if !l.sever(t0) {
		t.Fatal("did not sever a live connection")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("connection still open after sever")
	}
	if l.sever(t0.Add(time.Second)) {
		t.Fatal("severed the same link twice")
	}
	c, d := net.Pipe()
	defer d.Close()
	if pending := l.set(newTrackedConn(c, &l)); !pending.Equal(t0) {
		t.Fatalf("reconnect closed the disconnect of %s, want %s", pending, t0)
	}
	// A connection closed by its owner is not severed again.
	tc := newTrackedConn(c, &l)
	l.set(tc)
	tc.Close()
	if l.sever(t0) || l.severed() != 1 {
		t.Fatalf("severed a closed connection (%d cuts)", l.severed())
	}
}

func TestLayouts(t *testing.T) {
	counts := map[layout]int{}
	for i := range 20_000 {
		counts[layoutOf(SensorsMixed, i)]++
	}
	if counts[layoutBME280Flow] != MaxPulseCounters {
		t.Errorf("%d pulse counters in 20,000 mixed devices, want %d", counts[layoutBME280Flow], MaxPulseCounters)
	}
	if counts[layoutSHT3xADC] != 8000 || counts[layoutBME280] != 20_000-8000-MaxPulseCounters {
		t.Errorf("mixed layouts: %v", counts)
	}
	if layoutOf(SensorsSHT3x, 7) != layoutSHT3x || layoutOf(SensorsBME280, 50) != layoutBME280 {
		t.Error("single-sensor profiles")
	}
	f, _ := model.NewFleet(1, t0)
	for _, l := range []layout{layoutBME280, layoutSHT3x, layoutSHT3xADC, layoutBME280Flow} {
		hw, err := newHardware(l, f.Device("x"))
		if err != nil {
			t.Fatalf("layout %d: %v", l, err)
		}
		var names []string
		for _, s := range hw.specs {
			names = append(names, s.MetricNames()...)
		}
		for _, m := range l.metrics() {
			if !slices.Contains(names, m) {
				t.Errorf("layout %d: metric %q is not published (sensors publish %v)", l, m, names)
			}
			if _, ok := f.Profile(m); !ok {
				t.Errorf("layout %d: metric %q has no model profile", l, m)
			}
		}
	}
}

func TestMalformedPayloadsAreRejected(t *testing.T) {
	for i, p := range malformedPayloads {
		if rs, err := protocol.DecodeSenML(p, protocol.DecodeOptions{Device: "sim-00000"}); err == nil {
			t.Errorf("payload %d (%q) decodes to %v", i, p, rs)
		}
	}
}

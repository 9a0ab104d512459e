package monitor_test

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

func TestRedeliveryIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{})
		t0 := us()
		b := batch("shardId-000000000000",
			rec("gw1", "d1", "temp", 20, t0, t0+1e6, t0+2e6),
			rec("gw1", "d2", "temp", 21, t0, t0+1e6))
		handle(t, m, b)
		time.Sleep(500 * time.Millisecond)
		handle(t, m, b) // at-least-once: the same batch again
		// and a batch overlapping it with one new reading
		handle(t, m, batch("shardId-000000000000", rec("gw1", "d1", "temp", 22, t0+2e6, t0+3e6)))

		s := m.Stats()
		if s.Readings != 6 || s.Duplicates != 6 {
			t.Errorf("readings %d duplicates %d, want 6 and 6", s.Readings, s.Duplicates)
		}
		d, err := m.Series("d1", "temp", "5m", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.T) != 4 || d.V[3] != 22 {
			t.Errorf("d1 series %v %v, want 4 points ending in 22", d.T, d.V)
		}
		time.Sleep(2 * time.Second)
		if got := m.Overview().IngestRate; math.Abs(got-0.6) > 1e-9 {
			t.Errorf("ingest rate %v, want 0.6 (6 readings in the 10 s window, duplicates not counted)", got)
		}
		st := m.Stream(t.Context())
		if len(st.Shards) != 1 || st.Shards[0].RecordsPerSec != 0.3 {
			t.Errorf("stream %+v, want one shard at 0.3 records/s (the duplicate batch's records not counted)", st.Shards)
		}
	})
}

func TestOfflineAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{OfflineAfter: time.Minute})
		handle(t, m, batch("s0", rec("gw1", "d1", "temp", 1, us()), rec("gw1", "d2", "temp", 1, us())))
		time.Sleep(30 * time.Second)
		handle(t, m, batch("s0", rec("gw1", "d2", "temp", 1, us())))
		time.Sleep(29 * time.Second)
		if o := m.Overview(); o.Devices != (monitor.Count{Total: 2, Online: 2}) || o.Gateways.Online != 1 {
			t.Errorf("after 59 s: %+v %+v, want both devices and the gateway online", o.Devices, o.Gateways)
		}
		time.Sleep(2 * time.Second)
		if o := m.Overview(); o.Devices != (monitor.Count{Total: 2, Online: 1, Offline: 1}) {
			t.Errorf("after 61 s: %+v, want d1 offline", o.Devices)
		}
		page := m.Devices(monitor.DeviceQuery{Status: "offline"})
		if page.Total != 1 || page.Devices[0].ID != "d1" {
			t.Errorf("offline devices %+v, want d1", page)
		}
		time.Sleep(30 * time.Second)
		if o := m.Overview(); o.Devices.Offline != 2 || o.Gateways.Offline != 1 {
			t.Errorf("after 91 s: %+v, want all offline", o)
		}
	})
}

func TestOfflineUsesArrivalTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A consumer catching up on a backlog: the records arrived long
		// ago, so the device is offline although the batch is new.
		m := monitor.New(monitor.Options{})
		r := rec("gw1", "d1", "temp", 1, us())
		r.Arrival = time.Now().Add(-5 * time.Minute)
		handle(t, m, batch("s0", r))
		time.Sleep(time.Second)
		if o := m.Overview(); o.Devices.Offline != 1 || o.IngestRate != 0 {
			t.Errorf("%+v at %v/s, want the device offline and no rate (it arrived long ago)", o.Devices, o.IngestRate)
		}
	})
}

func TestRates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{})
		for range 20 {
			for range 5 {
				time.Sleep(200 * time.Millisecond)
				handle(t, m, batch("s0", rec("gw1", "d1", "temp", 1, us()), rec("gw1", "d2", "temp", 1, us()),
					rec("gw2", "d3", "temp", 1, us())))
			}
		}
		if got := m.Overview().IngestRate; got != 15 {
			t.Errorf("fleet rate %v, want 15", got)
		}
		gws := m.Gateways()
		if len(gws) != 2 || gws[0].Rate != 10 || gws[1].Rate != 5 || gws[0].Devices != 2 {
			t.Errorf("gateways %+v, want gw1 at 10/s with 2 devices, gw2 at 5/s", gws)
		}
		d, _ := m.Device("d1")
		if d.Rate != 5 {
			t.Errorf("d1 rate %v, want 5", d.Rate)
		}
		time.Sleep(11 * time.Second)
		if got := m.Overview().IngestRate; got != 0 {
			t.Errorf("fleet rate %v after 11 s of silence, want 0", got)
		}
	})
}

func TestGatewayHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{})
		now := us()
		hr := consumer.Record{Gateway: "gw1", Device: "gw1", Arrival: time.Now(), Readings: []protocol.Reading{
			{Device: "gw1", Name: protocol.HealthQueueDepth, Kind: protocol.KindFloat, Value: 42, Time: now, Received: now},
			{Device: "gw1", Name: protocol.HealthQueueBytes, Kind: protocol.KindFloat, Value: 4096, Time: now, Received: now},
			{Device: "gw1", Name: protocol.HealthOldestUnsent, Kind: protocol.KindFloat, Value: 1.5, Time: now, Received: now},
			{Device: "gw1", Name: protocol.HealthDropped, Kind: protocol.KindFloat, Value: 3, Time: now, Received: now},
			{Device: "gw1", Name: protocol.HealthClockSynced, Kind: protocol.KindBool, Bool: false, Time: now, Received: now, Flags: protocol.FlagClockUnsynced},
			{Device: "gw1", Name: protocol.HealthUplinkOK, Kind: protocol.KindBool, Bool: true, Time: now, Received: now},
		}}
		handle(t, m, batch("s0", hr, rec("gw1", "d1", "temp", 1, now)))
		gws := m.Gateways()
		if len(gws) != 1 {
			t.Fatalf("gateways %+v", gws)
		}
		h := gws[0].Health
		if h.QueueDepth == nil || *h.QueueDepth != 42 || *h.QueueFileBytes != 4096 || *h.OldestUnsentAge != 1.5 ||
			*h.Dropped != 3 || h.ClockSynced == nil || *h.ClockSynced || h.UplinkOK == nil || !*h.UplinkOK {
			t.Errorf("health %+v", h)
		}
		if gws[0].Devices != 1 {
			t.Errorf("gateway devices %d, want 1 (its own health device not counted)", gws[0].Devices)
		}
		if o := m.Overview(); o.Devices.Total != 1 {
			t.Errorf("overview devices %+v, want 1", o.Devices)
		}
		if p := m.Devices(monitor.DeviceQuery{Agents: true}); p.Total != 2 || !p.Devices[1].Agent {
			t.Errorf("devices with agents %+v", p)
		}
		// The health readings chart like any series.
		if d, err := m.Series("gw1", protocol.HealthQueueDepth, "5m", time.Time{}); err != nil || len(d.V) != 1 || d.V[0] != 42 {
			t.Errorf("queue depth series %+v, %v", d, err)
		}
	})
}

func TestClockSkew(t *testing.T) {
	m := monitor.New(monitor.Options{})
	now := us()
	r := consumer.Record{Gateway: "gw1", Device: "d1", Arrival: time.Now(), Readings: []protocol.Reading{
		// device clock 2 s ahead of the gateway's
		{Device: "d1", Name: "a", Kind: protocol.KindFloat, Value: 1, Time: now + 2e6, Received: now},
		// no device time: Time is the receive time, says nothing of skew
		{Device: "d1", Name: "b", Kind: protocol.KindFloat, Value: 1, Time: now + 5e6, Received: now,
			Flags: protocol.FlagReceiverTime | protocol.FlagClockUnsynced},
	}}
	handle(t, m, batch("s0", r))
	d, err := m.Device("d1")
	if err != nil {
		t.Fatal(err)
	}
	if d.ClockSkewMs == nil || *d.ClockSkewMs != 2000 || d.UnsyncedReadings != 1 {
		t.Errorf("skew %v unsynced %d, want 2000 ms and 1", d.ClockSkewMs, d.UnsyncedReadings)
	}
}

func TestReadingKinds(t *testing.T) {
	m := monitor.New(monitor.Options{})
	now := us()
	r := consumer.Record{Gateway: "gw1", Device: "d1", Arrival: time.Now(), Readings: []protocol.Reading{
		{Device: "d1", Name: "door", Kind: protocol.KindBool, Bool: true, Time: now},
		{Device: "d1", Name: "state", Kind: protocol.KindString, Str: strings.Repeat("é", 300), Time: now},
		{Device: "d1", Name: "energy", Kind: protocol.KindNone, HasSum: true, Sum: 12.5, Unit: "J", Time: now},
		{Device: "d1", Name: "blob", Kind: protocol.KindData, Data: []byte{1, 2}, Time: now},
	}}
	handle(t, m, batch("s0", r))
	d, _ := m.Device("d1")
	got := map[string]monitor.Metric{}
	for _, s := range d.Series {
		got[s.Name] = s
	}
	if s := got["door"]; s.Kind != "bool" || *s.Value != 1 {
		t.Errorf("door %+v", s)
	}
	if s := got["energy"]; s.Kind != "number" || *s.Value != 12.5 {
		t.Errorf("energy %+v", s)
	}
	if s := got["state"]; s.Kind != "string" || len(*s.Str) > 256 || !strings.HasPrefix(*s.Str, "éé") {
		t.Errorf("state %+v (want a truncated string on a rune boundary)", s)
	}
	if _, err := m.Series("d1", "state", "5m", time.Time{}); err == nil {
		t.Error("a string series charts")
	}
	if _, err := m.Series("d1", "door", "5m", time.Time{}); err != nil {
		t.Error(err)
	}
}

func TestSeriesWindows(t *testing.T) {
	m := monitor.New(monitor.Options{PointsPerSeries: 600})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	const n = 2 * 3600 // two hours at 1 Hz
	var ts []int64
	for i := range n {
		ts = append(ts, t0+int64(i)*1e6)
	}
	r := rec("gw1", "d1", "temp", 0, ts...)
	for i := range r.Readings {
		r.Readings[i].Value = float64(i % 60) // a saw: 0..59 each minute
	}
	handle(t, m, batch("s0", r))
	for _, c := range []struct {
		window, res string
		points      int
	}{
		{"5m", "raw", 300},
		{"1h", "10s", 360}, // 359 whole buckets after the start, plus the one the start cuts
		{"24h", "1m", 120},
	} {
		d, err := m.Series("d1", "temp", c.window, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Resolution != c.res || len(d.T) < c.points-1 || len(d.T) > c.points+1 {
			t.Errorf("%s: resolution %s, %d points; want %s, %d", c.window, d.Resolution, len(d.T), c.res, c.points)
		}
		if c.res == "1m" {
			if d.Min[5] != 0 || d.Max[5] != 59 || d.V[5] != 29.5 {
				t.Errorf("1m bucket min/mean/max %v/%v/%v, want 0/29.5/59", d.Min[5], d.V[5], d.Max[5])
			}
		}
	}
	// A window ending earlier (the anomaly page links to the chart around an alert).
	end := time.UnixMicro(t0 + 3600e6)
	d, err := m.Series("d1", "temp", "1h", end)
	if err != nil || d.T[len(d.T)-1] > float64(end.Unix())+5 || d.Start.Unix() != end.Add(-time.Hour).Unix() {
		t.Errorf("window ending at %v: %v..%v, %v", end, d.Start, d.End, err)
	}
	if _, err := m.Series("d1", "temp", "7d", time.Time{}); err == nil {
		t.Error("window 7d accepted")
	}
}

func TestBounds(t *testing.T) {
	logs := &testenv.Buffer{}
	m := monitor.New(monitor.Options{MaxDevices: 2, MaxMetricsPerDevice: 2, MaxSeries: 3, MaxAlerts: 2, PointsPerSeries: 4,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	now := us()
	handle(t, m, batch("s0",
		rec("gw1", "d1", "a", 1, now), rec("gw1", "d1", "b", 1, now), rec("gw1", "d1", "c", 1, now), // c: too many metrics
		rec("gw1", "d2", "a", 1, now, now+1, now+2, now+3, now+4, now+5), // 2 points pushed out of the ring
		rec("gw1", "d2", "b", 1, now),                                    // series bound
		rec("gw1", "d3", "a", 1, now),                                    // device bound
	))
	// Every drop is logged, once a minute per bound.
	handle(t, m, batch("s0", rec("gw1", "d4", "a", 1, now)))
	for _, bound := range []string{"MaxDevices", "MaxMetricsPerDevice", "MaxSeries"} {
		if n := strings.Count(logs.String(), "bound="+bound+" "); n != 1 {
			t.Errorf("%d log lines for %s, want 1:\n%s", n, bound, logs)
		}
	}
	for range 5 {
		m.AddAlert(anomaly.Alert{Device: "d1", Metric: "a", Kind: anomaly.KindSpike, Time: time.Now()})
	}
	s := m.Stats()
	want := monitor.Dropped{Devices: 2, Metrics: 1, Series: 1, Alerts: 3}
	if s.Dropped != want || s.PointsEvicted != 2 || s.Devices != 2 || s.Series != 3 {
		t.Errorf("stats %+v, want dropped %+v, 2 points evicted, 2 devices, 3 series", s, want)
	}
	// The ring no longer holds every point of the window: the 1 s rollup serves it.
	if d, _ := m.Series("d2", "a", "5m", time.Time{}); d.Resolution != "1s" || len(d.T) != 1 {
		t.Errorf("5m window of a ring that lost points: %s, %d points; want the 1s rollup, 1 point", d.Resolution, len(d.T))
	}
	if a := m.Alerts(monitor.AlertQuery{}); len(a) != 2 || a[0].ID != 5 || a[1].ID != 4 {
		t.Errorf("alerts %+v, want ids 5 and 4", a)
	}
	if d, _ := m.Device("d1"); d.Anomalies != 5 {
		t.Errorf("d1 anomalies %d, want 5", d.Anomalies)
	}
}

func TestForgetAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{ForgetAfter: time.Hour})
		handle(t, m, batch("s0", rec("gw1", "d1", "a", 1, us())))
		time.Sleep(61 * time.Minute)
		handle(t, m, batch("s0", rec("gw1", "d2", "a", 1, us())))
		s := m.Stats()
		if s.Devices != 1 || s.DevicesForgotten != 1 || s.Series != 1 {
			t.Errorf("stats %+v, want d1 forgotten", s)
		}
	})
}

func TestAnomaliesLastHour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{})
		m.AddAlert(anomaly.Alert{Device: "d1", Metric: "a", Kind: anomaly.KindDrift})
		time.Sleep(30 * time.Minute)
		m.AddAlert(anomaly.Alert{Device: "d1", Metric: "a", Kind: anomaly.KindDrift})
		if n := m.Overview().AnomaliesLastHour; n != 2 {
			t.Errorf("%d anomalies in the last hour, want 2", n)
		}
		time.Sleep(31 * time.Minute)
		if n := m.Overview().AnomaliesLastHour; n != 1 {
			t.Errorf("%d anomalies in the last hour, want 1", n)
		}
	})
}

func TestRegister(t *testing.T) {
	m := monitor.New(monitor.Options{MaxDevices: 1})
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	handle(t, m, batch("s0", rec("gw1", "d1", "a", 1, us()), rec("gw1", "d2", "a", 1, us())))
	got := gather(t, reg)
	for name, want := range map[string]float64{
		"tributary_monitor_readings_total":                1,
		"tributary_monitor_devices":                       1,
		"tributary_monitor_devices_online":                1,
		`tributary_monitor_dropped_total{what="devices"}`: 1,
		`tributary_monitor_dropped_total{what="clients"}`: 0,
		"tributary_monitor_duplicate_readings_total":      0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

// gather returns every sample as name{label="value"} → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range mt.GetLabel() {
				name += fmt.Sprintf("{%s=%q}", l.GetName(), l.GetValue())
			}
			switch {
			case mt.Counter != nil:
				out[name] = mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				out[name] = mt.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestConcurrentShards(t *testing.T) {
	m := monitor.New(monitor.Options{})
	srv := httptest.NewServer(m.APIHandler())
	defer srv.Close()
	var wg sync.WaitGroup
	t0 := us()
	for sh := range 4 {
		wg.Go(func() {
			for i := range 200 {
				dev := fmt.Sprintf("d%d-%d", sh, i%10)
				handle(t, m, batch(fmt.Sprintf("shardId-%012d", sh), rec("gw1", dev, "temp", float64(i), t0+int64(i))))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			for _, p := range []string{"overview", "gateways", "devices", "devices/d0-1", "devices/d0-1/series/temp", "stream", "alerts"} {
				resp, err := http.Get(srv.URL + "/api/v1/" + p)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
			m.AddAlert(anomaly.Alert{Device: "d0-1", Metric: "temp"})
		}
	})
	wg.Wait()
	if s := m.Stats(); s.Readings != 800 || s.Devices != 40 {
		t.Errorf("stats %+v, want 800 readings of 40 devices", s)
	}
}

func BenchmarkHandleBatch(b *testing.B) {
	m := monitor.New(monitor.Options{})
	t0 := time.Now().UnixMicro()
	var recs []consumer.Record
	for d := range 100 {
		recs = append(recs, rec("gw1", fmt.Sprintf("dev-%03d", d), "temp", 1, t0))
	}
	bt := batch("s0", recs...)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range bt.Records {
			for k := range bt.Records[j].Readings {
				bt.Records[j].Readings[k].Time = t0 + int64(i)
			}
		}
		if err := m.HandleBatch(b.Context(), bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(bt.Readings))/b.Elapsed().Seconds(), "readings/s")
}

// TestLateReadingsAreKept: a gateway uploads its backlog beside live data,
// so a series sees points older than its newest. They are taken in, in
// order, into the raw points and the rollups; a repeat of a held point is
// still a duplicate.
func TestLateReadingsAreKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{})
		t0 := us() - 60e6
		live := batch("s0", rec("gw1", "d1", "temp", 30, t0+40e6, t0+50e6))
		backlog := batch("s0", rec("gw1", "d1", "temp", 10, t0, t0+10e6, t0+20e6, t0+30e6))
		handle(t, m, live)
		handle(t, m, backlog)
		handle(t, m, backlog) // redelivered
		handle(t, m, live)    // redelivered
		s := m.Stats()
		if s.Readings != 6 || s.Late != 4 || s.Duplicates != 6 {
			t.Errorf("readings %d late %d duplicates %d, want 6, 4 and 6", s.Readings, s.Late, s.Duplicates)
		}
		d, mt := charted(t, m, "d1", "temp")
		if len(d.T) != 6 {
			t.Fatalf("raw points %v, want 6", d.T)
		}
		for i := 1; i < len(d.T); i++ {
			if d.T[i] <= d.T[i-1] {
				t.Fatalf("raw points out of order: %v", d.T)
			}
		}
		if d.V[0] != 10 || d.V[5] != 30 {
			t.Errorf("values %v: want the backlog's 10 first and the live 30 last", d.V)
		}
		if mt.Value == nil || *mt.Value != 30 || mt.Count != 6 {
			t.Errorf("metric %+v: want the live value 30 as the last value, 6 points", mt)
		}
	})
}

// TestFutureReadingDoesNotBlindSeries: one reading stamped a year ahead of
// its receive time (a device with a wrong clock) is counted and not
// charted; the correct points after it are still charted, not taken for
// late or duplicate points behind the bad one.
func TestFutureReadingDoesNotBlindSeries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{})
		t0 := us() - 60e6
		handle(t, m, batch("s0", rec("gw1", "d1", "temp", 10, t0, t0+10e6)))
		bad := rec("gw1", "d1", "temp", 99, t0+20e6)
		bad.Readings[0].Time += int64(365 * 24 * time.Hour / time.Microsecond)
		handle(t, m, batch("s0", bad))
		handle(t, m, batch("s0", rec("gw1", "d1", "temp", 20, t0+30e6, t0+40e6)))
		s := m.Stats()
		if s.Future != 1 || s.Readings != 4 || s.Late != 0 || s.Duplicates != 0 {
			t.Errorf("future %d readings %d late %d duplicates %d, want 1, 4, 0 and 0",
				s.Future, s.Readings, s.Late, s.Duplicates)
		}
		d, mt := charted(t, m, "d1", "temp")
		if len(d.V) != 4 || d.V[3] != 20 {
			t.Fatalf("raw points %v %v: want 4, the last one 20", d.T, d.V)
		}
		if mt.Value == nil || *mt.Value != 20 || mt.Count != 4 {
			t.Errorf("metric %+v: want the last value 20, 4 points", mt)
		}
		if dev, err := m.Device("d1"); err != nil || dev.FutureReadings != 1 || dev.Readings != 4 ||
			dev.LastTime.UnixMicro() != t0+40e6 {
			t.Errorf("device %+v, %v: want 1 future reading, 4 readings, last time t0+40s", dev, err)
		}
	})
}

// TestFutureMarginDisabled: a negative FutureMargin charts every point,
// as before the check (the far-future one then becomes the newest).
func TestFutureMarginDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{FutureMargin: -1})
		t0 := us() - 60e6
		bad := rec("gw1", "d1", "temp", 99, t0)
		bad.Readings[0].Time += int64(365 * 24 * time.Hour / time.Microsecond)
		handle(t, m, batch("s0", bad))
		handle(t, m, batch("s0", rec("gw1", "d1", "temp", 20, t0+30e6)))
		if s := m.Stats(); s.Future != 0 || s.Late != 1 {
			t.Errorf("future %d late %d, want 0 and 1", s.Future, s.Late)
		}
	})
}

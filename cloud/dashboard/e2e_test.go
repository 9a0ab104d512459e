package dashboard_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/cloud/dashboard"
	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/internal/testenv/chromium"
	"github.com/tributary-iot/tributary/protocol"
)

// fleetSim feeds a Monitor like a consumer would: two gateways, five
// devices, batches from two shards, the agents' health readings every
// second, and one injected temperature spike that it reports as an alert.
type fleetSim struct {
	m          *monitor.Monitor
	backfilled chan struct{} // closed when the minutes before the start are in
	seq        int
	spike      struct {
		device, metric string
		at             time.Time
		done           bool
	}
}

type simDevice struct {
	gateway, id string
	metrics     []simMetric
}

type simMetric struct {
	name, unit string
	base, amp  float64
}

var simFleet = []simDevice{
	{"gw-north", "north-01", []simMetric{{"temperature", "Cel", 21, 1.5}, {"humidity", "%RH", 45, 6}}},
	{"gw-north", "north-02", []simMetric{{"temperature", "Cel", 23, 1}, {"humidity", "%RH", 50, 4}}},
	{"gw-north", "north-03", []simMetric{{"temperature", "Cel", 19, 2}}},
	{"gw-south", "south-01", []simMetric{{"temperature", "Cel", 25, 1}, {"pressure", "hPa", 1013, 3}}},
	{"gw-south", "south-02", []simMetric{{"pressure", "hPa", 1009, 2}, {"vibration", "m/s2", 0.4, 0.3}}},
}

var simShards = []monitor.Shard{
	{ID: "shardId-000000000000", StartingHashKey: "0", EndingHashKey: "340282366920938463463374607431768211455",
		StartingSequenceNumber: "49000000000000000000000000000000000000000000000000000001", EndingSequenceNumber: "49000000000000000000000000000000000000000000000000000900"},
	{ID: "shardId-000000000001", Parent: "shardId-000000000000", StartingHashKey: "0",
		EndingHashKey: "170141183460469231731687303715884105727", Open: true, StartingSequenceNumber: "49000000000000000000000000000000000000000000000000000901"},
	{ID: "shardId-000000000002", Parent: "shardId-000000000000", StartingHashKey: "170141183460469231731687303715884105728",
		EndingHashKey: "340282366920938463463374607431768211455", Open: true, StartingSequenceNumber: "49000000000000000000000000000000000000000000000000000902"},
}

// tick makes the readings of every device at time t, one record per
// device (and one per gateway for its health every whole second), and
// hands them to the monitor as one batch per shard.
func (s *fleetSim) tick(t *testing.T, now time.Time, health bool) {
	us := now.UnixMicro()
	batches := map[string]*consumer.Batch{}
	add := func(gw, device string, rs []protocol.Reading) {
		data, err := protocol.AppendRecord(nil, gw, rs)
		if err != nil {
			t.Errorf("sim: %v", err)
			return
		}
		h := fnv.New32a()
		h.Write([]byte(device))
		shard := simShards[1+int(h.Sum32()%2)].ID
		b := batches[shard]
		if b == nil {
			b = &consumer.Batch{Stream: "telemetry", Shard: shard, MillisBehindLatest: int64(20 + h.Sum32()%50)}
			batches[shard] = b
		}
		s.seq++
		b.Records = append(b.Records, consumer.Record{SequenceNumber: fmt.Sprint(s.seq), PartitionKey: device,
			Arrival: now, Data: data, Gateway: gw, Device: device, Readings: rs})
		b.Readings = append(b.Readings, rs...)
	}
	for _, d := range simFleet {
		var rs []protocol.Reading
		for i, mt := range d.metrics {
			phase := float64(us)/1e6/40 + float64(i)
			v := mt.base + mt.amp*math.Sin(phase) + 0.1*mt.amp*math.Sin(phase*7.3)
			if d.id == s.spike.device && mt.name == s.spike.metric && !s.spike.done && !now.Before(s.spike.at) {
				v = mt.base + 30
				s.spike.done = true
				defer s.m.AddAlert(anomaly.Alert{Device: d.id, Metric: mt.name, Time: now.UTC(), Score: 9.7, Kind: anomaly.KindSpike, Value: v})
			}
			// The device sampled 190 ms ago (north-03's clock runs 2.5 s
			// ahead), the gateway received it 150 ms ago.
			dt := us - 190_000
			var flags protocol.Flags
			if d.gateway == "gw-south" { // its clock is not synchronised
				flags = protocol.FlagClockUnsynced
			}
			if d.id == "north-03" {
				dt += 2_500_000
			}
			rs = append(rs, protocol.Reading{Device: d.id, Name: mt.name, Unit: mt.unit, Kind: protocol.KindFloat,
				Value: math.Round(v*100) / 100, Time: dt, Received: us - 150_000, Flags: flags})
		}
		add(d.gateway, d.id, rs)
	}
	if health {
		for i, gw := range []string{"gw-north", "gw-south"} {
			f := func(name, unit string, v float64) protocol.Reading {
				return protocol.Reading{Device: gw, Name: name, Unit: unit, Kind: protocol.KindFloat, Value: v, Time: us, Received: us}
			}
			b := func(name string, v bool) protocol.Reading {
				return protocol.Reading{Device: gw, Name: name, Kind: protocol.KindBool, Bool: v, Time: us, Received: us}
			}
			add(gw, gw, []protocol.Reading{
				f(protocol.HealthQueueDepth, "count", float64(12+i*40)), f(protocol.HealthQueueBytes, "B", float64(65536*(i+1))),
				f(protocol.HealthOldestUnsent, "s", 0.4+float64(i)*3), f(protocol.HealthDropped, "count", 0),
				b(protocol.HealthClockSynced, i == 0), b(protocol.HealthUplinkOK, true),
			})
		}
	}
	for _, b := range batches {
		if err := s.m.HandleBatch(context.Background(), *b); err != nil {
			t.Errorf("HandleBatch: %v", err)
		}
	}
}

// run backfills the last minutes at 1 Hz, then produces live at 5 Hz
// until ctx ends.
func (s *fleetSim) run(ctx context.Context, t *testing.T) {
	now := time.Now()
	for ts := now.Add(-4 * time.Minute); ts.Before(now); ts = ts.Add(time.Second) {
		s.tick(t, ts, true)
	}
	close(s.backfilled)
	tk := time.NewTicker(200 * time.Millisecond)
	defer tk.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case ts := <-tk.C:
			s.tick(t, ts, n%5 == 0)
		}
	}
}

func TestDashboardInBrowser(t *testing.T) {
	allocCtx := chromium.Allocator(t, chromedp.Flag("hide-scrollbars", true))

	m := monitor.New(monitor.Options{Shards: func(context.Context) ([]monitor.Shard, error) { return simShards, nil }})
	sim := &fleetSim{m: m, backfilled: make(chan struct{})}
	sim.spike.device, sim.spike.metric = "north-02", "temperature"
	sim.spike.at = time.Now().Add(-90 * time.Second) // in the backfill: the chart shows it
	simCtx, stopSim := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sim.run(simCtx, t) })
	defer wg.Wait()
	defer stopSim()
	<-sim.backfilled

	srv := httptest.NewServer(dashboard.Handler(m.APIHandler()))
	defer srv.Close()

	// The monitor alone serves neither /api/v1/autoscale nor /api/v1/plan
	// (cloud/server does): the stream page's fetches of them get 404 here.
	con := &browserConsole{ignore: []string{"/api/v1/autoscale", "/api/v1/plan"}}
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(con.listen))
	defer cancelBrowser()
	// Start the browser without a deadline (a deadline on the first Run
	// would bound the browser's life), then bound everything else.
	if err := chromedp.Do(browser, chromedp.EmulateViewport(chromium.Width, chromium.Height)); err != nil {
		t.Fatalf("start %s: %v", chromium.Path, err)
	}
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()

	shots := []string{t.ArtifactDir()}
	if d := os.Getenv("TRIBUTARY_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		shots = append(shots, d)
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		for _, d := range shots {
			p := filepath.Join(d, name)
			if err := os.WriteFile(p, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot: %s", p)
		}
	}
	// wait polls a JavaScript predicate until it is truthy.
	wait := func(what, expr string) {
		t.Helper()
		chromium.Wait(t, ctx, what, expr, 10*time.Second)
	}
	eval := func(expr string) int {
		t.Helper()
		return chromium.Eval[int](t, ctx, expr)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Fleet overview: both gateways, every device, live.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#/")); err != nil {
		t.Fatal(err)
	}
	wait("the fleet tables", `document.querySelectorAll('#gateways tr[data-gateway]').length === 2 && document.querySelectorAll('#devices tr[data-device]').length === 5`)
	wait("the live connection", `document.getElementById('live').dataset.state === 'live'`)
	wait("the health readings", `document.querySelector('#gateways tr[data-gateway="gw-south"]').innerText.includes('52')`)
	gws, devs := text("#gateways"), text("#devices")
	for _, want := range []string{"gw-north", "gw-south", "synced", "unsynced"} {
		if !strings.Contains(gws, want) {
			t.Errorf("gateways table lacks %q:\n%s", want, gws)
		}
	}
	for _, d := range simFleet {
		if !strings.Contains(devs, d.id) {
			t.Errorf("devices table lacks %s:\n%s", d.id, devs)
		}
	}
	if s := text(".kpis"); !strings.Contains(s, "5 / 5") {
		t.Errorf("headline figures %q, want 5 / 5 devices online", s)
	}
	screenshot("overview.png")

	// Device page: charts render with data and grow live without a reload.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#/device/north-02")); err != nil {
		t.Fatal(err)
	}
	eval(`window.__noReload = 1`)
	wait("the temperature chart", `window.__tributary.chartLen('temperature') > 0 && window.__tributary.chartLen('humidity') > 0`)
	n1 := eval(`window.__tributary.chartLen('temperature')`)
	inked := eval(`(() => {
		const c = document.querySelector('[data-metric="temperature"] canvas');
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
		return n;
	})()`)
	if inked < 500 {
		t.Errorf("the temperature chart's canvas has %d painted pixels, want a drawn line", inked)
	}
	wait("live points", fmt.Sprintf(`window.__tributary.chartLen('temperature') > %d`, n1))
	if eval(`window.__noReload ?? 0`) != 1 {
		t.Error("the page reloaded")
	}
	screenshot("device.png")

	// The 1 hour window is served from rollups.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#/device/north-02?window=1h")); err != nil {
		t.Fatal(err)
	}
	wait("the 1 h chart", `window.__tributary.chartLen('temperature') > 0 && window.__tributary.charts.temperature.u.data.length === 4`)
	screenshot("device-1h.png")

	// Anomalies: the injected spike, linked to its chart.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#/alerts")); err != nil {
		t.Fatal(err)
	}
	wait("the alert", `document.querySelectorAll('#alerts tr[data-alert]').length >= 1`)
	if s := text("#alerts"); !strings.Contains(s, "north-02") || !strings.Contains(s, "spike") || !strings.Contains(s, "temperature") {
		t.Errorf("alerts table:\n%s", s)
	}
	// A live alert appears without a reload.
	m.AddAlert(anomaly.Alert{Device: "south-02", Metric: "vibration", Time: time.Now().UTC(), Score: 4.2, Kind: anomaly.KindNoise, Value: 0.9})
	wait("the live alert", `document.querySelectorAll('#alerts tr[data-alert]').length >= 2`)
	screenshot("alerts.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#alerts tr[data-alert="1"] a.button`))); err != nil {
		t.Fatal(err)
	}
	wait("the chart around the alert", `window.__tributary.page === 'device' && document.querySelector('.chart-card.focus[data-metric="temperature"]') && window.__tributary.chartLen('temperature') > 0`)
	screenshot("alert-chart.png")

	// Stream: three shards, the parent closed, rates and lag.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#/stream")); err != nil {
		t.Fatal(err)
	}
	wait("the shards", `document.querySelectorAll('#shards tr[data-shard]').length === 3 && document.querySelectorAll('.keyspace .seg').length === 2`)
	wait("shard rates", `/[1-9][0-9.]* \/ 1,000 rec\/s/.test(document.querySelector('#shards').innerText)`)
	if s := text("#shards"); !strings.Contains(s, "closed") || !strings.Contains(s, "50%") {
		t.Errorf("shards table:\n%s", s)
	}
	wait("the missing capacity endpoints said", `document.querySelector('#plan').innerText.includes('Cannot load the estimate')`)
	screenshot("stream.png")

	con.check(t)
}

// browserConsole collects the page's exceptions, console errors and
// error log entries (failed loads), but those of URLs containing one of
// ignore.
type browserConsole struct {
	ignore   []string
	mu       sync.Mutex
	problems []string
}

func (c *browserConsole) listen(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		c.problems = append(c.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, desc))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			c.problems = append(c.problems, "console.error: "+strings.Join(args, " "))
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		for _, u := range c.ignore {
			if strings.Contains(ev.Entry.URL, u) {
				return
			}
		}
		c.problems = append(c.problems, fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
	}
}

// check fails t for every problem collected.
func (c *browserConsole) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.problems {
		t.Errorf("browser: %s", p)
	}
}

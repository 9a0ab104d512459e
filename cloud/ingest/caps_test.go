package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// series makes one reading per "device/metric" given, a second apart
// from start.
func series(start time.Time, names ...string) []protocol.Reading {
	rs := make([]protocol.Reading, len(names))
	for i, n := range names {
		dev, metric, _ := strings.Cut(n, "/")
		tm := start.Add(time.Duration(i) * time.Second).UnixMicro()
		rs[i] = protocol.Reading{Device: dev, Name: metric, Kind: protocol.KindFloat, Value: float64(i), Time: tm, Received: tm + 1000}
	}
	return rs
}

// A gateway's devices and series beyond its caps are refused: left out
// of the stream, acknowledged (so the gateway deletes them and a resend
// is a duplicate), counted in the answer and per gateway, and logged. The
// caps are per gateway, what they admitted survives a restart, and a
// series not sent for SeriesTTL frees its place.
func TestCaps(t *testing.T) {
	clock := testenv.NewClock(t0)
	e := newEnv(t, func(o *ingest.Options) {
		o.MaxDevicesPerGateway, o.MaxSeriesPerGateway, o.Now = 3, 5, clock.Now
		o.SeriesTTL = 30 * 24 * time.Hour
	})
	var want []protocol.Reading
	b1 := series(t0, "d1/a", "d1/b", "d2/a", "d2/b", "d3/a", "d4/a", "d3/b")
	r := e.send("gw-1", 1, 1, b1, "zstd")
	if r.Status != 200 || r.num("stored") != 5 || r.num("refused") != 2 || r.num("last") != 7 {
		t.Fatalf("first batch: %+v, want 5 stored, 2 refused, acknowledged to 7", r)
	}
	reason, _ := r.Body["refused_reason"].(string)
	for _, s := range []string{"1 readings of devices beyond the gateway's 3 (ingest.max_devices_per_gateway), e.g. d4",
		"1 readings of series beyond the gateway's 5 (ingest.max_series_per_gateway)"} {
		if !strings.Contains(reason, s) {
			t.Errorf("refused_reason %q does not say %q", reason, s)
		}
	}
	want = append(want, b1[:5]...)
	for cp, n := range map[string]float64{"devices": 1, "series": 1} {
		if got := e.metric("tributary_ingest_capped_readings_total", "gateway", "gw-1", "cap", cp); got != n {
			t.Errorf("capped_readings_total{gw-1, %s} = %v, want %v", cp, got, n)
		}
	}
	if !strings.Contains(e.logs.String(), "readings refused: the gateway is at its device or series cap") {
		t.Errorf("no log line for the refusal:\n%s", e.logs.String())
	}
	// A resend: everything was acknowledged.
	if r := e.send("gw-1", 1, 1, b1, "zstd"); r.Status != 200 || r.num("stored") != 0 || r.num("duplicates") != 7 || r.num("refused") != 0 {
		t.Errorf("resend: %+v", r)
	}
	// Another gateway has caps of its own.
	b2 := series(t0, "d4/a", "d5/a")
	if r := e.send("gw-2", 1, 1, b2, ""); r.Status != 200 || r.num("stored") != 2 || r.num("refused") != 0 {
		t.Errorf("gw-2: %+v", r)
	}
	want = append(want, b2...)

	// After a restart the same devices get through, in any order.
	e.restart()
	if got := e.metric("tributary_ingest_tracked_series"); got != 7 {
		t.Errorf("tracked_series after restart = %v, want 7", got)
	}
	clock.Advance(20 * 24 * time.Hour)
	b3 := series(clock.Now(), "d4/a", "d6/a", "d1/a")
	if r := e.send("gw-1", 1, 8, b3, "gzip"); r.Status != 200 || r.num("stored") != 1 || r.num("refused") != 2 {
		t.Fatalf("after restart: %+v, want d1/a stored, d4/a and d6/a refused", r)
	}
	want = append(want, b3[2])
	// A batch refused whole is acknowledged whole.
	b4 := series(clock.Now().Add(time.Minute), "d7/a", "d7/b")
	if r := e.send("gw-1", 1, 11, b4, ""); r.Status != 200 || r.num("stored") != 0 || r.num("refused") != 2 {
		t.Fatalf("refused whole: %+v", r)
	}
	if r := e.send("gw-1", 1, 11, b4, ""); r.Status != 200 || r.num("duplicates") != 2 {
		t.Fatalf("refused whole, resent: %+v", r)
	}

	// 35 days after the first batch, only d1/a was sent in the last 30:
	// the others stop counting, and new devices fit, now and after a
	// restart.
	clock.Advance(15 * 24 * time.Hour)
	if err := e.in.Expire(); err != nil {
		t.Fatal(err)
	}
	if got := e.metric("tributary_ingest_tracked_series"); got != 1 {
		t.Errorf("tracked_series after expiry = %v, want 1 (d1/a of gw-1)", got)
	}
	e.restart()
	b5 := series(clock.Now(), "d8/a", "d9/a", "d9/b", "d1/a", "d10/a")
	if r := e.send("gw-1", 1, 13, b5, "zstd"); r.Status != 200 || r.num("stored") != 4 || r.num("refused") != 1 {
		t.Fatalf("after expiry: %+v, want 4 stored and d10 refused", r)
	}
	want = append(want, b5[:4]...)
	checkExactlyOnce(t, e.be, want)
}

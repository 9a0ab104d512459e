package dashboard_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/internal/testenv/chromium"
	"github.com/tributary-iot/tributary/protocol"
)

// incidentFeed sends one device's temperature at a 1 s cadence (device
// time) through the cloud's ingest API as uplink batches: a daily-ish
// sine with a little deterministic noise, and +30 at the points asked to
// spike.
type incidentFeed struct {
	s     *server.Server
	token string
	t0    time.Time // device time of point 0
	n     int       // points sent
	seq   uint64
}

func (f *incidentFeed) value(i int) float64 {
	return 20 + 2*math.Sin(2*math.Pi*float64(i)/360) + 0.1*math.Sin(float64(i*7))
}

func (f *incidentFeed) at(i int) time.Time { return f.t0.Add(time.Duration(i) * time.Second) }

// send ships the next n points, the one at index spike (if in range) 30
// above normal, in batches of 100.
func (f *incidentFeed) send(t *testing.T, n, spike int) {
	t.Helper()
	for n > 0 {
		k := min(n, 100)
		rs := make([]protocol.Reading, k)
		for j := range rs {
			i := f.n + j
			v := f.value(i)
			if i == spike {
				v += 30
			}
			tm := f.at(i).UnixMicro()
			rs[j] = protocol.Reading{Device: "boiler-1", Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat,
				Value: v, Time: tm, Received: tm + 1000}
		}
		if err := ingestBatch(t.Context(), f.s, f.token, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: f.seq + 1, Readings: rs}); err != nil {
			t.Fatalf("ingest: %v", err)
		}
		f.seq += uint64(k)
		f.n += k
		n -= k
	}
}

// TestIncidentSpanAckResolve (issue 16's done-when): a live cloud fed a
// series with an injected spike through its ingest API; the device page
// lists the incident's span under the chart, open; the test acknowledges
// it there and sees "acknowledged"; normal points follow until the
// incident resolves, and the page shows it resolved (still acknowledged),
// as does the alerts page under its Resolved filter, where a silence is
// then set.
func TestIncidentSpanAckResolve(t *testing.T) {
	allocCtx := chromium.Allocator(t)
	s, tok := startCloud(t, server.StreamConfig{})
	admin := "http://" + s.AdminAddr()

	// 600 normal points ending now, then the spike and ten normal points:
	// the detector learns, then opens a spike incident once the value is
	// back. Later points are a little ahead of the wall clock (not beyond
	// the future margin), so no sweep calls the series silent meanwhile.
	const learn = 600
	f := &incidentFeed{s: s, token: tok, t0: time.Now().Add(-learn * time.Second).Truncate(time.Second)}
	f.send(t, learn, -1)
	f.send(t, 11, learn)
	spikeAt := f.at(learn).UTC()

	var inc monitor.Incident
	pollIncident := func(what string, ok func(monitor.Incident) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var doc struct{ Incidents []monitor.Incident }
			resp, err := http.Get(admin + "/api/v1/incidents?device=boiler-1&metric=temperature")
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range doc.Incidents {
				if in.Start.Equal(spikeAt) && ok(in) {
					inc = in
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; incidents: %+v", what, doc.Incidents)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	pollIncident("the spike's incident to open", func(in monitor.Incident) bool { return in.State == "open" })
	if inc.Kind.String() != "spike" || inc.Expected.High <= inc.Expected.Low || inc.Expected.High > 30 {
		t.Errorf("incident %+v: want a spike with an expected range around 20", inc)
	}

	con := &browserConsole{}
	b := openTab(t, allocCtx, con, chromium.Height, 60*time.Second)
	ctx, wait, text := b.ctx, b.wait, b.text
	screenshot := b.screenshot
	item := fmt.Sprintf(`.chart-card[data-metric="temperature"] li[data-incident=%q]`, inc.ID)

	// The device page: the span listed under the chart, open.
	if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/#/device/boiler-1")); err != nil {
		t.Fatal(err)
	}
	wait("the chart", `window.__tributary.chartLen('temperature') > 0`)
	wait("the incident under the chart", fmt.Sprintf(`document.querySelector(%q)?.dataset.state === 'open'`, item))
	got := text(item)
	startText := spikeAt.Local().Format("2006-01-02 15:04:05")
	if !strings.Contains(got, startText+" → now") || !strings.Contains(got, "spike") || !strings.Contains(got, "open") {
		t.Errorf("incident entry %q: want spike, open, %s → now", got, startText)
	}
	// The span is shaded on the canvas: near the plot's top (above the
	// line), a strip of pixels inside the span is painted, one a minute
	// before it is not (but for a grid line).
	painted := chromium.Eval[[]int](t, ctx, fmt.Sprintf(`(() => {
		const u = window.__tributary.charts.temperature.u, start = %d, y = Math.round(u.bbox.top + 4);
		const strip = (t) => {
			const x = Math.round(u.valToPos(t, 'x', true)), d = u.ctx.getImageData(x - 4, y, 9, 1).data;
			let n = 0;
			for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
			return n;
		};
		return [strip(start + (u.scales.x.max - start) / 2), strip(start - 60)];
	})()`, spikeAt.Unix()))
	if len(painted) != 2 || painted[0] != 9 || painted[1] > 3 {
		t.Errorf("painted pixels of 9 inside the span and before it: %v, want 9 and at most 3", painted)
	}

	screenshot("incident-open.png")

	// Acknowledge it.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(item+` button[data-role="ack"]`))); err != nil {
		t.Fatal(err)
	}
	wait("acknowledged", fmt.Sprintf(`document.querySelector(%q + ' [data-role="acked"]')?.innerText === 'acknowledged'`, item))
	pollIncident("the acknowledgement stored", func(in monitor.Incident) bool { return in.Acknowledged != nil })

	// Normal points until it resolves: the page follows without a reload.
	chromium.Eval[int](t, ctx, `window.__noReload = 1`)
	f.send(t, 150, -1)
	pollIncident("the incident to resolve", func(in monitor.Incident) bool { return in.State == "resolved" })
	wait("the incident resolved on the page", fmt.Sprintf(`document.querySelector(%q)?.dataset.state === 'resolved'`, item))
	got = text(item)
	endText := inc.End.Local().Format("2006-01-02 15:04:05")
	if !strings.Contains(got, startText+" → "+endText) || !strings.Contains(got, "resolved") || !strings.Contains(got, "acknowledged") {
		t.Errorf("resolved entry %q: want resolved, acknowledged, %s → %s", got, startText, endText)
	}
	if chromium.Eval[int](t, ctx, `window.__noReload ?? 0`) != 1 {
		t.Error("the page reloaded")
	}
	screenshot("incident-resolved.png")

	// The alerts page: not among the open incidents, among the resolved.
	if err := chromedp.Do(ctx, chromedp.Navigate(admin+"/#/alerts?state=open")); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`#incidents tr[data-incident=%q]`, inc.ID)
	wait("the open incidents", `document.querySelector('#incidents tbody tr') !== null`)
	if chromium.Eval[bool](t, ctx, fmt.Sprintf(`document.querySelector(%q) !== null`, row)) {
		t.Error("a resolved incident listed under Open")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[data-state="resolved"]`))); err != nil {
		t.Fatal(err)
	}
	wait("the resolved incident", fmt.Sprintf(`document.querySelector(%q)?.innerText.includes('acknowledged')`, row))
	// Silence the device's metric for 1 h from its row.
	chromium.Eval[int](t, ctx, fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = '1h'; s.dispatchEvent(new Event('change')); return 1; })()`,
		row+` select[data-role="silence"]`))
	wait("the silence listed", `document.querySelector('#silences li')?.innerText.includes('boiler-1 / temperature silenced until')`)
	screenshot("incidents.png")
	con.check(t)
}

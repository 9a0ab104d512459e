package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/plan"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv/chromium"
	"github.com/tributary-iot/tributary/protocol"
)

// liveCloud runs a tributary-cloud on the embedded store, its shards
// limited to 50 records/s, with autoscaling as given, and writes records
// as the ingest does (one per device, keyed by the device) at about
// 1,000 a second until the test ends. It returns the admin URL.
func liveCloud(t *testing.T, scale autoscale.Config) string {
	t.Helper()
	cfg := server.Config{Data: t.TempDir(), Listen: "127.0.0.1:0", KinesisListen: "off", Admin: server.AdminConfig{Listen: "127.0.0.1:0"},
		Stream: server.StreamConfig{Shards: 1, WriteRecordsPerSec: 50, Autoscale: scale}}
	s, err := server.New(t.Context(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("cloud: %v", err)
		}
	})
	wg.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for seq := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			es := make([]shardstore.PutEntry, 20)
			now := time.Now().UnixMicro()
			for i := range es {
				seq++
				dev := fmt.Sprintf("node-%02d", seq%40)
				data, err := protocol.AppendRecord(nil, "gw-1", []protocol.Reading{{Device: dev, Name: "temperature", Unit: "Cel",
					Kind: protocol.KindFloat, Value: 21.5, Time: now, Received: now}})
				if err != nil {
					t.Error(err)
					return
				}
				es[i] = shardstore.PutEntry{PartitionKey: dev, Data: data}
			}
			if _, err := s.Store().Put(ctx, "telemetry", es); err != nil && ctx.Err() == nil {
				t.Errorf("put: %v", err)
				return
			}
		}
	})
	return "http://" + s.AdminAddr()
}

// TestStreamPageLiveCloud: on a live cloud whose load is over its one
// shard's limits, the stream page shows each shard's utilisation against
// the limits with its throttles, the autoscaler's reshard (time, action,
// from → to, reason, as the API has it) and the planner's monthly
// estimate on the four engines with the price file's date; with
// autoscaling off, the utilisation and a line saying how to turn it on.
func TestStreamPageLiveCloud(t *testing.T) {
	allocCtx := chromium.Allocator(t)
	prices, err := plan.EmbeddedPrices(plan.DefaultRegion)
	if err != nil {
		t.Fatal(err)
	}
	on := liveCloud(t, autoscale.Config{Enabled: true, MaxShards: 4, Interval: 200 * time.Millisecond, Cooldown: time.Hour})
	off := liveCloud(t, autoscale.Config{Interval: 200 * time.Millisecond})

	con := &browserConsole{}
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(con.listen))
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.EmulateViewport(chromium.Width, 2*chromium.Height)); err != nil {
		t.Fatalf("start %s: %v", chromium.Path, err)
	}
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	wait := func(what, expr string) {
		t.Helper()
		chromium.Wait(t, ctx, what, expr, 20*time.Second)
	}
	text := func(sel string) string {
		t.Helper()
		return chromium.Eval[string](t, ctx, fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel))
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(on+"/#/stream")); err != nil {
		t.Fatal(err)
	}
	wait("the reshard in the history", `document.querySelectorAll('#decisions tr[data-action="update_shard_count"]').length >= 1`)
	wait("a throttled shard", `document.querySelectorAll('#utilisation tr.throttled').length >= 1`)
	wait("the estimates", `document.querySelectorAll('#estimates tr[data-engine]').length === 4`)

	// The decisions as the API has them, fetched by the page's origin.
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch("/api/v1/autoscale").then((r) => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var st server.CapacityStatus
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Decisions) == 0 {
		t.Fatalf("the page shows a reshard the API does not have: %+v", st)
	}
	d := st.Decisions[0]
	hist := text("#decisions")
	for _, want := range []string{"UpdateShardCount", fmt.Sprintf("%d → %d", d.From, d.To), d.Reason,
		d.Time.Local().Format("2006-01-02 15:04:05")} {
		if !strings.Contains(hist, want) {
			t.Errorf("the history lacks %q:\n%s", want, hist)
		}
	}
	if s := text("#autoscale"); !strings.Contains(s, "1–4 shards") || !strings.Contains(s, "UpdateShardCount calls in the last 24 h") {
		t.Errorf("autoscaler card:\n%s", s)
	}
	if u := text("#utilisation"); !strings.Contains(u, "/ 50 rec/s") || !strings.Contains(u, "writes/s") || !strings.Contains(u, "throttled") {
		t.Errorf("utilisation table:\n%s", u)
	}
	est := text("#estimates")
	for _, e := range []string{"Kinesis provisioned", "Kinesis on-demand", "MSK provisioned", "MSK Serverless"} {
		if !strings.Contains(est, e) {
			t.Errorf("the estimates lack %s:\n%s", e, est)
		}
	}
	if !strings.Contains(est, "$") {
		t.Errorf("the estimates show no amount:\n%s", est)
	}
	if p := text("#plan-prices"); !strings.Contains(p, "as of "+prices.AsOf) || !strings.Contains(p, prices.Region) {
		t.Errorf("the price line %q lacks the price file's date %s and region %s", p, prices.AsOf, prices.Region)
	}
	if p := text("#plan"); !strings.Contains(p, "records/s") || !strings.Contains(p, "1 consumer, retention 24 h") {
		t.Errorf("the plan's traffic line:\n%s", p)
	}

	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(t.ArtifactDir(), name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	shot("stream-autoscaled.png")

	if err := chromedp.Do(ctx, chromedp.Navigate(off+"/#/stream")); err != nil {
		t.Fatal(err)
	}
	wait("the autoscaling-off line", `document.querySelector('#autoscale .off-line')?.innerText.includes('stream.autoscale.enabled: true')`)
	wait("the utilisation without the autoscaler", `document.querySelectorAll('#utilisation tr.throttled').length === 1`)
	if s := text("#autoscale"); !strings.Contains(s, "Autoscaling is off") || strings.Contains(s, "UpdateShardCount") {
		t.Errorf("autoscaler card with autoscaling off:\n%s", s)
	}
	shot("stream-autoscale-off.png")
	con.check(t)
}

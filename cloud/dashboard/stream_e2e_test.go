package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/plan"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/testenv/chromium"
	"github.com/tributary-iot/tributary/protocol"
)

// liveCloud runs a tributary-cloud with the given stream settings and
// writes records as the ingest does (one per device, keyed by the device)
// at about 1,000 a second until the test ends: straight into the embedded
// store, or on Kafka through the ingest API. It returns the admin URL.
func liveCloud(t *testing.T, stream server.StreamConfig) string {
	t.Helper()
	s, tok := startCloud(t, stream)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() }) // before the cloud stops
	wg.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for seq := uint64(1); ctx.Err() == nil; seq += 20 {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			rs := make([]protocol.Reading, 20)
			now := time.Now().UnixMicro()
			for i := range rs {
				rs[i] = protocol.Reading{Device: fmt.Sprintf("node-%02d", (seq+uint64(i))%40), Name: "temperature", Unit: "Cel",
					Kind: protocol.KindFloat, Value: 21.5, Time: now, Received: now}
			}
			if err := write(ctx, s, tok, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: seq, Readings: rs}); err != nil && ctx.Err() == nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	})
	return "http://" + s.AdminAddr()
}

// startCloud runs a tributary-cloud (data folder and ports of its own,
// the admin listener on loopback without sign-in) until the test ends,
// and returns it with an ingest token of gateway gw-1.
func startCloud(t *testing.T, stream server.StreamConfig) (*server.Server, string) {
	t.Helper()
	cfg := server.Config{Data: t.TempDir(), Listen: "127.0.0.1:0", KinesisListen: "off", Admin: server.AdminConfig{Listen: "127.0.0.1:0"}, Stream: stream}
	s, err := server.New(t.Context(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Tokens().Issue("gw-1")
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
	return s, tok
}

// write stores b's readings as one record per reading: into the embedded
// store (throttled records are dropped: the load is what matters), or
// through the ingest API.
func write(ctx context.Context, s *server.Server, token string, b *protocol.Batch) error {
	if st := s.Store(); st != nil {
		es := make([]shardstore.PutEntry, len(b.Readings))
		for i, r := range b.Readings {
			data, err := protocol.AppendRecord(nil, b.Gateway, []protocol.Reading{r})
			if err != nil {
				return err
			}
			es[i] = shardstore.PutEntry{PartitionKey: r.Device, Data: data}
		}
		_, err := st.Put(ctx, "telemetry", es)
		return err
	}
	return ingestBatch(ctx, s, token, b)
}

// ingestBatch posts b to the cloud's ingest API as a gateway's uplink
// does.
func ingestBatch(ctx context.Context, s *server.Server, token string, b *protocol.Batch) error {
	raw, err := protocol.AppendBatch(nil, b)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.Addr()+"/v1/ingest", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ingest: %s", resp.Status)
	}
	return nil
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
	on := liveCloud(t, server.StreamConfig{Shards: 1, WriteRecordsPerSec: 50,
		Autoscale: autoscale.Config{Enabled: true, MaxShards: 4, Interval: 200 * time.Millisecond, Cooldown: time.Hour}})
	off := liveCloud(t, server.StreamConfig{Shards: 1, WriteRecordsPerSec: 50, Autoscale: autoscale.Config{Interval: 200 * time.Millisecond}})

	con := &browserConsole{}
	b := openTab(t, allocCtx, con, 2*chromium.Height, 60*time.Second)
	ctx, wait, text := b.ctx, b.wait, b.text

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

	shot := b.screenshot
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

// TestStreamPageKafka: on the kafka backend the stream page says why the
// topic is not repartitioned and shows its partitions' headroom, from a
// live cloud whose uploads go to a broker.
func TestStreamPageKafka(t *testing.T) {
	allocCtx := chromium.Allocator(t)
	k := testenv.StartKafka(t, testenv.KafkaOptions{})
	url := liveCloud(t, server.StreamConfig{Backend: server.BackendKafka, Kafka: server.KafkaConfig{Brokers: []string{k.Addr}, Partitions: 3}})
	con := &browserConsole{}
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(con.listen))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/#/stream")); err != nil {
		t.Fatal(err)
	}
	chromium.Wait(t, ctx, "the partition headroom", `/headroom [0-9,.]+×/.test(document.querySelector('#partitions')?.innerText ?? '')`, 20*time.Second)
	s := chromium.Eval[string](t, ctx, `document.querySelector('#autoscale').innerText`)
	for _, want := range []string{"does not repartition Kafka topics", "Topic telemetry: 3 partitions", "per-partition quota", "partitions are not added"} {
		if !strings.Contains(s, want) {
			t.Errorf("autoscaler card lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Autoscaling is off") {
		t.Errorf("autoscaler card on Kafka:\n%s", s)
	}
	chromium.Wait(t, ctx, "the estimates", `document.querySelectorAll('#estimates tr[data-engine]').length === 4`, 20*time.Second)
	con.check(t)
}

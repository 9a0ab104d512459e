package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/alerts"
	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// storeBackend writes to a real shard store; failFirst refuses that many
// calls first (a throttled or unavailable stream).
type storeBackend struct {
	st        *shardstore.Store
	failFirst atomic.Int32
}

func (b *storeBackend) Put(ctx context.Context, stream string, es []ingest.Entry) ([]ingest.Result, error) {
	if b.failFirst.Add(-1) >= 0 {
		return nil, errors.New("stream unavailable")
	}
	in := make([]shardstore.PutEntry, len(es))
	for i, e := range es {
		in[i] = shardstore.PutEntry{PartitionKey: e.PartitionKey, Data: e.Data}
	}
	res, err := b.st.Put(ctx, stream, in)
	if err != nil {
		return nil, err
	}
	out := make([]ingest.Result, len(res))
	for i, r := range res {
		out[i] = ingest.Result{ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, Err: r.Err}
	}
	return out, nil
}

func openStore(t *testing.T) *shardstore.Store {
	t.Helper()
	st, err := shardstore.Open(filepath.Join(t.TempDir(), "streams.db"), shardstore.Options{TrimInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateStream(context.Background(), "alerts", 1); err != nil {
		t.Fatal(err)
	}
	return st
}

func alert(dev string, i int) anomaly.Alert {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return anomaly.Alert{ID: fmt.Sprintf("%016x", i), Event: anomaly.Event(i % 3), Device: dev, Metric: "temp",
		Time: start.Add(time.Duration(i) * time.Second), Score: 0.9, Kind: anomaly.KindSpike, Value: float64(i),
		Peak: 0.95, Start: start, Expected: anomaly.Range{Low: -1, High: 1}}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamSinkRetriesAndWritesJSON(t *testing.T) {
	st := openStore(t)
	be := &storeBackend{st: st}
	be.failFirst.Store(2)
	d, err := alerts.New(alerts.Config{Stream: "alerts"}, alerts.Options{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	for i := range 10 {
		d.Send(alert("dev-1", i))
	}
	eventually(t, "10 alerts in the stream", func() bool { return d.Stats().StreamSent == 10 })
	cancel()
	<-done
	if s := d.Stats(); s.StreamFailures < 2 || s.StreamDropped != 0 {
		t.Errorf("stats %+v: want 2 failed attempts, nothing dropped", s)
	}
	info, err := st.DescribeStream("alerts")
	if err != nil {
		t.Fatal(err)
	}
	pos, err := st.Seek("alerts", info.Shards[0].ShardID, shardstore.Start{Type: shardstore.TrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Read(context.Background(), pos, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 10 {
		t.Fatalf("%d records in the alerts stream, want 10", len(got.Records))
	}
	for i, r := range got.Records {
		var a anomaly.Alert
		if err := json.Unmarshal(r.Data, &a); err != nil {
			t.Fatal(err)
		}
		if a != alert("dev-1", i) || r.PartitionKey != "dev-1" {
			t.Errorf("record %d = %+v key %q", i, a, r.PartitionKey)
		}
	}
}

func TestWebhookRetriesServerErrorsNotClientErrors(t *testing.T) {
	var mu sync.Mutex
	var got []anomaly.Alert
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		var a anomaly.Alert
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &a); err != nil || r.Header.Get("Content-Type") != "application/json" || r.Header.Get(alerts.SignatureHeader) != "" {
			t.Errorf("webhook body %q: %v", b, err)
		}
		switch {
		case a.Device == "bad":
			w.WriteHeader(http.StatusBadRequest)
		case n == 1:
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails
		default:
			mu.Lock()
			got = append(got, a)
			mu.Unlock()
		}
	}))
	defer srv.Close()
	d := runDispatcher(t, alerts.Config{WebhookURL: srv.URL, WebhookRetries: 2}, alerts.Options{})
	d.Send(alert("dev-1", 1))
	d.Send(alert("bad", 2))
	d.Send(alert("dev-2", 3))
	eventually(t, "two alerts delivered, one refused", func() bool {
		s := d.Stats()
		return s.WebhookSent == 2 && s.WebhookFailed == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Device != "dev-1" || got[1].Device != "dev-2" {
		t.Errorf("webhook got %+v", got)
	}
	if n := calls.Load(); n != 4 { // dev-1 twice, bad once (400 is not retried), dev-2 once
		t.Errorf("%d webhook calls, want 4", n)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	d, err := alerts.New(alerts.Config{WebhookURL: srv.URL, QueueSize: 4}, alerts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Not running: nothing drains the queue.
	for i := range 10 {
		d.Send(alert("dev-1", i))
	}
	if s := d.Stats(); s.Received != 10 || s.WebhookDropped != 6 {
		t.Errorf("stats %+v: want 10 received, 6 dropped", s)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []alerts.Config{{WebhookURL: "ftp://x"}, {WebhookURL: "hooks.example.com/x"}, {QueueSize: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if _, err := alerts.New(alerts.Config{Stream: "alerts"}, alerts.Options{}); err == nil {
		t.Error("a stream without a backend was accepted")
	}
}

// A silenced alert is streamed but not posted to the webhook.
func TestSendSilencedSkipsWebhook(t *testing.T) {
	var mu sync.Mutex
	var hooked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a anomaly.Alert
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &a)
		mu.Lock()
		hooked = append(hooked, a.Device)
		mu.Unlock()
	}))
	defer srv.Close()
	b := &storeBackend{st: openStore(t)}
	d := runDispatcher(t, alerts.Config{WebhookURL: srv.URL, Stream: "alerts"}, alerts.Options{Backend: b})
	d.SendSilenced(alert("quiet", 1))
	d.Send(alert("loud", 2))
	eventually(t, "both streamed, one posted", func() bool {
		s := d.Stats()
		return s.StreamSent == 2 && s.WebhookSent == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(hooked) != 1 || hooked[0] != "loud" {
		t.Errorf("webhook got %v, want only loud", hooked)
	}
	if s := d.Stats(); s.Received != 2 || s.WebhookDropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

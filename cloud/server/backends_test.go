package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/protocol"
)

func openStore(t *testing.T, opts shardstore.Options) *shardstore.Store {
	t.Helper()
	st, err := shardstore.Open(filepath.Join(t.TempDir(), "streams.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateStream(context.Background(), "telemetry", 2); err != nil {
		t.Fatal(err)
	}
	return st
}

func entries(n int) []ingest.Entry {
	es := make([]ingest.Entry, n)
	for i := range es {
		es[i] = ingest.Entry{PartitionKey: fmt.Sprintf("dev-%d", i), Data: []byte(fmt.Sprintf("record %d", i))}
	}
	return es
}

// The shard store adapter keeps the ingest.Backend contract.
func TestStoreBackend(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, shardstore.Options{Throughput: shardstore.Throughput{WriteRecordsPerSec: 10}})
	be := server.StoreBackend{Store: st}

	res, err := be.Put(ctx, "telemetry", entries(8))
	if err != nil || len(res) != 8 {
		t.Fatalf("%v %v", res, err)
	}
	for _, r := range res {
		if r.Err != nil || r.ShardID == "" || r.SequenceNumber == "" {
			t.Errorf("result %+v", r)
		}
	}
	// Past the shards' capacity: ErrThrottled per entry, the rest written.
	res, err = be.Put(ctx, "telemetry", entries(60))
	checkThrottled(t, res, err)
	// A refused call wrote nothing: not throttled, not unknown.
	res, err = be.Put(ctx, "nope", entries(2))
	if err != nil || len(res) != 2 || res[0].Err == nil || errors.Is(res[0].Err, ingest.ErrOutcomeUnknown) || errors.Is(res[0].Err, ingest.ErrThrottled) {
		t.Errorf("unknown stream: %+v %v", res, err)
	}
	st.Close()
	res, _ = be.Put(ctx, "telemetry", entries(1))
	if res[0].Err == nil || errors.Is(res[0].Err, ingest.ErrOutcomeUnknown) {
		t.Errorf("closed store: %+v", res)
	}
}

// The ingest over the real shard store: records land, keyed by device,
// readable in order.
func TestIngestOverStore(t *testing.T) {
	st := openStore(t, shardstore.Options{})
	rs := readings(500, 5, t0)
	b := &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: 1, Readings: rs}
	in, err := ingest.New(context.Background(), ingest.Options{Backend: server.StoreBackend{Store: st}, Tokens: verifier{}, Path: filepath.Join(t.TempDir(), "ingest.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	srv := httptest.NewServer(in)
	defer srv.Close()
	for range 2 {
		postBatch(t, srv.URL, b)
	}
	info, err := st.DescribeStream("telemetry")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sh := range info.Shards {
		pos, err := st.Seek("telemetry", sh.ShardID, shardstore.Start{Type: shardstore.TrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		res, err := st.Read(context.Background(), pos, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Records {
			rec, err := protocol.DecodeRecord(r.Data)
			if err != nil || rec.Device != r.PartitionKey {
				t.Fatalf("%v %v", rec, err)
			}
			n += len(rec.Readings)
		}
	}
	if n != 500 {
		t.Errorf("%d readings in the store, want 500 (once)", n)
	}
}

// The Kinesis adapter against our own Kinesis API: throttling reaches the
// ingest as ErrThrottled once the call's time is up.
func TestKinesisBackend(t *testing.T) {
	st := openStore(t, shardstore.Options{Throughput: shardstore.Throughput{WriteRecordsPerSec: 10}})
	api, err := kinesisapi.New(st, kinesisapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api)
	defer hs.Close()
	kb, err := kinesisbackend.New(context.Background(), kinesisbackend.Config{
		Endpoint: hs.URL, Region: "us-east-1", AccessKeyID: "AKID", SecretAccessKey: "secret",
		ShardRecordsPerSec: -1, ShardBytesPerSec: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer kb.Close()
	be := server.KinesisBackend{Backend: kb, Timeout: 300 * time.Millisecond}
	res, err := be.Put(context.Background(), "telemetry", entries(5))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || r.SequenceNumber == "" {
			t.Errorf("%+v", r)
		}
	}
	res, err = be.Put(context.Background(), "telemetry", entries(200))
	checkThrottled(t, res, err)
}

// checkThrottled checks the results of a Put past the shards' capacity:
// some entries written, the others throttled (ingest.ErrThrottled).
func checkThrottled(t *testing.T, res []ingest.Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var ok, throttled int
	for _, r := range res {
		switch {
		case r.Err == nil:
			ok++
		case errors.Is(r.Err, ingest.ErrThrottled):
			throttled++
		default:
			t.Errorf("unexpected %v", r.Err)
		}
	}
	if ok == 0 || throttled == 0 {
		t.Errorf("%d written, %d throttled", ok, throttled)
	}
}

type verifier struct{}

func (verifier) Verify(tok string) (string, bool) { return "gw-1", tok == "t" }

// Scan reads back exactly the records that arrived in the range, on every
// shard: what the ingest's crash recovery relies on.
func TestStoreBackendScan(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := shardstore.Open(filepath.Join(t.TempDir(), "streams.db"), shardstore.Options{Now: clock, TrimInterval: -1,
		Throughput: shardstore.Throughput{Unlimited: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.CreateStream(ctx, "s", 3); err != nil {
		t.Fatal(err)
	}
	b := server.StoreBackend{Store: st}
	put := func(tag string) {
		var es []ingest.Entry
		for i := range 12 {
			es = append(es, ingest.Entry{PartitionKey: fmt.Sprintf("dev-%d", i), Data: []byte(tag)})
		}
		if _, err := b.Put(ctx, "s", es); err != nil {
			t.Fatal(err)
		}
	}
	put("before")
	now = now.Add(time.Minute)
	from := now
	put("in")
	now = now.Add(time.Minute)
	to := now
	put("after")
	got := map[string]int{}
	if err := b.Scan(ctx, "s", from, to, func(d []byte) error { got[string(d)]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["in"] != 12 {
		t.Errorf("scan found %v, want the 12 records of the range", got)
	}
}

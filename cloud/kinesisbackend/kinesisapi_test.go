package kinesisbackend_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/cloud/shardstore/shardstoretest"
)

// startKinesisAPI serves our own Kinesis API (cloud/kinesisapi over a
// cloud/shardstore in a temp dir) on 127.0.0.1:0.
func startKinesisAPI(t *testing.T, so shardstore.Options) string {
	t.Helper()
	srv, err := kinesisapi.New(shardstoretest.Open(t, so), kinesisapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

// TestKinesisAPI runs the interop suite against our own Kinesis API, which
// enforces the Kinesis per-shard write limits.
func TestKinesisAPI(t *testing.T) {
	runInterop(t, startKinesisAPI(t, shardstore.Options{}))
}

// TestKinesisAPIRealThrottling lets the store throttle for real (shards
// of 200 records/s, no client-side limit) and checks that Put retries only
// the throttled entries and keeps each key's order.
func TestKinesisAPIRealThrottling(t *testing.T) {
	endpoint := startKinesisAPI(t, shardstore.Options{Throughput: shardstore.Throughput{WriteRecordsPerSec: 200}})
	admin := adminClient(t, endpoint)
	stream := createStream(t, admin, 4)
	b, err := kinesisbackend.New(t.Context(), kinesisbackend.Config{
		Stream: stream, Endpoint: endpoint, AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret",
		ShardRecordsPerSec: -1, ShardBytesPerSec: -1,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	es := makeEntries("dev-", 100, 16, 100) // 1,600 entries: ~2 s at 4 × 200/s
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := b.Put(ctx, "", es)
	checkAllWritten(t, res, err, len(es))
	recs := readStream(t, admin, stream)
	checkExactlyOnceInOrder(t, byKey(recs), wantCounts(es))
	checkResults(t, b, stream, es, res, recs)
	c := b.CountsForTest()
	t.Logf("counters %+v", c)
	if c.Throttles == 0 || c.Retries != c.Throttles {
		t.Errorf("counters %+v: want throttling, and exactly one retry per throttled entry", c)
	}
}

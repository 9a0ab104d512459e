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
	checkShardMetrics(t, b, stream, recs, int(c.Throttles))
}

// checkShardMetrics checks that ShardMetrics counts, per open shard, the
// records and bytes read back from it, and every throttled entry.
func checkShardMetrics(t *testing.T, b *kinesisbackend.Backend, stream string, recs []streamRecord, throttles int) {
	t.Helper()
	ms, err := b.ShardMetrics(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	wantRecs, wantBytes := map[string]uint64{}, map[string]uint64{}
	for _, r := range recs {
		wantRecs[r.shard]++
		wantBytes[r.shard] += uint64(len(r.key) + len(r.data))
	}
	var throttled uint64
	for _, m := range ms {
		if m.IncomingRecords != wantRecs[m.ShardID] || m.IncomingBytes != wantBytes[m.ShardID] {
			t.Errorf("%s: counted %d records, %d bytes; the shard holds %d, %d", m.ShardID, m.IncomingRecords, m.IncomingBytes, wantRecs[m.ShardID], wantBytes[m.ShardID])
		}
		if m.StartingHashKey == "" || m.EndingHashKey == "" {
			t.Errorf("%s: no hash key range: %+v", m.ShardID, m)
		}
		throttled += m.WriteProvisionedThroughputExceeded
	}
	if len(ms) != len(wantRecs) || throttled != uint64(throttles) {
		t.Errorf("%d shards counted (%d hold records), %d throttles counted of %d", len(ms), len(wantRecs), throttled, throttles)
	}
}

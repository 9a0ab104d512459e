package consumer_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/metrics/metricstest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

var unlimited = shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}

// checkInOrder fails unless every device's values are exactly 0..n-1 in
// order (each once).
func checkInOrder(t *testing.T, col *collector, devs []string, n int) {
	t.Helper()
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, d := range devs {
		got := col.values[d]
		if len(got) != n {
			t.Errorf("%s: %d values, want %d", d, len(got), n)
			continue
		}
		for i, v := range got {
			if v != i {
				t.Errorf("%s: value %d at position %d (out of order or repeated): %v", d, v, i, got)
				break
			}
		}
	}
}

func TestConsumesEverythingOnce(t *testing.T) {
	e := start(t, unlimited, kinesisapi.Options{}, 4)
	devs := devices(40)
	want := map[string]string{}
	for n := range 15 {
		for k, v := range e.put(t, devs, n) {
			want[k] = v
		}
	}
	reg := prometheus.NewRegistry()
	col := newCollector()
	cfg := config(t, "")
	cfg.Limit = 50
	r := run(t, e.client, cfg, col.handle, consumer.Options{Registerer: reg})
	for n := 15; n < 25; n++ { // and some while it runs
		for k, v := range e.put(t, devs, n) {
			want[k] = v
		}
	}
	testenv.WaitFor(t, "every record committed", 20*time.Second, func() bool { return r.c.Stats().Records == uint64(len(want)) })
	waitCommitted(t, e, r) // nothing more can come
	st := r.c.Stats()
	r.stop(t)

	for seq, n := range col.seen {
		if _, ok := want[seq]; !ok || n != 1 {
			t.Errorf("record %s delivered %d times (known %v)", seq, n, ok)
		}
	}
	// Natural keys: exactly the readings that were written, once each.
	if len(col.keys) != 2*len(want) {
		t.Errorf("%d natural keys, want %d", len(col.keys), 2*len(want))
	}
	for _, d := range devs {
		for n := range 25 {
			for _, name := range []string{"seq", "temp"} {
				if k := (protocol.Key{Device: d, Name: name, Time: base + int64(n)*1e6}); col.keys[k] != 1 {
					t.Fatalf("key %+v seen %d times", k, col.keys[k])
				}
			}
		}
	}
	checkInOrder(t, col, devs, 25)
	if st.Records != uint64(len(want)) || st.Readings != 2*uint64(len(want)) || st.DecodeErrors != 0 || st.HandlerErrors != 0 {
		t.Errorf("stats %+v", st)
	}
	if len(st.Shards) != 4 {
		t.Errorf("stats shards: %+v", st.Shards)
	}
	if got := metricstest.Value(t, reg, "tributary_consumer_records_total"); got != float64(len(want)) {
		t.Errorf("records_total %v", got)
	}
}

func TestRestartResumesFromCheckpoints(t *testing.T) {
	e := start(t, unlimited, kinesisapi.Options{}, 4)
	devs := devices(20)
	want := map[string]string{}
	for n := range 40 {
		for k, v := range e.put(t, devs, n) {
			want[k] = v
		}
	}
	path := config(t, "").CheckpointPath
	cfg := config(t, path)
	cfg.Limit = 20
	const limit = 20

	// First run: "killed" at its tenth batch. From then on every batch is
	// processed (its side effects happen: the collector records it) but
	// not committed, as when a process dies between handling a batch and
	// writing its checkpoint.
	first := newCollector()
	var calls atomic.Int32
	stopped := make(chan struct{})
	var once sync.Once
	h1 := func(ctx context.Context, b consumer.Batch) error {
		first.handle(ctx, b)
		if calls.Add(1) >= 10 {
			once.Do(func() { close(stopped) }) // the test cancels the run now
			return errors.New("killed")
		}
		return nil
	}
	r1 := run(t, e.client, cfg, h1, consumer.Options{})
	<-stopped
	r1.stop(t)
	if n := first.count(); n == 0 || n >= len(want)/2 {
		t.Fatalf("first run committed %d of %d records: want a part", n, len(want))
	}

	// Second run with the same checkpoint file.
	second := newCollector()
	r2 := run(t, e.client, cfg, second.handle, consumer.Options{})
	seenAll := func() bool {
		first.mu.Lock()
		defer first.mu.Unlock()
		second.mu.Lock()
		defer second.mu.Unlock()
		for seq := range want {
			if first.seen[seq] == 0 && second.seen[seq] == 0 {
				return false
			}
		}
		return true
	}
	testenv.WaitFor(t, "every record over both runs", 20*time.Second, seenAll)
	waitCommitted(t, e, r2)
	r2.stop(t)

	again := 0
	for seq := range second.seen {
		if first.seen[seq] > 0 {
			again++
		}
		if second.seen[seq] != 1 {
			t.Errorf("%s delivered %d times in the second run", seq, second.seen[seq])
		}
	}
	t.Logf("first run %d, second run %d, re-delivered %d (of %d records)", first.count(), second.count(), again, len(want))
	if again == 0 || again > 4*limit {
		t.Errorf("%d records delivered again: want some (the uncommitted batches), at most one batch (%d) per shard", again, limit)
	}
	// Checkpoints now hold each shard's last record.
	cps, err := consumer.OpenCheckpoints(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cps.Close()
	all, err := cps.All("test", stream)
	if err != nil || len(all) != 4 {
		t.Fatalf("checkpoints %v %v", all, err)
	}
	last := map[string]string{}
	for seq := range want {
		sh := shardOf(t, seq)
		if seq > last[sh] {
			last[sh] = seq
		}
	}
	for sh, cp := range all {
		if cp.SequenceNumber != last[sh] || cp.Ended {
			t.Errorf("checkpoint %s = %+v, want %s", sh, cp, last[sh])
		}
	}
}

// shardOf returns the shard id encoded in a store sequence number.
func shardOf(t *testing.T, seq string) string {
	t.Helper()
	s, err := shardstore.ParseSequenceNumber(seq)
	if err != nil {
		t.Fatal(err)
	}
	return shardstore.ShardID(s.Shard)
}

// TestReshardKeepsDeviceOrder writes values 0..n-1 for every device while
// a shard is split and its children merged again; a slow handler keeps a
// backlog in the parents, so a consumer that read children early would
// mix the order.
func TestReshardKeepsDeviceOrder(t *testing.T) {
	e := start(t, unlimited, kinesisapi.Options{}, 2)
	devs := devices(16)
	col := newCollector()
	col.hook = func(consumer.Batch) error { time.Sleep(2 * time.Millisecond); return nil }
	cfg := config(t, "")
	cfg.Limit = 5
	cfg.ListInterval = 20 * time.Millisecond // discover children fast: the order must not depend on luck
	r := run(t, e.client, cfg, col.handle, consumer.Options{})
	ctx := context.Background()
	const total = 150
	for n := range total {
		switch n {
		case 50:
			if err := e.store.SplitShard(ctx, stream, "shardId-000000000000", midpoint(t, e.store, "shardId-000000000000")); err != nil {
				t.Fatal(err)
			}
		case 100:
			if err := e.store.MergeShards(ctx, stream, "shardId-000000000002", "shardId-000000000003"); err != nil {
				t.Fatal(err)
			}
		}
		e.put(t, devs, n)
		time.Sleep(time.Millisecond)
	}
	testenv.WaitFor(t, "every record", 30*time.Second, func() bool { return col.count() == total*len(devs) })
	waitCommitted(t, e, r)
	st := r.c.Stats()
	r.stop(t)
	checkInOrder(t, col, devs, total)
	if st.ShardsFinished != 3 {
		t.Errorf("finished %d shards, want 3 (the parent and both children of the split)", st.ShardsFinished)
	}
	// The test is only meaningful if devices moved through the lineage.
	moved := 0
	for _, d := range devs {
		col.mu.Lock()
		if col.shards[d]["shardId-000000000000"] && col.shards[d]["shardId-000000000004"] {
			moved++
		}
		col.mu.Unlock()
	}
	if moved == 0 {
		t.Fatal("no device went through parent, child and merged shard")
	}
}

func TestReshardBeforeStartReadsParentsFirst(t *testing.T) {
	// All resharding done before the consumer starts: the children are
	// ready in the first listing but must wait for their parents.
	e := start(t, unlimited, kinesisapi.Options{}, 1)
	devs := devices(8)
	ctx := context.Background()
	for n := range 60 {
		switch n {
		case 20:
			if err := e.store.SplitShard(ctx, stream, "shardId-000000000000", midpoint(t, e.store, "shardId-000000000000")); err != nil {
				t.Fatal(err)
			}
		case 40:
			if err := e.store.MergeShards(ctx, stream, "shardId-000000000001", "shardId-000000000002"); err != nil {
				t.Fatal(err)
			}
		}
		e.put(t, devs, n)
	}
	col := newCollector()
	cfg := config(t, "")
	cfg.Limit = 7
	r := run(t, e.client, cfg, col.handle, consumer.Options{})
	testenv.WaitFor(t, "every record", 20*time.Second, func() bool { return col.count() == 60*len(devs) })
	r.stop(t)
	checkInOrder(t, col, devs, 60)
}

func TestThrottledReadsBackOff(t *testing.T) {
	so := shardstore.Options{Throughput: shardstore.Throughput{
		WriteBytesPerSec: -1, WriteRecordsPerSec: -1,
		ReadsPerSec: 3, ReadBytesPerSec: 16 << 10,
	}}
	// The SDK's own retries off, so that the consumer's backoff is what
	// is tested (with them, the SDK absorbs most throttles first).
	e := start(t, so, kinesisapi.Options{}, 2, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	devs := devices(10)
	for n := range 30 {
		e.put(t, devs, n)
	}
	col := newCollector()
	cfg := config(t, "")
	cfg.PollInterval = time.Millisecond // far over 3 reads/s
	cfg.MaxBackoff = 300 * time.Millisecond
	cfg.Limit = 10
	r := run(t, e.client, cfg, col.handle, consumer.Options{})
	testenv.WaitFor(t, "every record", 30*time.Second, func() bool { return r.c.Stats().Records == 300 })
	st := r.c.Stats()
	r.stop(t)
	checkInOrder(t, col, devs, 30)
	if st.Throttles == 0 {
		t.Error("no throttling seen")
	}
	if st.Records != 300 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("throttles %d", st.Throttles)
}

func TestCorruptRecordIsCountedAndSkipped(t *testing.T) {
	e := start(t, unlimited, kinesisapi.Options{}, 1)
	devs := devices(3)
	e.put(t, devs, 0)
	res, err := e.store.Put(context.Background(), stream, []shardstore.PutEntry{
		{PartitionKey: "dev-00", Data: []byte("not a SenML pack")},
		{PartitionKey: "dev-01", Data: []byte(`[{"bn":"dev-01:","n":"seq","v":1}]`)}, // JSON, not the stream's CBOR
	})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatal(err, res)
	}
	e.put(t, devs, 1)
	var mu sync.Mutex
	var bad []string
	col := newCollector()
	cfg := config(t, "")
	r := run(t, e.client, cfg, col.handle, consumer.Options{OnBadRecord: func(shard string, rec consumer.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if shard != "shardId-000000000000" || rec.SequenceNumber == "" || !errors.Is(err, protocol.ErrBadRecord) {
			t.Errorf("OnBadRecord(%s, %+v, %v)", shard, rec, err)
		}
		bad = append(bad, rec.SequenceNumber)
	}})
	testenv.WaitFor(t, "good records", 10*time.Second, func() bool { return col.count() == 6 })
	testenv.WaitFor(t, "checkpoint past the bad records", 10*time.Second, func() bool {
		s := r.c.Stats()
		return len(s.Shards) == 1 && s.Shards[0].Checkpoint != "" && s.Shards[0].Checkpoint >= res[1].SequenceNumber
	})
	st := r.c.Stats()
	r.stop(t)
	checkInOrder(t, col, devs, 2)
	mu.Lock()
	defer mu.Unlock()
	if st.DecodeErrors != 2 || !slices.Equal(bad, []string{res[0].SequenceNumber, res[1].SequenceNumber}) {
		t.Errorf("decode errors %d, bad %v", st.DecodeErrors, bad)
	}
}

func TestHandlerErrorRetriesSameBatch(t *testing.T) {
	e := start(t, unlimited, kinesisapi.Options{}, 1)
	devs := devices(5)
	for n := range 10 {
		e.put(t, devs, n)
	}
	col := newCollector()
	var failures atomic.Int32
	var firstBatch []string
	var mu sync.Mutex
	col.hook = func(b consumer.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		var seqs []string
		for _, r := range b.Records {
			seqs = append(seqs, r.SequenceNumber)
		}
		if failures.Load() < 3 {
			if firstBatch != nil && !slices.Equal(seqs, firstBatch) {
				t.Errorf("retried batch differs: %v, then %v", firstBatch, seqs)
			}
			firstBatch = seqs
			failures.Add(1)
			return errors.New("downstream unavailable")
		}
		return nil
	}
	cfg := config(t, "")
	cfg.Limit = 7
	r := run(t, e.client, cfg, col.handle, consumer.Options{})
	testenv.WaitFor(t, "every record", 10*time.Second, func() bool { return col.count() == 50 })
	st := r.c.Stats()
	r.stop(t)
	checkInOrder(t, col, devs, 10)
	if st.HandlerErrors != 3 {
		t.Errorf("handler errors %d", st.HandlerErrors)
	}
}

func TestExpiredIteratorIsReacquired(t *testing.T) {
	// Iterators live 30 ms and the handler takes 60 ms: every iterator
	// has expired by the time it is used.
	e := start(t, unlimited, kinesisapi.Options{IteratorTTL: 30 * time.Millisecond}, 1)
	devs := devices(4)
	for n := range 10 {
		e.put(t, devs, n)
	}
	col := newCollector()
	col.hook = func(consumer.Batch) error { time.Sleep(60 * time.Millisecond); return nil }
	cfg := config(t, "")
	cfg.Limit = 8
	r := run(t, e.client, cfg, col.handle, consumer.Options{})
	testenv.WaitFor(t, "every record", 20*time.Second, func() bool { return col.count() == 40 })
	st := r.c.Stats()
	r.stop(t)
	checkInOrder(t, col, devs, 10)
	if st.ExpiredIterators == 0 {
		t.Error("no iterator expired")
	}
}

func TestStartAtLatest(t *testing.T) {
	e := start(t, unlimited, kinesisapi.Options{}, 2)
	devs := devices(6)
	e.put(t, devs, 0) // before the consumer: not read
	col := newCollector()
	cfg := config(t, "")
	cfg.StartAt = consumer.Latest
	r := run(t, e.client, cfg, col.handle, consumer.Options{})
	testenv.WaitFor(t, "both shards' iterators acquired", 10*time.Second, func() bool { return e.iterators.Load() >= 2 })
	for n := 1; n < 5; n++ {
		e.put(t, devs, n)
	}
	testenv.WaitFor(t, "new records", 10*time.Second, func() bool { return col.count() == 4*len(devs) })
	r.stop(t)
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, d := range devs {
		if got := col.values[d]; !slices.Equal(got, []int{1, 2, 3, 4}) {
			t.Errorf("%s: %v", d, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := consumer.Config{Stream: "telemetry", Application: "monitor", CheckpointPath: "x"}
	for _, tc := range []struct {
		name string
		edit func(*consumer.Config)
		want string // in the error; "" for none
	}{
		{"defaults", func(*consumer.Config) {}, ""},
		{"latest", func(c *consumer.Config) { c.StartAt = consumer.Latest }, ""},
		{"no stream", func(c *consumer.Config) { c.Stream = "" }, "stream"},
		{"bad stream", func(c *consumer.Config) { c.Stream = "a/b" }, "stream"},
		{"no application", func(c *consumer.Config) { c.Application = "" }, "application"},
		{"start", func(c *consumer.Config) { c.StartAt = "AT_TIMESTAMP" }, "start_at"},
		{"limit", func(c *consumer.Config) { c.Limit = 10_001 }, "limit"},
		{"negative poll", func(c *consumer.Config) { c.PollInterval = -1 }, "poll_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := consumer.New(nil, good, nil, consumer.Options{}); err == nil {
		t.Error("New without client or handler succeeded")
	}
}

package shardstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// TestShardMetrics checks the CloudWatch-style counters against what was
// written, throttled and read, on a fake clock with small write limits,
// and their Prometheus form.
func TestShardMetrics(t *testing.T) {
	clk := newClock()
	s := open(t, shardstore.Options{Now: clk.Now, Throughput: shardstore.Throughput{WriteRecordsPerSec: 10, ReadsPerSec: 1}})
	mustCreate(t, s, "m", 1)
	ctx := context.Background()
	res, err := s.Put(ctx, "m", entries("a", 15, 100)) // a second's worth (10) fits, 5 are refused
	if err != nil {
		t.Fatal(err)
	}
	stored, bytes := 0, uint64(0)
	for i, r := range res {
		if r.Err == nil {
			stored++
			bytes += uint64(len("a-key-") + len(strconv.Itoa(i)) + 100)
		}
	}
	if stored != 10 {
		t.Fatalf("stored %d of 15 with a limit of 10 records/s", stored)
	}
	clk.Advance(3 * time.Second)
	pos, err := s.Seek("m", "shardId-000000000000", shardstore.Start{Type: shardstore.TrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := s.Read(ctx, pos, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, rr.Next, 4); err == nil { // the second read in the same second is refused
		t.Fatal("second read within the second was not throttled")
	}
	ms, err := s.ShardMetrics("m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("%d shards", len(ms))
	}
	m := ms[0]
	want := shardstore.ShardMetrics{
		ShardID: "shardId-000000000000", Open: true, StartingHashKey: m.StartingHashKey, EndingHashKey: shardstore.MaxHashKey,
		IncomingBytes: bytes, IncomingRecords: 10, WriteProvisionedThroughputExceeded: 5, ReadProvisionedThroughputExceeded: 1,
		OutgoingBytes: bytesOf(rr.Records), OutgoingRecords: 4, GetRecords: 1, IteratorAgeMilliseconds: 3000,
	}
	if m != want {
		t.Errorf("metrics\n got %+v\nwant %+v", m, want)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	got := gathered(t, reg)
	for name, v := range map[string]float64{
		shardstore.MetricIncomingRecords: 10, shardstore.MetricWriteExceeded: 5, shardstore.MetricReadExceeded: 1,
		shardstore.MetricIncomingBytes: float64(bytes), shardstore.MetricIteratorAge: 3000,
	} {
		if got[name+`{shard="shardId-000000000000",stream="m"}`] != v {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], v, got)
		}
	}
	if got[shardstore.MetricOpenShards+`{stream="m"}`] != 1 {
		t.Errorf("open shards: %v", got)
	}

	// After a split the parent keeps its totals and the children start at zero.
	if _, err := s.UpdateShardCount(ctx, "m", 2); err != nil {
		t.Fatal(err)
	}
	ms, _ = s.ShardMetrics("m")
	if len(ms) != 3 || ms[0].Open || ms[0].IncomingRecords != 10 || !ms[1].Open || ms[1].IncomingRecords != 0 {
		t.Errorf("after the split: %+v", ms)
	}
	if _, err := s.ShardMetrics("nope"); err == nil {
		t.Error("metrics of a missing stream: no error")
	}
}

func bytesOf(rs []shardstore.Record) uint64 {
	n := 0
	for _, r := range rs {
		n += len(r.PartitionKey) + len(r.Data)
	}
	return uint64(n)
}

// gathered maps `name{labels}` to the value of every gathered series.
func gathered(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

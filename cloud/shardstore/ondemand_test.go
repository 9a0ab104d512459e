package shardstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// putN puts n one-byte records with distinct keys and returns how many
// were stored (the others must be throttled).
func putN(t *testing.T, s *shardstore.Store, stream string, n int) int {
	t.Helper()
	stored := 0
	for n > 0 {
		k := min(n, shardstore.MaxPutEntries)
		es := make([]shardstore.PutEntry, k)
		for i := range es {
			es[i] = shardstore.PutEntry{PartitionKey: fmt.Sprintf("k%d-%d", n, i), Data: []byte{1}}
		}
		res, err := s.Put(context.Background(), stream, es)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			switch {
			case r.Err == nil:
				stored++
			case !errors.Is(r.Err, shardstore.ErrThrottled):
				t.Fatal(r.Err)
			}
		}
		n -= k
	}
	return stored
}

// TestOnDemandCapacity follows AWS's on-demand rules on a fake clock, with
// the initial capacity scaled down to 40 records/s: a new stream takes the
// initial capacity; traffic more than double the previous peak is
// throttled until 15 minutes after the peak's minute; then the stream
// takes double that peak; 30 days later the peak no longer counts.
func TestOnDemandCapacity(t *testing.T) {
	clk := newClock() // 12:00:00, a minute boundary
	s := open(t, shardstore.Options{Now: clk.Now, OnDemand: shardstore.OnDemandCapacity{WriteRecordsPerSec: 40}})
	if err := s.CreateStreamMode(context.Background(), "od", 0, shardstore.OnDemand); err != nil {
		t.Fatal(err)
	}
	in, _ := s.DescribeStream("od")
	if in.Mode != shardstore.OnDemand || in.OpenShards != shardstore.OnDemandShards {
		t.Fatalf("stream %+v", in)
	}
	if got := putN(t, s, "od", 60); got != 40 {
		t.Fatalf("initial capacity: %d of 60 stored, want 40", got)
	}
	for range 59 { // the rest of the minute at 30/s: a peak of ~30/s
		clk.Advance(time.Second)
		if got := putN(t, s, "od", 30); got != 30 {
			t.Fatalf("under capacity: %d of 30 stored", got)
		}
	}
	clk.Advance(time.Second) // 12:01: the peak is measured but does not count yet
	if got := putN(t, s, "od", 70); got != 40 {
		t.Fatalf("double the peak right away: %d of 70 stored, want 40 (growth within 15 minutes is throttled)", got)
	}
	clk.Advance(14*time.Minute + 58*time.Second) // 12:15:58: still not
	if got := putN(t, s, "od", 70); got != 40 {
		t.Fatalf("14 minutes later: %d of 70 stored, want 40", got)
	}
	clk.Advance(3 * time.Second) // 12:16:01: the 12:00 minute (~30.2/s) counts
	if got := putN(t, s, "od", 70); got != 60 {
		t.Fatalf("15 minutes after the peak: %d of 70 stored, want 60 (double the peak)", got)
	}
	clk.Advance(31 * 24 * time.Hour)
	if got := putN(t, s, "od", 70); got != 40 {
		t.Fatalf("31 days later: %d of 70 stored, want the initial 40", got)
	}
	for _, err := range []error{
		s.SplitShard(context.Background(), "od", "shardId-000000000000", shardstore.MaxHashKey),
		func() error { _, err := s.UpdateShardCount(context.Background(), "od", 8); return err }(),
	} {
		if !errors.Is(err, shardstore.ErrInvalidArgument) {
			t.Errorf("resharding an on-demand stream: %v, want ErrInvalidArgument", err)
		}
	}
}

// TestUpdateStreamMode: a provisioned stream switched to ON_DEMAND keeps
// at least what its shards took, has no per-shard write limit, and keeps
// its mode across a restart; switched back, the per-shard limits apply.
func TestUpdateStreamMode(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "streams.db")
	opts := shardstore.Options{Now: clk.Now, Throughput: shardstore.Throughput{WriteRecordsPerSec: 20}, OnDemand: shardstore.OnDemandCapacity{WriteRecordsPerSec: 40}}
	s := openAt(t, path, opts)
	mustCreate(t, s, "p", 3)
	ctx := context.Background()
	if got := putN(t, s, "p", 200); got != 60 {
		t.Fatalf("provisioned: %d stored, want 3 shards × 20", got)
	}
	if err := s.UpdateStreamMode(ctx, "p", shardstore.OnDemand); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	if got := putN(t, s, "p", 200); got != 60 {
		t.Fatalf("on-demand from 3 shards: %d stored, want 60 (the shards' capacity, above the initial 40)", got)
	}
	clk.Advance(2 * time.Second)
	one := shardstore.PutEntry{PartitionKey: "one-key", Data: []byte{1}}
	res, err := s.Put(ctx, "p", []shardstore.PutEntry{one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one, one})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("entry %d of 25 for one shard: %v (on demand, shards have no limit of their own)", i, r.Err)
		}
	}
	s.Close()
	s = openAt(t, path, opts)
	if in, _ := s.DescribeStream("p"); in.Mode != shardstore.OnDemand {
		t.Fatalf("after a restart: mode %s", in.Mode)
	}
	if err := s.UpdateStreamMode(ctx, "p", shardstore.Provisioned); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	if got := putN(t, s, "p", 200); got != 60 {
		t.Fatalf("provisioned again: %d stored, want 60", got)
	}
	if in, _ := s.DescribeStream("p"); in.Mode != shardstore.Provisioned {
		t.Fatalf("mode %s", in.Mode)
	}
	if err := s.UpdateStreamMode(ctx, "p", "FAST"); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Errorf("bad mode: %v", err)
	}
	if err := s.UpdateStreamMode(ctx, "nope", shardstore.OnDemand); !errors.Is(err, shardstore.ErrStreamNotFound) {
		t.Errorf("missing stream: %v", err)
	}
}

package autoscale_test

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// TestEmbeddedThroughKinesisAPI drives the Scaler against a real store
// (fake clock, 100 records/s per shard) measured by StoreSource and
// resharded with the unmodified aws-sdk-go-v2 client through our Kinesis
// API: uniform overload doubles the stream with UpdateShardCount, then
// load on one key range splits that shard alone.
func TestEmbeddedThroughKinesisAPI(t *testing.T) {
	clk := testenv.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	api := kinesisapitest.Start(t, shardstore.Options{Now: clk.Now, Throughput: shardstore.Throughput{WriteRecordsPerSec: 100}}, kinesisapi.Options{})
	c := api.Client(t)
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	lim := shardstore.Throughput{WriteRecordsPerSec: 100}.Resolved()
	s, err := autoscale.New(autoscale.Config{TargetUtilisation: 0.7, Cooldown: time.Second, MaxShards: 8}, autoscale.Options{
		Stream: "s", Backend: autoscale.BackendEmbedded, Now: clk.Now,
		Source:    autoscale.StoreSource{Store: api.Store, Stream: "s"},
		Resharder: autoscale.KinesisResharder{Client: c, Stream: "s"},
		Limits:    autoscale.Limits{WriteBytesPerSec: float64(lim.WriteBytesPerSec), WriteRecordsPerSec: float64(lim.WriteRecordsPerSec), ReadBytesPerSec: float64(lim.ReadBytesPerSec)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// offer puts n records a second for secs seconds, keys chosen by key.
	offer := func(secs, n int, key func(i int) string) {
		for range secs {
			clk.Advance(time.Second)
			es := make([]shardstore.PutEntry, n)
			for i := range es {
				es[i] = shardstore.PutEntry{PartitionKey: key(i), Data: []byte("x")}
			}
			if _, err := api.Store.Put(ctx, "s", es); err != nil {
				t.Fatal(err)
			}
		}
	}
	spread := func(i int) string { return fmt.Sprintf("dev-%d", i) }
	s.Step(ctx)
	offer(5, 300, spread) // 150/s per shard against 100/s
	s.Step(ctx)           // a scale-up needs two measurements in a row
	offer(5, 300, spread)
	d := s.Step(ctx)
	if d.Action != autoscale.ActionUpdateShardCount || d.To != 4 || d.Error != "" {
		t.Fatalf("under uniform overload: %+v", d)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 4 {
		t.Fatalf("after UpdateShardCount: %v, %v", sum, err)
	}

	s.Step(ctx) // baseline of the new shards
	clk.Advance(time.Second)
	in, _ := api.Store.DescribeStream("s")
	var hot shardstore.ShardInfo
	for _, sh := range in.Shards {
		if sh.Open() {
			hot = sh // the last open one
		}
	}
	inHot := keysIn(hot, 200)
	offer(5, 150, func(i int) string { return inHot[i] })
	s.Step(ctx)
	offer(5, 150, func(i int) string { return inHot[i] })
	d = s.Step(ctx)
	if d.Action != autoscale.ActionSplitShard || d.Shard != hot.ShardID || d.Error != "" {
		t.Fatalf("with one hot shard: %+v", d)
	}
	out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	children := 0
	for _, sh := range out.Shards {
		if aws.ToString(sh.ParentShardId) == hot.ShardID {
			children++
			if k := aws.ToString(sh.HashKeyRange.StartingHashKey); k != d.SplitAt && k != hot.StartingHashKey.String() {
				t.Errorf("child %s starts at %s; split at %s", aws.ToString(sh.ShardId), k, d.SplitAt)
			}
		}
	}
	if children != 2 {
		t.Errorf("%d children of %s", children, hot.ShardID)
	}
	if h := s.History(); len(h) != 2 {
		t.Errorf("history %+v", h)
	}
}

// keysIn returns n partition keys that route to shard sh.
func keysIn(sh shardstore.ShardInfo, n int) []string {
	lo, hi := sh.StartingHashKey.String(), sh.EndingHashKey.String()
	l, _ := new(big.Int).SetString(lo, 10)
	h, _ := new(big.Int).SetString(hi, 10)
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("hot-%d", i)
		v, _ := new(big.Int).SetString(shardstore.HashPartitionKey(k).String(), 10)
		if v.Cmp(l) >= 0 && v.Cmp(h) <= 0 {
			out = append(out, k)
		}
	}
	return out
}

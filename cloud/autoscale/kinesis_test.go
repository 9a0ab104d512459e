package autoscale_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// The kinesis backend's path: BackendSource measures what
// kinesisbackend.Backend wrote, KinesisResharder reshards with the
// unmodified SDK; against our Kinesis API and against kinesalite (an
// independent implementation, which lacks UpdateShardCount: that call's
// failure must be recorded in the history).

func TestKinesisBackendOurAPI(t *testing.T) {
	api := kinesisapitest.Start(t, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}, kinesisapi.Options{})
	runKinesisBackend(t, api.URL, true)
}

func TestKinesisBackendKinesalite(t *testing.T) {
	runKinesisBackend(t, testenv.StartKinesalite(t).Endpoint, false)
}

func runKinesisBackend(t *testing.T, endpoint string, hasUpdateShardCount bool) {
	ctx := t.Context()
	c := kinesisapitest.Client(t, endpoint, kinesisapitest.AccessKeyID, kinesisapitest.SecretAccessKey)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("k"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, "k")
	b, err := kinesisbackend.New(ctx, kinesisbackend.Config{Stream: "k", Endpoint: endpoint, Region: "us-east-1",
		AccessKeyID: kinesisapitest.AccessKeyID, SecretAccessKey: kinesisapitest.SecretAccessKey, ShardRecordsPerSec: -1, ShardBytesPerSec: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	clk := testenv.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	s, err := autoscale.New(autoscale.Config{Cooldown: time.Second}, autoscale.Options{Stream: "k", Backend: autoscale.BackendKinesis, Now: clk.Now,
		Source: autoscale.BackendSource{Backend: b, Stream: "k"}, Resharder: autoscale.KinesisResharder{Client: c, Stream: "k"}})
	if err != nil {
		t.Fatal(err)
	}
	// write puts n records with keys that keep(hash) accepts, one
	// "second" of the Scaler's clock.
	write := func(n int, keep func(h shardstore.HashKey) bool) {
		clk.Advance(time.Second)
		var es []kinesisbackend.Entry
		for i := 0; len(es) < n; i++ {
			k := fmt.Sprintf("dev-%d", i)
			if keep(shardstore.HashPartitionKey(k)) {
				es = append(es, kinesisbackend.Entry{PartitionKey: k, Data: []byte("r")})
			}
		}
		res, err := b.Put(ctx, "k", es)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	half, err := shardstore.ParseHashKey("170141183460469231731687303715884105728") // 2^127: shard 1 starts there
	if err != nil {
		t.Fatal(err)
	}
	lower := func(h shardstore.HashKey) bool { return h.Cmp(half) < 0 }
	s.Step(ctx)
	write(1500, lower) // 1.5 shards' worth on shard 0, none on shard 1
	s.Step(ctx)
	write(1500, lower)
	d := s.Step(ctx)
	if d.Action != autoscale.ActionSplitShard || d.Shard != "shardId-000000000000" || d.SplitAt != "85070591730234615865843651857942052864" || d.Error != "" {
		t.Fatalf("one hot shard: %+v", d)
	}
	waitActive(t, c, "k")
	out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	children := 0
	for _, sh := range out.Shards {
		if aws.ToString(sh.ParentShardId) == "shardId-000000000000" {
			children++
		}
	}
	if children != 2 {
		t.Fatalf("%d children of the split shard", children)
	}

	clk.Advance(2 * time.Second) // past the cooldown
	s.Step(ctx)                  // the new shards' baseline
	all := func(shardstore.HashKey) bool { return true }
	write(3000, all)
	s.Step(ctx)
	write(3000, all)
	d = s.Step(ctx)
	if d.Action != autoscale.ActionUpdateShardCount || d.From != 3 || d.To != 5 {
		t.Fatalf("uniform load: %+v", d)
	}
	if hasUpdateShardCount != (d.Error == "") || !hasUpdateShardCount && !strings.Contains(d.Error, "UpdateShardCount") {
		t.Fatalf("UpdateShardCount outcome %q (supported: %v)", d.Error, hasUpdateShardCount)
	}
	if h := s.History(); len(h) != 2 || h[1].Error != d.Error {
		t.Errorf("history %+v", h)
	}
}

func waitActive(t *testing.T, c *kinesis.Client, stream string) {
	t.Helper()
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(t.Context(), &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 10*time.Second); err != nil {
		t.Fatalf("stream %s did not become ACTIVE: %v", stream, err)
	}
}

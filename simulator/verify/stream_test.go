package verify_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/tributary-iot/tributary/simulator/verify"
)

// fakeKinesis is a stream of shards with fixed records; a closed shard
// (closed true) ends, an open one stays open. Iterators are
// "shard/position". The first GetRecords of each shard is throttled.
type fakeKinesis struct {
	mu        sync.Mutex
	shards    []types.Shard // listed in this order
	records   map[string][]string
	closed    map[string]bool
	throttled map[string]bool
	calls     int
}

func (f *fakeKinesis) ListShards(_ context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: f.shards}, nil
}

func (f *fakeKinesis) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	if in.ShardIteratorType != types.ShardIteratorTypeTrimHorizon {
		return nil, fmt.Errorf("iterator type %s", in.ShardIteratorType)
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(*in.ShardId + "/0")}, nil
}

func (f *fakeKinesis) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	shard, pos, _ := strings.Cut(*in.ShardIterator, "/")
	if !f.throttled[shard] {
		f.throttled[shard] = true
		return nil, &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}
	}
	i, _ := strconv.Atoi(pos)
	recs := f.records[shard]
	out := &kinesis.GetRecordsOutput{MillisBehindLatest: aws.Int64(0)}
	end := min(i+2, len(recs)) // two per call
	for j := i; j < end; j++ {
		out.Records = append(out.Records, types.Record{Data: []byte(recs[j]), PartitionKey: aws.String("k"),
			SequenceNumber: aws.String(strconv.Itoa(j)), ApproximateArrivalTimestamp: aws.Time(time.Now())})
	}
	if end < len(recs) {
		out.MillisBehindLatest = aws.Int64(1000)
	}
	if end < len(recs) || !f.closed[shard] {
		out.NextShardIterator = aws.String(shard + "/" + strconv.Itoa(end))
	}
	return out, nil
}

// TestReadStreamParentsFirst: a merged pair of parents and the child they
// closed into, listed child first: the parents are read to their end before
// the child, throttling is waited out, and the read ends once quiet.
func TestReadStreamParentsFirst(t *testing.T) {
	f := &fakeKinesis{
		shards: []types.Shard{
			{ShardId: aws.String("shard-2"), ParentShardId: aws.String("shard-0"), AdjacentParentShardId: aws.String("shard-1")},
			{ShardId: aws.String("shard-1")},
			{ShardId: aws.String("shard-0")},
		},
		records: map[string][]string{
			"shard-0": {"p0-a", "p0-b", "p0-c"},
			"shard-1": {"p1-a"},
			"shard-2": {"c-a", "c-b", "c-c"},
		},
		closed:    map[string]bool{"shard-0": true, "shard-1": true},
		throttled: map[string]bool{},
	}
	var got []string
	var progress int
	var st verify.ReadStats
	var err error
	// In a synctest bubble the settle and poll waits pass at once, in
	// order, on the bubble's clock.
	synctest.Test(t, func(t *testing.T) {
		st, err = verify.ReadStream(t.Context(), f, verify.ReadOptions{Stream: "s", Settle: 100 * time.Millisecond, Poll: 10 * time.Millisecond,
			Progress: func(verify.ReadStats) { progress++ }, ProgressEvery: time.Millisecond},
			func(r *verify.Record) { got = append(got, string(r.Data)) })
	})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, g := range got {
		pos[g] = i
	}
	if len(got) != 7 || len(pos) != 7 {
		t.Fatalf("got %v: want each of the 7 records once", got)
	}
	for _, parent := range []string{"p0-a", "p0-b", "p0-c", "p1-a"} {
		if pos[parent] > pos["c-a"] {
			t.Errorf("%s read after the child's first record: %v", parent, got)
		}
	}
	if pos["p0-a"] > pos["p0-b"] || pos["p0-b"] > pos["p0-c"] || pos["c-a"] > pos["c-b"] || pos["c-b"] > pos["c-c"] {
		t.Errorf("a shard's records out of order: %v", got)
	}
	if !st.CaughtUp || st.Records != 7 || st.Shards != 3 || st.Finished != 2 || st.Throttle != 3 || progress == 0 {
		t.Errorf("stats %+v (progress calls %d): want caught up, 7 records, 3 shards, 2 finished, 3 throttled", st, progress)
	}
}

// TestReadStreamDeadline: a stream that never goes quiet ends at the
// deadline, not caught up, without an error.
func TestReadStreamDeadline(t *testing.T) {
	f := &fakeKinesis{shards: []types.Shard{{ShardId: aws.String("shard-0")}},
		records: map[string][]string{"shard-0": {"a"}}, closed: map[string]bool{}, throttled: map[string]bool{"shard-0": true}}
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		st, err := verify.ReadStream(ctx, f, verify.ReadOptions{Stream: "s", Settle: time.Hour, Poll: 10 * time.Millisecond}, func(*verify.Record) {})
		if err != nil || st.CaughtUp || st.Records != 1 {
			t.Errorf("stats %+v, err %v: want 1 record, not caught up, no error", st, err)
		}
		if now := time.Since(start); now != 200*time.Millisecond {
			t.Errorf("ReadStream returned %s after it started, want at the 200ms deadline", now)
		}
	})
}

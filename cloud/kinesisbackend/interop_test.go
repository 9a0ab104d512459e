package kinesisbackend_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// The interop suite runs the real SDK through Backend against a real
// Kinesis API: kinesalite (an independent implementation) here, and any
// other endpoint the same way.

func TestKinesalite(t *testing.T) {
	k := testenv.StartKinesalite(t)
	runInterop(t, k.Endpoint)
}

func runInterop(t *testing.T, endpoint string) {
	t.Run("OrderAndExactlyOnce", func(t *testing.T) { testOrderAndExactlyOnce(t, endpoint) })
	t.Run("PartialFailures", func(t *testing.T) { testPartialFailures(t, endpoint) })
	t.Run("LostAnswers", func(t *testing.T) { testLostAnswers(t, endpoint) })
	t.Run("StreamARN", func(t *testing.T) { testStreamARN(t, endpoint) })
}

// adminClient is a plain SDK client for creating and reading streams.
func adminClient(t *testing.T, endpoint string) *kinesis.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
	})
}

func interopBackend(t *testing.T, endpoint, stream string) *kinesisbackend.Backend {
	t.Helper()
	b, err := kinesisbackend.New(t.Context(), kinesisbackend.Config{
		Stream:          stream,
		Region:          "us-east-1",
		Endpoint:        endpoint,
		AccessKeyID:     "AKIDEXAMPLE",
		SecretAccessKey: "secret",
		RetryBase:       20 * time.Millisecond,
		RetryMax:        200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

var streamSeq int

func createStream(t *testing.T, c *kinesis.Client, shards int) string {
	t.Helper()
	streamSeq++
	name := fmt.Sprintf("test-%d-%d", time.Now().UnixNano()%1e6, streamSeq)
	ctx := t.Context()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return name
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not ACTIVE after 30s (%v)", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamRecord is one record read back.
type streamRecord struct{ shard, seq, key, data string }

// readStream reads every shard from TRIM_HORIZON to the end.
func readStream(t *testing.T, c *kinesis.Client, stream string) []streamRecord {
	t.Helper()
	ctx := t.Context()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	var out []streamRecord
	for _, s := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("GetShardIterator %s: %v", *s.ShardId, err)
		}
		iter := it.ShardIterator
		for iter != nil {
			got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatalf("GetRecords %s: %v", *s.ShardId, err)
			}
			for _, r := range got.Records {
				out = append(out, streamRecord{*s.ShardId, *r.SequenceNumber, *r.PartitionKey, string(r.Data)})
			}
			if len(got.Records) == 0 {
				break
			}
			iter = got.NextShardIterator
		}
	}
	return out
}

func byKey(recs []streamRecord) map[string][]string {
	m := map[string][]string{}
	for _, r := range recs {
		m[r.key] = append(m[r.key], r.data)
	}
	return m
}

// checkResults checks that each result points at the record of its entry
// and that Put predicted each key's shard.
func checkResults(t *testing.T, b *kinesisbackend.Backend, stream string, es []kinesisbackend.Entry, res []kinesisbackend.Result, recs []streamRecord) {
	t.Helper()
	at := map[[2]string]string{}
	for _, r := range recs {
		at[[2]string{r.shard, r.seq}] = r.data
	}
	for i, e := range es {
		if got := at[[2]string{res[i].ShardID, res[i].SequenceNumber}]; got != string(e.Data) {
			t.Fatalf("entry %d: result %s/%s holds %.30q, want %.30q", i, res[i].ShardID, res[i].SequenceNumber, got, e.Data)
		}
		if got := b.RouteForTest(stream, e.PartitionKey); got != res[i].ShardID {
			t.Fatalf("entry %d: Put predicted shard %q, Kinesis chose %q", i, got, res[i].ShardID)
		}
	}
}

func putAll(t *testing.T, b *kinesisbackend.Backend, es []kinesisbackend.Entry) []kinesisbackend.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, err := b.Put(ctx, "", es)
	checkAllWritten(t, res, err, len(es))
	return res
}

func testOrderAndExactlyOnce(t *testing.T, endpoint string) {
	admin := adminClient(t, endpoint)
	stream := createStream(t, admin, 4)
	b := interopBackend(t, endpoint, stream)
	// Two Puts of 1,500 entries (60 devices, 25 each), interleaved.
	all := makeEntries("dev-", 60, 50, 200)
	first, second := all[:len(all)/2], all[len(all)/2:]
	res := append(putAll(t, b, first), putAll(t, b, second)...)
	recs := readStream(t, admin, stream)
	checkExactlyOnceInOrder(t, byKey(recs), wantCounts(all))
	checkResults(t, b, stream, all, res, recs)
	shards := map[string]bool{}
	for _, r := range res {
		shards[r.ShardID] = true
	}
	if len(shards) != 4 {
		t.Errorf("entries landed on %d shards, want all 4", len(shards))
	}
	// The client-side buckets keep each shard under Kinesis's limits (our
	// kinesisapi enforces them; kinesalite never throttles).
	if c := b.CountsForTest(); c.Throttles != 0 || c.Retries != 0 {
		t.Errorf("counters %+v: throttled despite the client-side limits", c)
	}
}

func testPartialFailures(t *testing.T, endpoint string) {
	admin := adminClient(t, endpoint)
	stream := createStream(t, admin, 4)
	p := newFaultProxy(endpoint, 1)
	p.entryFailRate = 0.3
	p.throttleCallsN = 5
	srv := httptest.NewServer(p)
	t.Cleanup(func() { srv.Close(); p.close() })
	b := interopBackend(t, srv.URL, stream)

	es := makeEntries("dev-", 50, 20, 100)
	res := putAll(t, b, es)
	recs := readStream(t, admin, stream)
	checkExactlyOnceInOrder(t, byKey(recs), wantCounts(es))
	checkResults(t, b, stream, es, res, recs)

	p.mu.Lock()
	defer p.mu.Unlock()
	c := b.CountsForTest()
	t.Logf("proxy: %d calls, %d entries failed, %d calls throttled; backend %+v", p.calls, p.entriesFailed, p.callsThrottled, c)
	if p.entriesFailed == 0 || p.callsThrottled == 0 {
		t.Fatal("no failures injected: the test proves nothing")
	}
	if p.keysTwiceInCall != 0 {
		t.Errorf("%d calls carried a partition key twice", p.keysTwiceInCall)
	}
	if c.Retries != float64(p.entriesFailed) || c.Throttles != float64(p.entriesFailed) {
		t.Errorf("backend counted %v retries and %v throttles, want %d each (only failed entries resent)", c.Retries, c.Throttles, p.entriesFailed)
	}
}

func testLostAnswers(t *testing.T, endpoint string) {
	admin := adminClient(t, endpoint)
	stream := createStream(t, admin, 4)
	p := newFaultProxy(endpoint, 2)
	p.loseAnswersN = 3
	srv := httptest.NewServer(p)
	t.Cleanup(func() { srv.Close(); p.close() })
	b := interopBackend(t, srv.URL, stream)

	es := makeEntries("dev-", 30, 20, 100)
	putAll(t, b, es)
	dups := checkAtLeastOnceInOrder(t, byKey(readStream(t, admin, stream)), wantCounts(es))
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Logf("proxy: %d calls, %d answers lost (%d records); %d duplicates in the stream", p.calls, p.answersLost, p.recordsInLostAnswers, dups)
	if p.answersLost == 0 {
		t.Fatal("no answers lost: the test proves nothing")
	}
	// A lost answer is the one case that duplicates, and only its records.
	if dups != p.recordsInLostAnswers {
		t.Errorf("%d duplicates, want %d (the records of the lost answers)", dups, p.recordsInLostAnswers)
	}
}

func testStreamARN(t *testing.T, endpoint string) {
	admin := adminClient(t, endpoint)
	stream := createStream(t, admin, 2)
	arn := "arn:aws:kinesis:us-east-1:000000000000:stream/" + stream
	b := interopBackend(t, endpoint, arn)
	es := makeEntries("dev-", 20, 5, 50)
	res := putAll(t, b, es)
	recs := readStream(t, admin, stream)
	checkExactlyOnceInOrder(t, byKey(recs), wantCounts(es))
	checkResults(t, b, arn, es, res, recs)
}

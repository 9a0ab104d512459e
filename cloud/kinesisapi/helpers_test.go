package kinesisapi_test

// The helpers every test file of the package shares: starting a store and
// the API with an SDK client, raw requests, and the SDK calls tests make
// over and over.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

const arnPrefix = "arn:aws:kinesis:us-east-1:000000000000:stream/"

func newClock() *testenv.Clock { return testenv.NewClock(time.Now().Truncate(time.Millisecond)) }

// env is a store and the API over it on 127.0.0.1:0, with an unmodified
// SDK client signed with the test credentials.
type env struct {
	*kinesisapitest.Server
	client *kinesis.Client
}

// option adjusts the store and the server that start opens.
type option func(*shardstore.Options, *kinesisapi.Options)

// unlimited turns the per-shard throughput limits off.
func unlimited(so *shardstore.Options, _ *kinesisapi.Options) { so.Throughput.Unlimited = true }

// writeLimit lets each shard take perSec records a second.
func writeLimit(perSec int) option {
	return func(so *shardstore.Options, _ *kinesisapi.Options) { so.Throughput.WriteRecordsPerSec = perSec }
}

// clocked gives the store and the server c for a clock.
func clocked(c *testenv.Clock) option {
	return func(so *shardstore.Options, ao *kinesisapi.Options) { so.Now, ao.Now = c.Now, c.Now }
}

// signed makes the server verify signatures by these keys.
func signed(credentials map[string]string) option {
	return func(_ *shardstore.Options, ao *kinesisapi.Options) { ao.Credentials = credentials }
}

// registered registers the server's metrics with reg.
func registered(reg prometheus.Registerer) option {
	return func(_ *shardstore.Options, ao *kinesisapi.Options) { ao.Registerer = reg }
}

// start runs a store and the API (AWS's throughput limits unless an
// option changes them) until the test ends.
func start(t testing.TB, opts ...option) *env {
	t.Helper()
	var so shardstore.Options
	var ao kinesisapi.Options
	for _, o := range opts {
		o(&so, &ao)
	}
	s := kinesisapitest.Start(t, so, ao)
	return &env{Server: s, client: s.Client(t)}
}

// startStream is start and a stream "s" of the given shards.
func startStream(t testing.TB, shards int32, opts ...option) (*env, *kinesis.Client) {
	t.Helper()
	e := start(t, opts...)
	mustCreate(t, e.client, "s", shards)
	return e, e.client
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func noRetry(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

// rawCall posts body to the server with the given target and content type
// (no signature) and returns the status and decoded error or result.
func rawCall(t testing.TB, url, target, contentType, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // no idle connections left for goleak
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("response is not JSON: %q", b)
	}
	return resp.StatusCode, out, resp.Header
}

// apiRequest is an unsigned JSON 1.1 request for op, for calling a
// handler directly.
func apiRequest(op, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	return req
}

// serve calls h directly with an unsigned JSON request for op.
func serve(h http.Handler, op, body string) (int, map[string]any) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, apiRequest(op, body))
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func mustCreate(t testing.TB, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	if _, err := c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
}

// records makes n entries of size bytes: data "prefix-i|" padded with
// zeros, partition key "prefix-key-i".
func records(prefix string, n, size int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		d := make([]byte, size)
		copy(d, fmt.Sprintf("%s-%d|", prefix, i))
		out[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("%s-key-%d", prefix, i)), Data: d}
	}
	return out
}

func mustPutRecords(t testing.TB, c *kinesis.Client, stream string, rs []types.PutRecordsRequestEntry) *kinesis.PutRecordsOutput {
	t.Helper()
	out, err := c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: rs})
	if err != nil {
		t.Fatal(err)
	}
	if *out.FailedRecordCount != 0 {
		t.Fatalf("%d records failed", *out.FailedRecordCount)
	}
	return out
}

func iterator(t testing.TB, c *kinesis.Client, stream, shard string, typ types.ShardIteratorType, seq *string, ts *time.Time) string {
	t.Helper()
	out, err := c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard),
		ShardIteratorType: typ, StartingSequenceNumber: seq, Timestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	return *out.ShardIterator
}

// drain reads from it until a read returns nothing or the shard ends,
// and returns the records and the last response.
func drain(t testing.TB, c *kinesis.Client, it string, limit int32) ([]types.Record, *kinesis.GetRecordsOutput) {
	t.Helper()
	var out []types.Record
	for {
		res, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(limit)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Records...)
		if res.NextShardIterator == nil || len(res.Records) == 0 {
			return out, res
		}
		it = *res.NextShardIterator
	}
}

// drainFrom drains shard of stream s from TRIM_HORIZON.
func drainFrom(t testing.TB, c *kinesis.Client, shard string, limit int32) ([]types.Record, *kinesis.GetRecordsOutput) {
	t.Helper()
	return drain(t, c, iterator(t, c, "s", shard, types.ShardIteratorTypeTrimHorizon, nil, nil), limit)
}

// datas lists the records' data up to its '|'.
func datas(rs []types.Record) string {
	var out []string
	for _, r := range rs {
		out = append(out, strings.SplitN(string(r.Data), "|", 2)[0])
	}
	return strings.Join(out, ",")
}

// listAll lists shards page by page (the SDK has no ListShards
// paginator): the first call as given, then NextToken and MaxResults only.
func listAll(t testing.TB, c *kinesis.Client, in *kinesis.ListShardsInput) []types.Shard {
	t.Helper()
	out, err := c.ListShards(bg, in)
	var shards []types.Shard
	for {
		if err != nil {
			t.Fatal(err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			return shards
		}
		out, err = c.ListShards(bg, &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: in.MaxResults})
	}
}

func ids(shards []types.Shard) []string {
	var out []string
	for _, s := range shards {
		out = append(out, *s.ShardId)
	}
	return out
}

// waitActive waits until the stream is ACTIVE, with the SDK's own waiter
// (polling at 10 to 100 ms rather than its default 10 s): at once here,
// 50 ms after a change in kinesalite.
func waitActive(t testing.TB, c *kinesis.Client, stream string) {
	t.Helper()
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(bg, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 10*time.Second); err != nil {
		t.Fatalf("stream %s did not become ACTIVE: %v", stream, err)
	}
}

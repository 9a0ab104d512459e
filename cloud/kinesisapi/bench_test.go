package kinesisapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
)

const (
	benchWriters = 4
	benchPer     = 500
	benchSize    = 200
)

// putLoad makes calls PutRecords calls of 500 records of 200 B from 4
// concurrent writers and returns records/s.
func putLoad(tb testing.TB, c *kinesis.Client, stream string, calls int) float64 {
	batches := make([][]types.PutRecordsRequestEntry, benchWriters)
	for g := range batches {
		batches[g] = records(fmt.Sprintf("w%d", g), benchPer, benchSize)
	}
	var left atomic.Int64
	left.Store(int64(calls))
	start := time.Now()
	var wg sync.WaitGroup
	for g := range benchWriters {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				out, err := c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batches[g]})
				if err != nil || *out.FailedRecordCount != 0 {
					tb.Errorf("PutRecords: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(calls*benchPer) / time.Since(start).Seconds()
}

var (
	baselineOnce sync.Once
	baseline     float64
)

// kinesaliteBaseline measures kinesalite once per run under the same
// load (40 calls, 20,000 records); 0 if it is not installed.
func kinesaliteBaseline(b *testing.B) float64 {
	baselineOnce.Do(func() {
		if testenv.KinesaliteBinary() == "" {
			b.Log("kinesalite is not installed (make deps-kinesalite): no baseline")
			return
		}
		url := testenv.StartKinesalite(b).Endpoint
		c := sdkClient(b, url, "AKIDEXAMPLE", "dummy-secret")
		if _, err := c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String("bench"), ShardCount: aws.Int32(4)}); err != nil {
			b.Fatal(err)
		}
		waitActive(b, c, "bench")
		putLoad(b, c, "bench", 4) // warm up
		baseline = putLoad(b, c, "bench", 40)
	})
	return baseline
}

// BenchmarkPutRecords: PutRecords through the API with the SDK, 500
// records of 200 B per call, 4 shards, 4 concurrent writers (throughput
// limits off), against kinesalite (measured once per run, same load) and
// this server. b.N counts calls to this server.
func BenchmarkPutRecords(b *testing.B) {
	base := kinesaliteBaseline(b)
	e := start(b, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}, kinesisapi.Options{})
	mustCreate(b, e.client, "bench", 4)
	putLoad(b, e.client, "bench", 4) // warm up connections
	b.ResetTimer()
	ours := putLoad(b, e.client, "bench", b.N)
	b.ReportMetric(ours, "records/s")
	if base > 0 {
		b.ReportMetric(base, "kinesalite-records/s")
		b.ReportMetric(ours/base, "x-kinesalite")
	}
}

// BenchmarkGetRecords: GetRecords through the API with the SDK, 10,000
// records of 200 B per call. "1-reader" reads one shard; "4-readers"
// reads a 4-shard stream with one reader per shard, as a consumer (KCL)
// does. b.N counts calls.
func BenchmarkGetRecords(b *testing.B) {
	for _, readers := range []int{1, 4} {
		b.Run(fmt.Sprintf("%d-reader", readers), func(b *testing.B) { benchGetRecords(b, readers) })
	}
}

func benchGetRecords(b *testing.B, shards int) {
	e := start(b, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}, kinesisapi.Options{})
	c := e.client
	mustCreate(b, c, "bench", int32(shards))
	// 25,000 records per shard, put by explicit hash key.
	starts := make([]string, shards)
	d, _ := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("bench")})
	for i, sh := range d.StreamDescription.Shards {
		starts[i] = *sh.HashKeyRange.StartingHashKey
		for range 50 {
			rs := records("r", benchPer, benchSize)
			for j := range rs {
				rs[j].ExplicitHashKey = aws.String(starts[i])
			}
			mustPutRecords(b, c, "bench", rs)
		}
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var total atomic.Int64
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range shards {
		wg.Go(func() {
			id := fmt.Sprintf("shardId-%012d", i)
			first := iterator(b, c, "bench", id, types.ShardIteratorTypeTrimHorizon, nil, nil)
			it := first
			for left.Add(-1) >= 0 {
				out, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(10_000)})
				if err != nil {
					b.Error(err)
					return
				}
				total.Add(int64(len(out.Records)))
				it = *out.NextShardIterator
				if len(out.Records) < 10_000 {
					it = first
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(total.Load())/time.Since(t0).Seconds(), "records/s")
}

// cannedTransport answers every request with one fixed body.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r, ContentLength: int64(len(c.body)),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}, Body: io.NopCloser(bytes.NewReader(c.body))}, nil
}

// BenchmarkSDKDecodeGetRecords is the client's own ceiling: the SDK
// decoding a 10,000-record GetRecords response (as this server sends it)
// with no server and no network, on one goroutine. GetRecords read-back
// through the SDK cannot beat it per core.
func BenchmarkSDKDecodeGetRecords(b *testing.B) {
	e := start(b, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}, kinesisapi.Options{})
	mustCreate(b, e.client, "bench", 1)
	for range 20 {
		mustPutRecords(b, e.client, "bench", records("r", benchPer, benchSize))
	}
	it := iterator(b, e.client, "bench", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(fmt.Sprintf(`{"ShardIterator":%q}`, it)))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.GetRecords")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	w := httptest.NewRecorder()
	e.server.ServeHTTP(w, req)
	c := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, HTTPClient: &http.Client{Transport: cannedTransport{w.Body.Bytes()}}},
		func(o *kinesis.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:1") })
	b.ResetTimer()
	t0 := time.Now()
	n := 0
	for range b.N {
		out, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
		if err != nil {
			b.Fatal(err)
		}
		n += len(out.Records)
	}
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "records/s")
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkServeGetRecords is the server's side of GetRecords alone:
// ServeHTTP of 10,000-record reads (200 B records) into a discarding
// writer, no client. b.N counts calls.
func BenchmarkServeGetRecords(b *testing.B) {
	e := start(b, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}, kinesisapi.Options{})
	mustCreate(b, e.client, "bench", 1)
	for range 20 {
		mustPutRecords(b, e.client, "bench", records("r", benchPer, benchSize))
	}
	it := iterator(b, e.client, "bench", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)
	body := fmt.Sprintf(`{"ShardIterator":%q,"Limit":10000}`, it)
	w := &discardWriter{h: http.Header{}}
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.GetRecords")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		e.server.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(b.N*10_000)/time.Since(t0).Seconds(), "records/s")
}

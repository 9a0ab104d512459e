package kinesisapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
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
		c := kinesisapitest.Client(b, testenv.StartKinesalite(b).Endpoint, kinesisapitest.AccessKeyID, kinesisapitest.SecretAccessKey)
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
	e := start(b, unlimited)
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
	c := start(b, unlimited).client
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

// getRecordsFixture is a server with one shard of 10,000 records of
// 200 B and a GetRecords request body for all of them.
func getRecordsFixture(b *testing.B) (*env, string) {
	e := start(b, unlimited)
	mustCreate(b, e.client, "bench", 1)
	for range 20 {
		mustPutRecords(b, e.client, "bench", records("r", benchPer, benchSize))
	}
	it := iterator(b, e.client, "bench", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)
	return e, fmt.Sprintf(`{"ShardIterator":%q,"Limit":10000}`, it)
}

// BenchmarkSDKDecodeGetRecords is the client's own ceiling: the SDK
// decoding a 10,000-record GetRecords response (as this server sends it)
// with no server and no network, on one goroutine. GetRecords read-back
// through the SDK cannot beat it per core.
func BenchmarkSDKDecodeGetRecords(b *testing.B) {
	e, body := getRecordsFixture(b)
	w := httptest.NewRecorder()
	e.API.ServeHTTP(w, apiRequest("GetRecords", body))
	c := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, HTTPClient: &http.Client{Transport: cannedTransport{w.Body.Bytes()}}},
		func(o *kinesis.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:1") })
	b.ResetTimer()
	t0 := time.Now()
	n := 0
	for range b.N {
		out, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String("canned")})
		if err != nil {
			b.Fatal(err)
		}
		n += len(out.Records)
	}
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "records/s")
	if n == 0 {
		b.Fatal("the SDK decoded no records")
	}
}

// keepWriter is a ResponseWriter that keeps the last response, as a
// connection would take it (one copy of the body).
type keepWriter struct {
	h    http.Header
	code int
	body []byte
}

func (k *keepWriter) Header() http.Header { return k.h }

func (k *keepWriter) Write(p []byte) (int, error) {
	k.body = append(k.body, p...)
	return len(p), nil
}

func (k *keepWriter) WriteHeader(code int) { k.code = code }

// BenchmarkServeGetRecords is the server's side of GetRecords alone:
// ServeHTTP of 10,000-record reads (200 B records) into a writer that
// keeps the body, no client. b.N counts calls; records/s counts the
// records the responses hold (decoded outside the timed part) over the
// time spent in ServeHTTP.
func BenchmarkServeGetRecords(b *testing.B) {
	e, body := getRecordsFixture(b)
	w := &keepWriter{h: http.Header{}}
	var served time.Duration
	n := 0
	b.ResetTimer()
	for range b.N {
		req := apiRequest("GetRecords", body)
		w.body, w.code = w.body[:0], 0
		t0 := time.Now()
		e.API.ServeHTTP(w, req)
		served += time.Since(t0)
		b.StopTimer()
		var resp struct {
			Records []struct{ SequenceNumber string }
		}
		if err := json.Unmarshal(w.body, &resp); err != nil || w.code != http.StatusOK {
			b.Fatalf("GetRecords: %d %v %.200s", w.code, err, w.body)
		}
		n += len(resp.Records)
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/served.Seconds(), "records/s")
	if n == 0 {
		b.Fatal("GetRecords returned no records")
	}
}

package kinesisapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/shardstore"
)

func TestSigV4Verified(t *testing.T) {
	clk := newClock()
	e := start(t, shardstore.Options{}, kinesisapi.Options{Now: clk.Now, Credentials: map[string]string{"AKIDEXAMPLE": "dummy-secret", "OTHER": "s2"}})
	// The environment's client signs with AKIDEXAMPLE / dummy-secret.
	mustCreate(t, e.client, "s", 1)
	out := mustPutRecords(t, e.client, "s", records("a", 50, 300)) // a signed body of ~20 KB
	if len(out.Records) != 50 {
		t.Fatal(out)
	}
	other := sdkClient(t, e.http.URL, "OTHER", "s2")
	if _, err := other.ListStreams(bg, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("second key: %v", err)
	}
	wrongSecret := sdkClient(t, e.http.URL, "AKIDEXAMPLE", "not-the-secret")
	if _, err := wrongSecret.ListStreams(bg, &kinesis.ListStreamsInput{}); apiCode(err) != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
	unknown := sdkClient(t, e.http.URL, "NOBODY", "x")
	if _, err := unknown.ListStreams(bg, &kinesis.ListStreamsInput{}); apiCode(err) != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %v", err)
	}
	status, body, _ := rawCall(t, e.http.URL, "Kinesis_20131202.ListStreams", "application/x-amz-json-1.1", "{}")
	if status != 400 || body["__type"] != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned: %d %v", status, body)
	}
	// A signature from 20 minutes ago (the server's clock moved on).
	clk.Advance(20 * time.Minute)
	if _, err := e.client.ListStreams(bg, &kinesis.ListStreamsInput{}); apiCode(err) != "InvalidSignatureException" || !strings.Contains(err.Error(), "Signature expired") {
		t.Fatalf("stale signature: %v", err)
	}
}

func TestAnySignatureWithoutCredentials(t *testing.T) {
	e := start(t, shardstore.Options{}, kinesisapi.Options{})
	for _, c := range []*kinesis.Client{e.client, sdkClient(t, e.http.URL, "WHOEVER", "whatever")} {
		if _, err := c.ListStreams(bg, &kinesis.ListStreamsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	status, body, _ := rawCall(t, e.http.URL, "Kinesis_20131202.ListStreams", "application/x-amz-json-1.1", "{}")
	if status != 200 || body["StreamNames"] == nil {
		t.Fatalf("unsigned: %d %v", status, body)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := start(t, shardstore.Options{Throughput: shardstore.Throughput{WriteRecordsPerSec: 3}}, kinesisapi.Options{Registerer: reg})
	c := e.client
	mustCreate(t, c, "s", 1)
	out, err := c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: records("a", 5, 10)})
	if err != nil || *out.FailedRecordCount != 2 {
		t.Fatalf("%v %v", out, err)
	}
	_, _ = c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("nope")})
	it := iterator(t, c, "s", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)
	if _, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)}); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for series, want := range map[string]float64{
		`tributary_kinesis_api_records_total{direction="in"}`:                                        3,
		`tributary_kinesis_api_records_total{direction="out"}`:                                       3,
		`tributary_kinesis_api_throttled_total{op="PutRecords"}`:                                     2,
		`tributary_kinesis_api_requests_total{code="OK",op="CreateStream"}`:                          1,
		`tributary_kinesis_api_requests_total{code="OK",op="PutRecords"}`:                            1,
		`tributary_kinesis_api_requests_total{code="OK",op="GetShardIterator"}`:                      1,
		`tributary_kinesis_api_requests_total{code="OK",op="GetRecords"}`:                            1,
		`tributary_kinesis_api_requests_total{code="ResourceNotFoundException",op="DescribeStream"}`: 1,
		`tributary_kinesis_api_request_duration_seconds_count{op="GetRecords"}`:                      1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}

// gather flattens the registry into "name{label=value,...}" → value
// (counters, and histogram counts as name_count).
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[mf.GetName()+key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

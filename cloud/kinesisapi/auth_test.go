package kinesisapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
)

func TestSigV4Verified(t *testing.T) {
	clk := newClock()
	e := start(t, clocked(clk), signed(map[string]string{kinesisapitest.AccessKeyID: kinesisapitest.SecretAccessKey, "OTHER": "s2"}))
	// The environment's client signs with AKIDEXAMPLE / dummy-secret.
	mustCreate(t, e.client, "s", 1)
	out := mustPutRecords(t, e.client, "s", records("a", 50, 300)) // a signed body of ~20 KB
	if len(out.Records) != 50 {
		t.Fatal(out)
	}
	other := kinesisapitest.Client(t, e.URL, "OTHER", "s2")
	if _, err := other.ListStreams(bg, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("second key: %v", err)
	}
	wrongSecret := kinesisapitest.Client(t, e.URL, "AKIDEXAMPLE", "not-the-secret")
	if _, err := wrongSecret.ListStreams(bg, &kinesis.ListStreamsInput{}); apiCode(err) != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
	unknown := kinesisapitest.Client(t, e.URL, "NOBODY", "x")
	if _, err := unknown.ListStreams(bg, &kinesis.ListStreamsInput{}); apiCode(err) != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %v", err)
	}
	status, body, _ := rawCall(t, e.URL, "Kinesis_20131202.ListStreams", "application/x-amz-json-1.1", "{}")
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
	e := start(t)
	for _, c := range []*kinesis.Client{e.client, kinesisapitest.Client(t, e.URL, "WHOEVER", "whatever")} {
		if _, err := c.ListStreams(bg, &kinesis.ListStreamsInput{}); err != nil {
			t.Fatal(err)
		}
	}
	status, body, _ := rawCall(t, e.URL, "Kinesis_20131202.ListStreams", "application/x-amz-json-1.1", "{}")
	if status != 200 || body["StreamNames"] == nil {
		t.Fatalf("unsigned: %d %v", status, body)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := start(t, writeLimit(3), registered(reg))
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
	// As /metrics shows them: the counters, every series of the requests
	// counter, and the count of the GetRecords durations.
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	text := w.Body.String()
	requests := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "tributary_kinesis_api_requests_total{") {
			requests++
		}
	}
	if requests != 5 {
		t.Errorf("%d series of tributary_kinesis_api_requests_total, want 5:\n%s", requests, text)
	}
	for _, want := range []string{
		`tributary_kinesis_api_records_total{direction="in"} 3`,
		`tributary_kinesis_api_records_total{direction="out"} 3`,
		`tributary_kinesis_api_throttled_total{op="PutRecords"} 2`,
		`tributary_kinesis_api_requests_total{code="OK",op="CreateStream"} 1`,
		`tributary_kinesis_api_requests_total{code="OK",op="PutRecords"} 1`,
		`tributary_kinesis_api_requests_total{code="OK",op="GetShardIterator"} 1`,
		`tributary_kinesis_api_requests_total{code="OK",op="GetRecords"} 1`,
		`tributary_kinesis_api_requests_total{code="ResourceNotFoundException",op="DescribeStream"} 1`,
		`tributary_kinesis_api_request_duration_seconds_count{op="GetRecords"} 1`,
	} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("no line %s in\n%s", want, text)
		}
	}
}

// A request whose signature fails on its headers alone (none, unknown
// key, wrong region or service, host or x-amz-target unsigned, stale
// date) is refused before its body is read: here the body never comes,
// and the answer does anyway.
func TestSigV4CheckedBeforeBody(t *testing.T) {
	clk := newClock()
	e := start(t, clocked(clk), signed(map[string]string{kinesisapitest.AccessKeyID: kinesisapitest.SecretAccessKey}))
	now := clk.Now().UTC()
	date, amzDate := now.Format("20060102"), now.Format("20060102T150405Z")
	auth := func(akid, region, service, signed string) string {
		return "AWS4-HMAC-SHA256 Credential=" + akid + "/" + date + "/" + region + "/" + service + "/aws4_request, SignedHeaders=" +
			signed + ", Signature=0000000000000000000000000000000000000000000000000000000000000000"
	}
	const all = "content-type;host;x-amz-date;x-amz-target"
	for _, c := range []struct{ name, auth, amzDate, want string }{
		{"unsigned", "", amzDate, "MissingAuthenticationTokenException"},
		{"unknown key", auth("NOBODY", "us-east-1", "kinesis", all), amzDate, "UnrecognizedClientException"},
		{"other region", auth(kinesisapitest.AccessKeyID, "eu-west-1", "kinesis", all), amzDate, "InvalidSignatureException"},
		{"other service", auth(kinesisapitest.AccessKeyID, "us-east-1", "dynamodb", all), amzDate, "InvalidSignatureException"},
		{"target unsigned", auth(kinesisapitest.AccessKeyID, "us-east-1", "kinesis", "content-type;host;x-amz-date"), amzDate, "IncompleteSignatureException"},
		{"host unsigned", auth(kinesisapitest.AccessKeyID, "us-east-1", "kinesis", "content-type;x-amz-date;x-amz-target"), amzDate, "IncompleteSignatureException"},
		{"stale", auth(kinesisapitest.AccessKeyID, "us-east-1", "kinesis", all), now.Add(-time.Hour).Format("20060102T150405Z"), "InvalidSignatureException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // the body would be waited for forever
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, pr)
			req.Close = true
			req.ContentLength = 1 << 20 // announced, never sent
			req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecord")
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Date", c.amzDate)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("X-Amzn-ErrorType"); resp.StatusCode != 400 || got != c.want {
				t.Errorf("%d %s, want 400 %s", resp.StatusCode, got, c.want)
			}
		})
	}
}

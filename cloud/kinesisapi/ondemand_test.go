package kinesisapi_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// TestOnDemand: with the unmodified SDK, CreateStream ON_DEMAND makes a
// 4-shard stream shown as ON_DEMAND whose writes beyond the stream's
// on-demand capacity (scaled down to 40 records/s here) are throttled and
// which refuses UpdateShardCount; UpdateStreamMode (by ARN) switches it to
// PROVISIONED, after which it reshards.
func TestOnDemand(t *testing.T) {
	clk := newClock()
	e := start(t, clocked(clk), func(so *shardstore.Options, _ *kinesisapi.Options) {
		so.OnDemand.WriteRecordsPerSec = 40
	})
	c, bg := e.client, t.Context()
	if _, err := c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String("od"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	sum, err := c.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("od")})
	if err != nil {
		t.Fatal(err)
	}
	if d := sum.StreamDescriptionSummary; d.StreamModeDetails.StreamMode != types.StreamModeOnDemand || aws.ToInt32(d.OpenShardCount) != 4 {
		t.Fatalf("summary %+v %+v", d, d.StreamModeDetails)
	}
	ls, err := c.ListStreams(bg, &kinesis.ListStreamsInput{})
	if err != nil || len(ls.StreamSummaries) != 1 || ls.StreamSummaries[0].StreamModeDetails.StreamMode != types.StreamModeOnDemand {
		t.Fatalf("ListStreams %+v, %v", ls, err)
	}
	out, err := c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String("od"), Records: records("r", 60, 10)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 20 {
		t.Fatalf("%d of 60 failed, want 20 over the capacity of 40", aws.ToInt32(out.FailedRecordCount))
	}
	for _, r := range out.Records {
		if r.ErrorCode != nil && *r.ErrorCode != "ProvisionedThroughputExceededException" {
			t.Fatalf("error %s", *r.ErrorCode)
		}
	}
	_, errScale := c.UpdateShardCount(bg, &kinesis.UpdateShardCountInput{StreamName: aws.String("od"), TargetShardCount: aws.Int32(8), ScalingType: types.ScalingTypeUniformScaling})
	_, errBadMode := c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String("x"), ShardCount: aws.Int32(1),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: "FAST"}}, noRetry)
	for _, tc := range []struct {
		err  error
		code string
	}{{errScale, "InvalidArgumentException"}, {errBadMode, "ValidationException"}} {
		if got := apiCode(tc.err); got != tc.code {
			t.Errorf("want %s, got %v", tc.code, tc.err)
		}
	}
	// The SDK checks for StreamModeDetails itself; the server does too.
	if code, body, _ := rawCall(t, e.URL, "Kinesis_20131202.UpdateStreamMode", "application/x-amz-json-1.1", `{"StreamARN":"`+arnPrefix+`od"}`); code != 400 || body["__type"] != "ValidationException" {
		t.Errorf("UpdateStreamMode without StreamModeDetails: %d %v", code, body)
	}
	if _, err := c.UpdateStreamMode(bg, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arnPrefix + "od"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("od")})
	if err != nil || d.StreamDescription.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		t.Fatalf("after UpdateStreamMode: %+v, %v", d, err)
	}
	clk.Advance(time.Second)
	if _, err := c.UpdateShardCount(bg, &kinesis.UpdateShardCountInput{StreamName: aws.String("od"), TargetShardCount: aws.Int32(8), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
		t.Fatalf("UpdateShardCount once PROVISIONED: %v", err)
	}
}

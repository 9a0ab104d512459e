package kinesisapi_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
)

func TestEveryOperationThroughTheSDK(t *testing.T) {
	clk := newClock()
	c := start(t, unlimited, clocked(clk)).client
	for _, n := range []string{"alpha", "beta", "gamma"} {
		mustCreate(t, c, n, 4)
	}

	// ListStreams, paged.
	ls, err := c.ListStreams(bg, &kinesis.ListStreamsInput{Limit: aws.Int32(2)})
	if err != nil || !slices.Equal(ls.StreamNames, []string{"alpha", "beta"}) || !*ls.HasMoreStreams || ls.NextToken == nil || len(ls.StreamSummaries) != 2 ||
		*ls.StreamSummaries[0].StreamARN != arnPrefix+"alpha" || ls.StreamSummaries[0].StreamStatus != types.StreamStatusActive {
		t.Fatalf("ListStreams: %+v %v", ls, err)
	}
	ls, err = c.ListStreams(bg, &kinesis.ListStreamsInput{NextToken: ls.NextToken})
	if err != nil || !slices.Equal(ls.StreamNames, []string{"gamma"}) || *ls.HasMoreStreams {
		t.Fatalf("ListStreams page 2: %+v %v", ls, err)
	}
	ls, err = c.ListStreams(bg, &kinesis.ListStreamsInput{ExclusiveStartStreamName: aws.String("alpha")})
	if err != nil || !slices.Equal(ls.StreamNames, []string{"beta", "gamma"}) {
		t.Fatalf("ListStreams after alpha: %+v %v", ls, err)
	}

	// DescribeStream, paged by Limit and ExclusiveStartShardId.
	d, err := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("alpha"), Limit: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	sd := d.StreamDescription
	if *sd.StreamName != "alpha" || *sd.StreamARN != arnPrefix+"alpha" || sd.StreamStatus != types.StreamStatusActive || len(sd.Shards) != 3 || !*sd.HasMoreShards ||
		*sd.RetentionPeriodHours != 24 || sd.StreamModeDetails.StreamMode != types.StreamModeProvisioned || sd.EncryptionType != types.EncryptionTypeNone ||
		sd.StreamCreationTimestamp.UnixMilli() != clk.Now().UnixMilli() {
		t.Fatalf("DescribeStream: %+v", sd)
	}
	if *sd.Shards[0].HashKeyRange.StartingHashKey != "0" || *sd.Shards[0].HashKeyRange.EndingHashKey != "85070591730234615865843651857942052863" || sd.Shards[0].SequenceNumberRange.EndingSequenceNumber != nil {
		t.Fatalf("shard 0: %+v %+v", *sd.Shards[0].HashKeyRange, *sd.Shards[0].SequenceNumberRange)
	}
	d, err = c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamARN: aws.String(arnPrefix + "alpha"), ExclusiveStartShardId: sd.Shards[2].ShardId})
	if err != nil || len(d.StreamDescription.Shards) != 1 || *d.StreamDescription.Shards[0].ShardId != "shardId-000000000003" || *d.StreamDescription.HasMoreShards {
		t.Fatalf("DescribeStream page 2: %+v %v", d, err)
	}
	sum, err := c.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("alpha")})
	if err != nil || *sum.StreamDescriptionSummary.OpenShardCount != 4 || *sum.StreamDescriptionSummary.StreamARN != arnPrefix+"alpha" {
		t.Fatalf("DescribeStreamSummary: %+v %v", sum, err)
	}

	// PutRecord (also by ARN, with an explicit hash key) and PutRecords.
	pr, err := c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String("alpha"), PartitionKey: aws.String("p0"), Data: []byte("r0|x")})
	if err != nil {
		t.Fatal(err)
	}
	pr2, err := c.PutRecord(bg, &kinesis.PutRecordInput{StreamARN: aws.String(arnPrefix + "alpha"), PartitionKey: aws.String("p1"), Data: []byte("r1|x"),
		ExplicitHashKey: aws.String("340282366920938463463374607431768211455"), SequenceNumberForOrdering: pr.SequenceNumber})
	if err != nil || *pr2.ShardId != "shardId-000000000003" {
		t.Fatalf("PutRecord by ARN: %+v %v", pr2, err)
	}
	clk.Advance(time.Second)
	t1 := clk.Now()
	rs := records("b", 100, 64)
	out := mustPutRecords(t, c, "alpha", rs)
	if len(out.Records) != 100 || out.EncryptionType != types.EncryptionTypeNone {
		t.Fatalf("PutRecords: %+v", out)
	}
	// Read shard 3 with every iterator type.
	shard := "shardId-000000000003"
	var mine []int
	for i, r := range out.Records {
		if *r.ShardId == shard {
			mine = append(mine, i)
		}
	}
	if len(mine) < 3 {
		t.Fatalf("only %d records in %s", len(mine), shard)
	}
	var want []string
	for _, i := range mine {
		want = append(want, fmt.Sprintf("b-%d", i))
	}
	got, last := drain(t, c, iterator(t, c, "alpha", shard, types.ShardIteratorTypeTrimHorizon, nil, nil), 7)
	if datas(got) != "r1,"+strings.Join(want, ",") || *last.MillisBehindLatest != 0 || last.NextShardIterator == nil || len(last.ChildShards) != 0 {
		t.Fatalf("TRIM_HORIZON: %s / %+v", datas(got), last)
	}
	for i, r := range got[1:] {
		o := out.Records[mine[i]]
		if *r.SequenceNumber != *o.SequenceNumber || *r.PartitionKey != *rs[mine[i]].PartitionKey || !bytes.Equal(r.Data, rs[mine[i]].Data) || !r.ApproximateArrivalTimestamp.Equal(t1) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	got, _ = drain(t, c, iterator(t, c, "alpha", shard, types.ShardIteratorTypeAtSequenceNumber, out.Records[mine[1]].SequenceNumber, nil), 100)
	if datas(got) != strings.Join(want[1:], ",") {
		t.Fatalf("AT_SEQUENCE_NUMBER: %s", datas(got))
	}
	got, _ = drain(t, c, iterator(t, c, "alpha", shard, types.ShardIteratorTypeAfterSequenceNumber, out.Records[mine[1]].SequenceNumber, nil), 100)
	if datas(got) != strings.Join(want[2:], ",") {
		t.Fatalf("AFTER_SEQUENCE_NUMBER: %s", datas(got))
	}
	got, _ = drain(t, c, iterator(t, c, "alpha", shard, types.ShardIteratorTypeAtTimestamp, nil, &t1), 100)
	if datas(got) != strings.Join(want, ",") {
		t.Fatalf("AT_TIMESTAMP: %s", datas(got))
	}
	latest := iterator(t, c, "alpha", shard, types.ShardIteratorTypeLatest, nil, nil)
	if _, err := c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String("alpha"), PartitionKey: aws.String("z"), ExplicitHashKey: aws.String("340282366920938463463374607431768211455"), Data: []byte("late|")}); err != nil {
		t.Fatal(err)
	}
	got, _ = drain(t, c, latest, 100)
	if datas(got) != "late" {
		t.Fatalf("LATEST: %s", datas(got))
	}
	// MillisBehindLatest: 10 s later, reading one record from the start.
	clk.Advance(10 * time.Second)
	res, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(iterator(t, c, "alpha", shard, types.ShardIteratorTypeTrimHorizon, nil, nil)), Limit: aws.Int32(1)})
	if err != nil || len(res.Records) != 1 || *res.MillisBehindLatest != 10_000 {
		t.Fatalf("MillisBehindLatest: %+v %v", res, err)
	}

	// Retention up and down.
	if _, err := c.IncreaseStreamRetentionPeriod(bg, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("alpha"), RetentionPeriodHours: aws.Int32(168)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DecreaseStreamRetentionPeriod(bg, &kinesis.DecreaseStreamRetentionPeriodInput{StreamARN: aws.String(arnPrefix + "alpha"), RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	sum, _ = c.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("alpha")})
	if *sum.StreamDescriptionSummary.RetentionPeriodHours != 48 {
		t.Fatalf("retention %d", *sum.StreamDescriptionSummary.RetentionPeriodHours)
	}

	// Delete.
	if _, err := c.DeleteStream(bg, &kinesis.DeleteStreamInput{StreamName: aws.String("beta")}); err != nil {
		t.Fatal(err)
	}
	ls, _ = c.ListStreams(bg, &kinesis.ListStreamsInput{})
	if !slices.Equal(ls.StreamNames, []string{"alpha", "gamma"}) {
		t.Fatalf("after delete: %v", ls.StreamNames)
	}
}

func TestErrorsAsAWSDocumentsThem(t *testing.T) {
	e, c := startStream(t, 2)
	out := mustPutRecords(t, c, "s", records("a", 4, 10))
	_, errNoSeq := c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber})
	_, errSeqTrim := c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon, StartingSequenceNumber: out.Records[0].SequenceNumber})
	_, errForeign := c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588898")})
	_, errFuture := c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(time.Now().Add(time.Hour))})
	_, errNoShard := c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000042"), ShardIteratorType: types.ShardIteratorTypeLatest})
	_, errNoStream := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("nope")})
	_, errExists := c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)})
	_, errBadName := c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String("bad name!"), ShardCount: aws.Int32(1)})
	_, errBadHash := c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456")})
	_, errLongKey := c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(strings.Repeat("k", 257)), Data: []byte("x")})
	_, errTooMany := c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: records("x", 501, 1)})
	_, errLimit := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(iterator(t, c, "s", "shardId-000000000000", types.ShardIteratorTypeLatest, nil, nil)), Limit: aws.Int32(10001)})
	_, errBadIter := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAAAAAAAGvGmk5NgJfK1x3oHHIGlcNfpQR0b+F9jAOXv9hBmH3a4fq")})
	_, errScale := c.UpdateShardCount(bg, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(5), ScalingType: types.ScalingTypeUniformScaling})
	_, errMerge := c.MergeShards(bg, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000000")})
	_, errSplit := c.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("0")})
	_, errRetention := c.DecreaseStreamRetentionPeriod(bg, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(12)})
	_, errARN := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamARN: aws.String("arn:aws:kinesis:eu-west-1:000000000000:stream/s")})
	_, errBoth := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("s"), StreamARN: aws.String(arnPrefix + "other")})
	_, errNoCount := c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String("nc"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}})
	for _, c := range []struct {
		err  error
		code string
	}{
		{errNoSeq, "InvalidArgumentException"},
		{errSeqTrim, "InvalidArgumentException"},
		{errForeign, "InvalidArgumentException"},
		{errFuture, "InvalidArgumentException"},
		{errNoShard, "ResourceNotFoundException"},
		{errNoStream, "ResourceNotFoundException"},
		{errExists, "ResourceInUseException"},
		{errBadName, "ValidationException"},
		{errBadHash, "InvalidArgumentException"},
		{errLongKey, "ValidationException"},
		{errTooMany, "ValidationException"},
		{errLimit, "ValidationException"},
		{errBadIter, "InvalidArgumentException"},
		{errScale, "LimitExceededException"},
		{errMerge, "InvalidArgumentException"},
		{errSplit, "InvalidArgumentException"},
		{errRetention, "InvalidArgumentException"},
		{errARN, "ResourceNotFoundException"},
		{errBoth, "InvalidArgumentException"},
		{errNoCount, "InvalidArgumentException"},
	} {
		if got := apiCode(c.err); got != c.code {
			t.Errorf("want %s, got %v", c.code, c.err)
		}
	}
	// The SDK maps the modelled ones to their types.
	var rnf *types.ResourceNotFoundException
	var inUse *types.ResourceInUseException
	if !errors.As(errNoStream, &rnf) || !strings.Contains(*rnf.Message, "Stream nope under account 000000000000 not found") || !errors.As(errExists, &inUse) {
		t.Errorf("typed errors: %v / %v", errNoStream, errExists)
	}

	// On the wire: status, __type and message in the body, X-Amzn-ErrorType.
	status, body, hdr := rawCall(t, e.URL, "Kinesis_20131202.DescribeStream", "application/x-amz-json-1.1", `{"StreamName":"nope"}`)
	if status != 400 || body["__type"] != "ResourceNotFoundException" || body["message"] == "" || hdr.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" || hdr.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Errorf("raw error: %d %v %v", status, body, hdr)
	}
	status, body, _ = rawCall(t, e.URL, "Kinesis_20131202.Frobnicate", "application/x-amz-json-1.1", `{}`)
	if status != 400 || body["__type"] != "UnknownOperationException" {
		t.Errorf("unknown op: %d %v", status, body)
	}
	status, body, _ = rawCall(t, e.URL, "Kinesis_20131202.ListStreams", "application/x-amz-cbor-1.1", "\xa0")
	if status != http.StatusUnsupportedMediaType || !strings.Contains(fmt.Sprint(body["message"]), "JSON 1.1") {
		t.Errorf("CBOR: %d %v", status, body)
	}
	status, body, _ = rawCall(t, e.URL, "Kinesis_20131202.ListStreams", "application/x-amz-json-1.1", `{"Limit": "ten"}`)
	if status != 400 || body["__type"] != "SerializationException" || !strings.HasSuffix(fmt.Sprint(body["message"]), ": member Limit must be an integer (got string)") {
		t.Errorf("bad JSON: %d %v", status, body)
	}
	// Members are named as the client spells them, not by Go types.
	for op, bad := range map[string]string{"ListShards": `{"StreamARN": 7}`, "DescribeStream": `[1]`, "PutRecords": `{"StreamName":"s","Records":{}}`} {
		status, body, _ = rawCall(t, e.URL, "Kinesis_20131202."+op, "application/x-amz-json-1.1", bad)
		if msg := fmt.Sprint(body["message"]); status != 400 || body["__type"] != "SerializationException" || strings.Contains(msg, "Go ") || strings.Contains(msg, "kinesisapi") {
			t.Errorf("%s %s: %d %v", op, bad, status, body)
		}
	}
	status, body, _ = rawCall(t, e.URL, "Kinesis_20131202.PutRecords", "application/x-amz-json-1.1", `{"StreamName":"s","Records":[{"PartitionKey":"k","Data":"`+strings.Repeat("A", 9<<20)+`"}]}`)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("9 MiB body: %d %v", status, body)
	}
	status, body, _ = rawCall(t, e.URL, "Kinesis_20131202.ListStreams", "application/x-amz-json-1.1", ``)
	if status != 200 || body["StreamNames"] == nil {
		t.Errorf("empty body: %d %v", status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, e.URL, nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestPutRecordsPartialFailure(t *testing.T) {
	clk := newClock()
	_, c := startStream(t, 2, writeLimit(5), clocked(clk))
	// 10 records to shard 0 (hash 0) and 3 to shard 1: shard 0 takes 5.
	var rs []types.PutRecordsRequestEntry
	for i := range 13 {
		h := "0"
		if i%5 == 4 && i < 15 && len(rs) >= 10 {
			h = "340282366920938463463374607431768211455"
		}
		if i >= 10 {
			h = "340282366920938463463374607431768211455"
		}
		rs = append(rs, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(h), Data: []byte(fmt.Sprint(i))})
	}
	out, err := c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: rs})
	if err != nil {
		t.Fatal(err)
	}
	if *out.FailedRecordCount != 5 {
		t.Fatalf("FailedRecordCount %d", *out.FailedRecordCount)
	}
	for i, r := range out.Records {
		failed := i >= 5 && i < 10
		if failed != (r.ErrorCode != nil) {
			t.Fatalf("record %d: %+v", i, r)
		}
		if failed && (*r.ErrorCode != "ProvisionedThroughputExceededException" || !strings.Contains(*r.ErrorMessage, "Rate exceeded for shard shardId-000000000000 in stream s under account 000000000000") || r.SequenceNumber != nil) {
			t.Fatalf("record %d: %s %s", i, *r.ErrorCode, *r.ErrorMessage)
		}
		if !failed && (r.SequenceNumber == nil || r.ShardId == nil) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// PutRecord on the exhausted shard is refused as a whole.
	_, err = c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("0"), Data: []byte("x")}, noRetry)
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("PutRecord: %v", err)
	}
	// A second later the shard takes records again: retry the failed ones.
	clk.Advance(time.Second)
	var retry []types.PutRecordsRequestEntry
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			retry = append(retry, rs[i])
		}
	}
	mustPutRecords(t, c, "s", retry)
	got, _ := drainFrom(t, c, "shardId-000000000000", 100)
	var ds []string
	for _, r := range got {
		ds = append(ds, string(r.Data))
	}
	if strings.Join(ds, ",") != "0,1,2,3,4,5,6,7,8,9" {
		t.Fatalf("shard 0 holds %v", ds)
	}
	// Read limits: GetRecords is refused once the shard's reads are used up.
	it := iterator(t, c, "s", "shardId-000000000001", types.ShardIteratorTypeTrimHorizon, nil, nil)
	var throttled error
	for range 10 {
		if _, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)}, noRetry); err != nil {
			throttled = err
			break
		}
	}
	if apiCode(throttled) != "ProvisionedThroughputExceededException" {
		t.Fatalf("GetRecords over 5/s: %v", throttled)
	}
}

func TestIteratorExpiry(t *testing.T) {
	clk := newClock()
	e, c := startStream(t, 1, unlimited, clocked(clk))
	mustPutRecords(t, c, "s", records("a", 3, 10))
	it := iterator(t, c, "s", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)
	clk.Advance(5 * time.Minute)
	res, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(1)})
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("at 5 min: %v", err)
	}
	// The next iterator is new: valid for another 5 minutes.
	clk.Advance(4 * time.Minute)
	if res, err = c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: res.NextShardIterator, Limit: aws.Int32(1)}); err != nil || len(res.Records) != 1 {
		t.Fatalf("next iterator at 4 min: %v", err)
	}
	clk.Advance(5*time.Minute + time.Millisecond)
	_, err = c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: res.NextShardIterator})
	var exp *types.ExpiredIteratorException
	if !errors.As(err, &exp) || !strings.Contains(*exp.Message, "Iterator expired") {
		t.Fatalf("after 5 min: %v", err)
	}
	// Iterators are sealed: a changed byte is refused, and so is one from
	// another server (another key).
	b := []byte(it)
	b[len(b)/2] ^= 1
	if _, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(string(b))}); apiCode(err) != "InvalidArgumentException" {
		t.Fatalf("tampered iterator: %v", err)
	}
	_, other := startStream(t, 1)
	fresh := iterator(t, c, "s", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)
	if _, err := other.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(fresh)}); apiCode(err) != "InvalidArgumentException" {
		t.Fatalf("foreign iterator: %v", err)
	}
	// With a configured key, iterators survive a new Server (a restart).
	key := bytes.Repeat([]byte{7}, 32)
	s1, _ := kinesisapi.New(e.Store, kinesisapi.Options{IteratorKey: key})
	s2, _ := kinesisapi.New(e.Store, kinesisapi.Options{IteratorKey: key})
	status, body := serve(s1, "GetShardIterator", `{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`)
	if status != 200 {
		t.Fatal(status, body)
	}
	status, body = serve(s2, "GetRecords", fmt.Sprintf(`{"ShardIterator":%q}`, body["ShardIterator"]))
	if status != 200 || len(body["Records"].([]any)) != 3 {
		t.Fatalf("iterator on a second server with the same key: %d %v", status, body)
	}
	if _, err := kinesisapi.New(e.Store, kinesisapi.Options{IteratorKey: []byte("short")}); err == nil {
		t.Fatal("short key accepted")
	}
}

// Limited: with one call in progress (a client still sending its body),
// a second call is refused at once with LimitExceededException, which the
// SDK knows as a throttling error; once the first ends, calls go through
// again.
func TestLimitedInFlight(t *testing.T) {
	e, _ := startStream(t, 1, unlimited)
	hs := httptest.NewServer(e.API.Limited(1))
	defer hs.Close()
	c := kinesisapitest.Client(t, hs.URL, kinesisapitest.AccessKeyID, kinesisapitest.SecretAccessKey, noRetry)

	body := `{"StreamName":"s","PartitionKey":"k","Data":"aGVsbG8="}`
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, hs.URL, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecord")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	first := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	// The write returns once the handler reads it: the call holds the slot.
	if _, err := io.WriteString(pw, body[:10]); err != nil {
		t.Fatal(err)
	}
	_, err = c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if code := apiCode(err); code != "LimitExceededException" {
		t.Errorf("second call while one is in progress: %v, want LimitExceededException", err)
	}
	io.WriteString(pw, body[10:])
	pw.Close()
	if code := <-first; code != http.StatusOK {
		t.Errorf("the call in progress: status %d", code)
	}
	if _, err := c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("s")}); err != nil {
		t.Errorf("after the call ended: %v", err)
	}
}

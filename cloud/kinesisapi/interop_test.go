package kinesisapi_test

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// The interop test runs one scenario with the unmodified SDK against
// kinesalite and against this server and compares what each observed:
// shard ids, hash ranges and lineage, routing, the records each iterator
// type returns (sequence numbers compared by their order, not their
// digits), paging, error types. TOOLING.md lists what kinesalite lacks
// (UpdateShardCount, ListShards paging, ChildShards, retention over 168 h);
// those observations are logged as differences, everything else must agree.

// transcript is an ordered list of observations.
type transcript struct {
	keys []string
	vals map[string]string
}

func (tr *transcript) add(key, format string, args ...any) {
	if tr.vals == nil {
		tr.vals = map[string]string{}
	}
	if _, ok := tr.vals[key]; !ok {
		tr.keys = append(tr.keys, key)
	}
	tr.vals[key] = fmt.Sprintf(format, args...)
}

// kinesaliteLacks are the observations where kinesalite is known to
// differ (TOOLING.md): they are logged, not asserted.
var kinesaliteLacks = map[string]bool{
	"parent end: ChildShards":        true, // no ChildShards in GetRecords
	"parent end: reads to the end":   true, // it signals the end one call later (an empty read); we with the last records
	"UpdateShardCount 4 → 6":         true, // not implemented
	"UpdateShardCount: open shards":  true,
	"ListShards MaxResults 2 paging": true, // returns every shard, no NextToken
	"retention 200 h":                true, // caps retention at 168 h
}

func describeShards(t *testing.T, c *kinesis.Client, stream string) []types.Shard {
	t.Helper()
	d, err := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	return d.StreamDescription.Shards
}

func shardLine(sh types.Shard) string {
	s := fmt.Sprintf("%s [%s, %s]", *sh.ShardId, *sh.HashKeyRange.StartingHashKey, *sh.HashKeyRange.EndingHashKey)
	if sh.ParentShardId != nil {
		s += " parent " + *sh.ParentShardId
	}
	if sh.AdjacentParentShardId != nil {
		s += " adjacent " + *sh.AdjacentParentShardId
	}
	if sh.SequenceNumberRange.EndingSequenceNumber != nil {
		s += " closed"
	}
	return s
}

func shardLines(shards []types.Shard) string {
	var out []string
	for _, sh := range shards {
		out = append(out, shardLine(sh))
	}
	return strings.Join(out, "; ")
}

// recs renders records as partition key=data, checking that sequence
// numbers rise.
func recs(t *testing.T, rs []types.Record) string {
	t.Helper()
	var out []string
	var prev *big.Int
	for _, r := range rs {
		n, ok := new(big.Int).SetString(*r.SequenceNumber, 10)
		if !ok || prev != nil && n.Cmp(prev) <= 0 {
			t.Errorf("sequence numbers do not rise: %v then %s", prev, *r.SequenceNumber)
		}
		prev = n
		out = append(out, *r.PartitionKey+"="+string(r.Data))
	}
	return strings.Join(out, ",")
}

func errType(err error) string {
	if err == nil {
		return "ok"
	}
	return apiCode(err)
}

// interop runs the scenario on one endpoint and notes what it observes.
type interop struct {
	t  *testing.T
	c  *kinesis.Client
	tr *transcript
	// between makes time pass between two puts: it returns an instant
	// after every record stored so far and at or before every record
	// stored next.
	between func() time.Time
}

// wallClockBetween is interop.between for a server on the wall clock
// (kinesalite): the next millisecond, once the clock has reached it.
// Arrival timestamps have millisecond precision.
func wallClockBetween() time.Time {
	t := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
	time.Sleep(time.Until(t)) // under a millisecond: until the clock shows t
	return t
}

const stream = "interop"

func scenario(t *testing.T, c *kinesis.Client, between func() time.Time) *transcript {
	s := &interop{t: t, c: c, tr: &transcript{}, between: between}
	shards := s.create()
	s.readEveryType(shards, s.writes())
	s.splitAndMerge()
	s.errorTypes()
	return s.tr
}

// batch is n entries with partition keys dev-i and data prefix+i.
func batch(prefix string, n int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		out[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("dev-%d", i)), Data: []byte(fmt.Sprintf("%s%d", prefix, i))}
	}
	return out
}

// put puts the batch and returns the shard of each entry.
func (s *interop) put(rs []types.PutRecordsRequestEntry) ([]string, *kinesis.PutRecordsOutput) {
	out, err := s.c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: rs})
	if err != nil {
		s.t.Fatal(err)
	}
	var routes []string
	for _, r := range out.Records {
		routes = append(routes, aws.ToString(r.ShardId))
	}
	return routes, out
}

func (s *interop) create() []types.Shard {
	c, tr := s.c, s.tr
	_, err := c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(4)})
	tr.add("CreateStream", "%s", errType(err))
	waitActive(s.t, c, stream)
	_, err = c.CreateStream(bg, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)})
	tr.add("CreateStream again", "%s", errType(err))
	shards := describeShards(s.t, c, stream)
	tr.add("DescribeStream", "%s", shardLines(shards))
	ls, err := c.ListStreams(bg, &kinesis.ListStreamsInput{})
	tr.add("ListStreams", "%v %v", ls.StreamNames, err)
	return shards
}

// written is what writes put: the sequence numbers of batch A by shard,
// the shards batch B went to, and an instant between the two batches.
type written struct {
	seqA    map[string][]string
	shardsB map[string]bool
	between time.Time
}

func (s *interop) writes() written {
	c, tr := s.c, s.tr
	for i := range 3 {
		out, err := c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprintf("single-%d", i)), Data: []byte(fmt.Sprintf("s%d", i))})
		if err != nil {
			s.t.Fatal(err)
		}
		tr.add(fmt.Sprintf("PutRecord %d", i), "%s", *out.ShardId)
	}
	out, err := c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("explicit"), Data: []byte("e"), ExplicitHashKey: aws.String("170141183460469231731687303715884105728")})
	tr.add("PutRecord explicit hash key", "%s %v", aws.ToString(out.ShardId), err)
	routes, pa := s.put(batch("a", 100))
	w := written{seqA: map[string][]string{}, shardsB: map[string]bool{}}
	for _, r := range pa.Records {
		w.seqA[*r.ShardId] = append(w.seqA[*r.ShardId], *r.SequenceNumber)
	}
	tr.add("PutRecords routing", "failed %d: %s", *pa.FailedRecordCount, strings.Join(routes, ","))
	w.between = s.between()
	routes, _ = s.put(batch("b", 20))
	for _, id := range routes {
		w.shardsB[id] = true
	}
	return w
}

// readEveryType reads every shard with every iterator type.
func (s *interop) readEveryType(shards []types.Shard, w written) {
	t, c, tr := s.t, s.c, s.tr
	for _, sh := range shards {
		id := *sh.ShardId
		got, _ := drain(t, c, iterator(t, c, stream, id, types.ShardIteratorTypeTrimHorizon, nil, nil), 10000)
		tr.add(id+" TRIM_HORIZON", "%s", recs(t, got))
		paged, _ := drain(t, c, iterator(t, c, stream, id, types.ShardIteratorTypeTrimHorizon, nil, nil), 7)
		tr.add(id+" TRIM_HORIZON limit 7", "%s", recs(t, paged))
		if seqs := w.seqA[id]; len(seqs) >= 3 {
			got, _ = drain(t, c, iterator(t, c, stream, id, types.ShardIteratorTypeAtSequenceNumber, aws.String(seqs[2]), nil), 10000)
			tr.add(id+" AT_SEQUENCE_NUMBER", "%s", recs(t, got))
			got, _ = drain(t, c, iterator(t, c, stream, id, types.ShardIteratorTypeAfterSequenceNumber, aws.String(seqs[2]), nil), 10000)
			tr.add(id+" AFTER_SEQUENCE_NUMBER", "%s", recs(t, got))
		}
		if w.shardsB[id] {
			got, _ = drain(t, c, iterator(t, c, stream, id, types.ShardIteratorTypeAtTimestamp, nil, &w.between), 10000)
			tr.add(id+" AT_TIMESTAMP", "%s", recs(t, got))
		}
		latest := iterator(t, c, stream, id, types.ShardIteratorTypeLatest, nil, nil)
		if _, err := c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("late-" + id), Data: []byte("late"), ExplicitHashKey: sh.HashKeyRange.StartingHashKey}); err != nil {
			t.Fatal(err)
		}
		got, last := drain(t, c, latest, 10000)
		tr.add(id+" LATEST", "%s next %v", recs(t, got), last.NextShardIterator != nil)
	}
}

// splitAndMerge splits shard 0 in the middle, puts, reads the parent to
// its end and the children, merges them back, lists and rescales.
func (s *interop) splitAndMerge() {
	t, c, tr := s.t, s.c, s.tr
	mid := new(big.Int).Rsh(new(big.Int).Lsh(big.NewInt(1), 128), 3).String() // 2^125, inside shard 0
	_, err := c.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(mid)})
	tr.add("SplitShard", "%s", errType(err))
	waitActive(t, c, stream)
	tr.add("DescribeStream after split", "%s", shardLines(describeShards(t, c, stream)))
	routes, _ := s.put(batch("c", 40))
	tr.add("PutRecords routing after split", "%s", strings.Join(routes, ","))
	s.readParentToEnd()
	for _, id := range []string{"shardId-000000000004", "shardId-000000000005"} {
		got, _ := drain(t, c, iterator(t, c, stream, id, types.ShardIteratorTypeTrimHorizon, nil, nil), 10000)
		tr.add(id+" after split", "%s", recs(t, got))
	}

	_, err = c.MergeShards(bg, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: aws.String("shardId-000000000004"), AdjacentShardToMerge: aws.String("shardId-000000000005")})
	tr.add("MergeShards", "%s", errType(err))
	waitActive(t, c, stream)
	_, err = c.MergeShards(bg, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000003")})
	tr.add("MergeShards not adjacent", "%s", errType(err))
	tr.add("DescribeStream after merge", "%s", shardLines(describeShards(t, c, stream)))
	lsh, err := c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	tr.add("ListShards", "%s %v", shardLines(lsh.Shards), err)
	lsh, err = c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(stream), ExclusiveStartShardId: aws.String("shardId-000000000003")})
	tr.add("ListShards ExclusiveStartShardId", "%v %v", ids(lsh.Shards), err)
	lsh, err = c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String(stream), MaxResults: aws.Int32(2)})
	if err == nil {
		tr.add("ListShards MaxResults 2 paging", "%v next %v", ids(lsh.Shards), lsh.NextToken != nil)
	} else {
		tr.add("ListShards MaxResults 2 paging", "%s", errType(err))
	}
	_, err = c.UpdateShardCount(bg, &kinesis.UpdateShardCountInput{StreamName: aws.String(stream), TargetShardCount: aws.Int32(6), ScalingType: types.ScalingTypeUniformScaling}, noRetry)
	tr.add("UpdateShardCount 4 → 6", "%s", errType(err))
	if err == nil {
		waitActive(t, c, stream)
	}
	sum, _ := c.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	tr.add("UpdateShardCount: open shards", "%d", aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount))
}

// readParentToEnd reads the split parent with small pages until its end.
func (s *interop) readParentToEnd() {
	t, c, tr := s.t, s.c, s.tr
	it := iterator(t, c, stream, "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)
	var parent []types.Record
	var children []string
	reads := 0
	for reads < 100 {
		res, err := c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(it), Limit: aws.Int32(10)})
		if err != nil {
			t.Fatal(err)
		}
		reads++
		parent = append(parent, res.Records...)
		if res.NextShardIterator == nil {
			for _, k := range res.ChildShards {
				children = append(children, fmt.Sprintf("%s %v [%s, %s]", *k.ShardId, k.ParentShards, *k.HashKeyRange.StartingHashKey, *k.HashKeyRange.EndingHashKey))
			}
			break
		}
		it = *res.NextShardIterator
	}
	tr.add("parent end: records", "%s", recs(t, parent))
	tr.add("parent end: reached", "%v", reads < 100)
	tr.add("parent end: reads to the end", "%d", reads)
	tr.add("parent end: ChildShards", "%v", children)
}

func (s *interop) errorTypes() {
	t, c, tr := s.t, s.c, s.tr
	_, err := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("missing")})
	tr.add("DescribeStream missing", "%s", errType(err))
	_, err = c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String("shardId-000000000001"), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber})
	tr.add("AT_SEQUENCE_NUMBER without one", "%s", errType(err))
	_, err = c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String("shardId-000000000001"), ShardIteratorType: types.ShardIteratorTypeLatest, StartingSequenceNumber: aws.String("1")})
	tr.add("LATEST with a sequence number", "%s", errType(err))
	_, err = c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String("shardId-000000000099"), ShardIteratorType: types.ShardIteratorTypeLatest})
	tr.add("GetShardIterator missing shard", "%s", errType(err))
	_, err = c.GetShardIterator(bg, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String("shardId-000000000001"), ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(time.Now().Add(time.Hour))})
	tr.add("AT_TIMESTAMP in the future", "%s", errType(err))
	_, err = c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(strings.Repeat("k", 257)), Data: []byte("x")})
	tr.add("PutRecord 257-character key", "%s", errType(err))
	_, err = c.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("x"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456")})
	tr.add("PutRecord hash key 2^128", "%s", errType(err))
	_, err = c.PutRecords(bg, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: records("x", 501, 1)})
	tr.add("PutRecords 501", "%s", errType(err))
	_, err = c.GetRecords(bg, &kinesis.GetRecordsInput{ShardIterator: aws.String(iterator(t, c, stream, "shardId-000000000001", types.ShardIteratorTypeLatest, nil, nil)), Limit: aws.Int32(10001)})
	tr.add("GetRecords limit 10001", "%s", errType(err))
	_, err = c.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String("shardId-000000000001"), NewStartingHashKey: aws.String("1")})
	tr.add("SplitShard outside the shard", "%s", errType(err))
	_, err = c.IncreaseStreamRetentionPeriod(bg, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(stream), RetentionPeriodHours: aws.Int32(48)})
	tr.add("retention 48 h", "%s", errType(err))
	_, err = c.IncreaseStreamRetentionPeriod(bg, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(stream), RetentionPeriodHours: aws.Int32(36)})
	tr.add("retention increase to less", "%s", errType(err))
	sum, _ := c.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	tr.add("DescribeStreamSummary", "%s retention %d", sum.StreamDescriptionSummary.StreamStatus, aws.ToInt32(sum.StreamDescriptionSummary.RetentionPeriodHours))
	_, err = c.IncreaseStreamRetentionPeriod(bg, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(stream), RetentionPeriodHours: aws.Int32(200)})
	tr.add("retention 200 h", "%s", errType(err))
	_, err = c.DeleteStream(bg, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	tr.add("DeleteStream", "%s", errType(err))
}

func TestInteropWithKinesalite(t *testing.T) {
	theirs := scenario(t, kinesisapitest.Client(t, testenv.StartKinesalite(t).Endpoint, kinesisapitest.AccessKeyID, kinesisapitest.SecretAccessKey), wallClockBetween)
	clk := newClock()
	ours := scenario(t, start(t, unlimited, clocked(clk)).client, func() time.Time {
		clk.Advance(time.Millisecond)
		return clk.Now()
	})

	keys := append([]string(nil), ours.keys...)
	for _, k := range theirs.keys {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	agree, differ := 0, 0
	for _, k := range keys {
		a, b := theirs.vals[k], ours.vals[k]
		switch {
		case a == b:
			agree++
		case kinesaliteLacks[k]:
			differ++
			t.Logf("known difference, %s:\n\tkinesalite: %s\n\ttributary:  %s", k, a, b)
		default:
			t.Errorf("%s:\n\tkinesalite: %s\n\ttributary:  %s", k, a, b)
		}
	}
	t.Logf("kinesalite and tributary agree on %d of %d observations; %d known differences", agree, len(keys), differ)
}

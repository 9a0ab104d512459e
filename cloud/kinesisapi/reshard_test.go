package kinesisapi_test

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestSplitReadParentToChildShardsThenChildren(t *testing.T) {
	_, c := startStream(t, 2, unlimited)
	before := mustPutRecords(t, c, "s", records("before", 100, 20))
	if _, err := c.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); apiCode(err) != "InvalidArgumentException" {
		t.Fatalf("split outside the shard: %v", err)
	}
	if _, err := c.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("42535295865117307932921825928971026432")}); err != nil {
		t.Fatal(err)
	}
	after := mustPutRecords(t, c, "s", records("after", 100, 20))
	for _, r := range after.Records {
		if *r.ShardId == "shardId-000000000000" {
			t.Fatal("record stored in the closed parent")
		}
	}
	// The parent to its end: all its records, then no NextShardIterator
	// and the two children.
	want := 0
	for _, r := range before.Records {
		if *r.ShardId == "shardId-000000000000" {
			want++
		}
	}
	got, last := drainFrom(t, c, "shardId-000000000000", 10)
	if len(got) != want || last.NextShardIterator != nil || len(last.ChildShards) != 2 {
		t.Fatalf("parent: %d records (want %d), last %+v", len(got), want, last)
	}
	wantKids := [][3]string{
		{"shardId-000000000002", "0", "42535295865117307932921825928971026431"},
		{"shardId-000000000003", "42535295865117307932921825928971026432", "170141183460469231731687303715884105727"},
	}
	for i, k := range last.ChildShards {
		if *k.ShardId != wantKids[i][0] || *k.HashKeyRange.StartingHashKey != wantKids[i][1] || *k.HashKeyRange.EndingHashKey != wantKids[i][2] || !slices.Equal(k.ParentShards, []string{"shardId-000000000000"}) {
			t.Fatalf("child %d: %s %+v %v", i, *k.ShardId, *k.HashKeyRange, k.ParentShards)
		}
	}
	// Then the children: every record after the split that routes there.
	n := 0
	for _, k := range last.ChildShards {
		got, last := drainFrom(t, c, *k.ShardId, 1000)
		n += len(got)
		if last.NextShardIterator == nil {
			t.Fatal("open child has no next iterator")
		}
	}
	for _, r := range after.Records {
		if *r.ShardId != "shardId-000000000001" {
			n--
		}
	}
	if n != 0 {
		t.Fatalf("children hold %d records more than were routed to them", n)
	}
	d, _ := c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
	parent := d.StreamDescription.Shards[0]
	if parent.SequenceNumberRange.EndingSequenceNumber == nil || *d.StreamDescription.Shards[2].ParentShardId != "shardId-000000000000" {
		t.Fatalf("described: %+v", d.StreamDescription.Shards)
	}

	// Merge the children back: one child with a parent and an adjacent parent.
	if _, err := c.MergeShards(bg, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000003")}); err != nil {
		t.Fatal(err)
	}
	_, last = drainFrom(t, c, "shardId-000000000003", 1000)
	if last.NextShardIterator != nil || len(last.ChildShards) != 1 || *last.ChildShards[0].ShardId != "shardId-000000000004" ||
		!slices.Equal(last.ChildShards[0].ParentShards, []string{"shardId-000000000002", "shardId-000000000003"}) ||
		*last.ChildShards[0].HashKeyRange.StartingHashKey != "0" || *last.ChildShards[0].HashKeyRange.EndingHashKey != "170141183460469231731687303715884105727" {
		t.Fatalf("after merge: %+v", last.ChildShards)
	}
	d, _ = c.DescribeStream(bg, &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
	m := d.StreamDescription.Shards[4]
	if *m.ParentShardId != "shardId-000000000002" || *m.AdjacentParentShardId != "shardId-000000000003" {
		t.Fatalf("merged shard %+v", m)
	}
}

func uniformRanges(n int) [][2]string {
	pow := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(pow, big.NewInt(int64(n)))
	var out [][2]string
	for i := range n {
		end := new(big.Int).Mul(step, big.NewInt(int64(i+1)))
		if i == n-1 {
			end = pow
		}
		out = append(out, [2]string{new(big.Int).Mul(step, big.NewInt(int64(i))).String(), end.Sub(end, big.NewInt(1)).String()})
	}
	return out
}

func TestUpdateShardCountThroughTheSDK(t *testing.T) {
	_, c := startStream(t, 4, unlimited)
	for _, target := range []int32{8, 5, 3} {
		mustPutRecords(t, c, "s", records(fmt.Sprint(target), 50, 10))
		sum, _ := c.DescribeStreamSummary(bg, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
		out, err := c.UpdateShardCount(bg, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(target), ScalingType: types.ScalingTypeUniformScaling})
		if err != nil {
			t.Fatal(err)
		}
		if *out.CurrentShardCount != *sum.StreamDescriptionSummary.OpenShardCount || *out.TargetShardCount != target || *out.StreamName != "s" || *out.StreamARN != arnPrefix+"s" {
			t.Fatalf("UpdateShardCount → %d: %+v", target, out)
		}
		open := listAll(t, c, &kinesis.ListShardsInput{StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
		slices.SortFunc(open, func(a, b types.Shard) int {
			x, _ := new(big.Int).SetString(*a.HashKeyRange.StartingHashKey, 10)
			y, _ := new(big.Int).SetString(*b.HashKeyRange.StartingHashKey, 10)
			return x.Cmp(y)
		})
		want := uniformRanges(int(target))
		if len(open) != int(target) {
			t.Fatalf("→ %d: %d open shards", target, len(open))
		}
		for i, sh := range open {
			if *sh.HashKeyRange.StartingHashKey != want[i][0] || *sh.HashKeyRange.EndingHashKey != want[i][1] {
				t.Fatalf("→ %d: shard %d %+v, want %v", target, i, *sh.HashKeyRange, want[i])
			}
		}
	}
	// Every record is still readable: walk the lineage from the root
	// shards, parents before children, as a KCL consumer would.
	all := listAll(t, c, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	done := map[string]bool{}
	total := 0
	for len(done) < len(all) {
		progressed := false
		for _, sh := range all {
			id := *sh.ShardId
			if done[id] || sh.ParentShardId != nil && !done[*sh.ParentShardId] || sh.AdjacentParentShardId != nil && !done[*sh.AdjacentParentShardId] {
				continue
			}
			got, _ := drainFrom(t, c, id, 1000)
			total += len(got)
			done[id] = true
			progressed = true
		}
		if !progressed {
			t.Fatal("lineage has a cycle or a missing parent")
		}
	}
	if total != 150 {
		t.Fatalf("read %d records through the lineage, want 150", total)
	}
	if _, err := c.UpdateShardCount(bg, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(7), ScalingType: types.ScalingTypeUniformScaling}); apiCode(err) != "LimitExceededException" {
		t.Fatalf("3 → 7: %v", err)
	}
}

func TestRetentionTrimmingThroughTheSDK(t *testing.T) {
	clk := newClock()
	e, c := startStream(t, 1, unlimited, clocked(clk))
	mustPutRecords(t, c, "s", records("old", 20, 10))
	clk.Advance(20 * time.Hour)
	mustPutRecords(t, c, "s", records("new", 5, 10))
	clk.Advance(5 * time.Hour)
	got, _ := drainFrom(t, c, "shardId-000000000000", 100)
	if datas(got) != "new-0,new-1,new-2,new-3,new-4" {
		t.Fatalf("after 25 h: %s", datas(got))
	}
	if st, err := e.Store.Trim(bg); err != nil || st.Records != 20 {
		t.Fatalf("trim: %+v %v", st, err)
	}
	// A longer retention keeps records longer.
	if _, err := c.IncreaseStreamRetentionPeriod(bg, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Hour)
	got, _ = drainFrom(t, c, "shardId-000000000000", 100)
	if len(got) != 5 {
		t.Fatalf("at 48 h retention: %s", datas(got))
	}
	if _, err := c.DecreaseStreamRetentionPeriod(bg, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(24)}); err != nil {
		t.Fatal(err)
	}
	got, _ = drainFrom(t, c, "shardId-000000000000", 100)
	if len(got) != 0 {
		t.Fatalf("after decreasing to 24 h: %s", datas(got))
	}
	if _, err := c.IncreaseStreamRetentionPeriod(bg, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(8761)}); apiCode(err) != "InvalidArgumentException" {
		t.Fatalf("8761 h: %v", err)
	}
	if _, err := c.IncreaseStreamRetentionPeriod(bg, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("s"), RetentionPeriodHours: aws.Int32(8760)}); err != nil {
		t.Fatalf("8760 h: %v", err)
	}
}

func TestListShardsPagingAndFilters(t *testing.T) {
	clk := newClock()
	_, c := startStream(t, 4, unlimited, clocked(clk)) // 0..3 at t0
	t0 := clk.Now()
	clk.Advance(time.Hour)
	t1 := clk.Now()
	if _, err := c.SplitShard(bg, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err) // 0 closed at t1; 4, 5 open
	}
	clk.Advance(time.Hour)
	t2 := clk.Now()
	if _, err := c.MergeShards(bg, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000003")}); err != nil {
		t.Fatal(err) // 2, 3 closed at t2; 6 open
	}
	clk.Advance(time.Hour)

	// Paging: MaxResults 2 through NextToken, by hand and by paginator.
	var got []string
	out, err := c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(2)})
	for {
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Shards) > 2 {
			t.Fatalf("page of %d", len(out.Shards))
		}
		got = append(got, ids(out.Shards)...)
		if out.NextToken == nil {
			break
		}
		out, err = c.ListShards(bg, &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(2)})
	}
	all := []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000003", "shardId-000000000004", "shardId-000000000005", "shardId-000000000006"}
	if !slices.Equal(got, all) {
		t.Fatalf("paged: %v", got)
	}
	if p := ids(listAll(t, c, &kinesis.ListShardsInput{StreamARN: aws.String(arnPrefix + "s"), MaxResults: aws.Int32(3)})); !slices.Equal(p, all) {
		t.Fatalf("by ARN, 3 a page: %v", p)
	}
	// The SDK's DescribeStream paginator pages with ExclusiveStartShardId.
	var described []string
	dp := kinesis.NewDescribeStreamPaginator(c, &kinesis.DescribeStreamInput{StreamName: aws.String("s"), Limit: aws.Int32(2)})
	for dp.HasMorePages() {
		page, err := dp.NextPage(bg)
		if err != nil {
			t.Fatal(err)
		}
		described = append(described, ids(page.StreamDescription.Shards)...)
	}
	if !slices.Equal(described, all) {
		t.Fatalf("DescribeStream paginator: %v", described)
	}
	// A filter carries over into the token.
	page, _ := c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(1), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	page2, _ := c.ListShards(bg, &kinesis.ListShardsInput{NextToken: page.NextToken})
	if !slices.Equal(append(ids(page.Shards), ids(page2.Shards)...), []string{"shardId-000000000001", "shardId-000000000004", "shardId-000000000005", "shardId-000000000006"}) {
		t.Fatalf("AT_LATEST paged: %v + %v", ids(page.Shards), ids(page2.Shards))
	}

	for _, c2 := range []struct {
		name string
		in   kinesis.ListShardsInput
		want []int
	}{
		{"FROM_TRIM_HORIZON", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}}, []int{0, 1, 2, 3, 4, 5, 6}},
		{"AT_TRIM_HORIZON", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}}, []int{0, 1, 2, 3}},
		{"AT_LATEST", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}}, []int{1, 4, 5, 6}},
		{"AFTER_SHARD_ID", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000003")}}, []int{4, 5, 6}},
		{"ExclusiveStartShardId", kinesis.ListShardsInput{ExclusiveStartShardId: aws.String("shardId-000000000004")}, []int{5, 6}},
		{"AT_TIMESTAMP t0", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(t0)}}, []int{0, 1, 2, 3}},
		{"AT_TIMESTAMP t1+30m", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(t1.Add(30 * time.Minute))}}, []int{1, 2, 3, 4, 5}},
		{"AT_TIMESTAMP now", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(clk.Now())}}, []int{1, 4, 5, 6}},
		{"FROM_TIMESTAMP t1+30m", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(t1.Add(30 * time.Minute))}}, []int{1, 2, 3, 4, 5, 6}},
		{"FROM_TIMESTAMP t2+1m", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(t2.Add(time.Minute))}}, []int{1, 4, 5, 6}},
		{"FROM_TIMESTAMP before creation", kinesis.ListShardsInput{ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(t0.Add(-time.Hour))}}, []int{0, 1, 2, 3, 4, 5, 6}},
	} {
		in := c2.in
		in.StreamName = aws.String("s")
		out, err := c.ListShards(bg, &in)
		if err != nil {
			t.Fatalf("%s: %v", c2.name, err)
		}
		var want []string
		for _, i := range c2.want {
			want = append(want, fmt.Sprintf("shardId-%012d", i))
		}
		if !slices.Equal(ids(out.Shards), want) {
			t.Errorf("%s: %v, want %v", c2.name, ids(out.Shards), want)
		}
	}

	// Argument rules and token expiry.
	tok, _ := c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(1)})
	for name, in := range map[string]*kinesis.ListShardsInput{
		"token and name":       {NextToken: tok.NextToken, StreamName: aws.String("s")},
		"token and start id":   {NextToken: tok.NextToken, ExclusiveStartShardId: aws.String("shardId-000000000001")},
		"token and filter":     {NextToken: tok.NextToken, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}},
		"neither":              {},
		"garbage token":        {NextToken: aws.String("bm90IGEgdG9rZW4=")},
		"AFTER_SHARD_ID alone": {StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId}},
		"AT_TIMESTAMP alone":   {StreamName: aws.String("s"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp}},
	} {
		if _, err := c.ListShards(bg, in); apiCode(err) != "InvalidArgumentException" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.ListShards(bg, &kinesis.ListShardsInput{StreamName: aws.String("s"), MaxResults: aws.Int32(10001)}); apiCode(err) != "ValidationException" {
		t.Errorf("MaxResults 10001: %v", err)
	}
	clk.Advance(5*time.Minute + time.Second)
	var exp *types.ExpiredNextTokenException
	if _, err := c.ListShards(bg, &kinesis.ListShardsInput{NextToken: tok.NextToken}); !errors.As(err, &exp) {
		t.Errorf("expired token: %v", err)
	}
	// Closed shards leave the listing once their retention is over.
	clk.Advance(24 * time.Hour)
	if got := ids(listAll(t, c, &kinesis.ListShardsInput{StreamName: aws.String("s")})); !slices.Equal(got, []string{"shardId-000000000001", "shardId-000000000004", "shardId-000000000005", "shardId-000000000006"}) {
		t.Errorf("after retention: %v", got)
	}
}

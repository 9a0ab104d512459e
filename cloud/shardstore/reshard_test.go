package shardstore_test

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
)

func shardByID(in shardstore.StreamInfo, id string) shardstore.ShardInfo {
	for _, sh := range in.Shards {
		if sh.ShardID == id {
			return sh
		}
	}
	return shardstore.ShardInfo{}
}

func openShards(in shardstore.StreamInfo) []shardstore.ShardInfo {
	var out []shardstore.ShardInfo
	for _, sh := range in.Shards {
		if sh.Open() {
			out = append(out, sh)
		}
	}
	slices.SortFunc(out, func(a, b shardstore.ShardInfo) int { return a.StartingHashKey.Cmp(b.StartingHashKey) })
	return out
}

// checkPartition fails unless the open shards cover the key space exactly.
func checkPartition(t *testing.T, in shardstore.StreamInfo) {
	t.Helper()
	open := openShards(in)
	if len(open) != in.OpenShards || open[0].StartingHashKey != (shardstore.HashKey{}) || open[len(open)-1].EndingHashKey != shardstore.MaxHashKey {
		t.Fatalf("open shards do not cover the key space: %+v", open)
	}
	for i := 1; i < len(open); i++ {
		prev := open[i-1].EndingHashKey
		next := open[i].StartingHashKey
		if p, _ := shardstore.ParseHashKey(prev.String()); p.Cmp(next) >= 0 || fmt.Sprint(addOne(prev)) != fmt.Sprint(next) {
			t.Fatalf("gap or overlap between %s and %s", prev, next)
		}
	}
}

func addOne(h shardstore.HashKey) shardstore.HashKey {
	h.Lo++
	if h.Lo == 0 {
		h.Hi++
	}
	return h
}

func TestSplitThenReadParentToEndThenChildren(t *testing.T) {
	clk := newClock()
	o := unlimited()
	o.Now = clk.Now
	s := open(t, o)
	mustCreate(t, s, "t", 2)
	before := mustPut(t, s, "t", entries("before", 200, 30))
	in, _ := s.DescribeStream("t")
	parent := in.Shards[0]
	mid := shardstore.HashKey{Hi: parent.EndingHashKey.Hi / 2}
	if err := s.SplitShard(bg, "t", parent.ShardID, mid); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	after := mustPut(t, s, "t", entries("after", 200, 30))

	in, _ = s.DescribeStream("t")
	checkPartition(t, in)
	p := shardByID(in, parent.ShardID)
	c1, c2 := shardByID(in, "shardId-000000000002"), shardByID(in, "shardId-000000000003")
	if p.Open() || p.EndingSequenceNumber == "" || c1.ParentShardID != parent.ShardID || c2.ParentShardID != parent.ShardID ||
		c1.StartingHashKey != parent.StartingHashKey || c1.EndingHashKey.String() != fmt.Sprint(shardstore.HashKey{Hi: mid.Hi - 1, Lo: ^uint64(0)}) ||
		c2.StartingHashKey != mid || c2.EndingHashKey != parent.EndingHashKey || in.OpenShards != 3 {
		t.Fatalf("after split: %+v", in.Shards)
	}
	if !(p.EndingSequenceNumber < c1.StartingSequenceNumber) {
		t.Fatalf("parent ends at %s, child starts at %s", p.EndingSequenceNumber, c1.StartingSequenceNumber)
	}
	// The parent, read to its end: every record put into it before the
	// split, then the end of the shard with both children.
	recs, last := readAll(t, s, "t", parent.ShardID, shardstore.Start{Type: shardstore.TrimHorizon}, 9)
	want := 0
	for _, r := range before {
		if r.ShardID == parent.ShardID {
			want++
		}
	}
	if len(recs) != want || !last.EndOfShard || len(last.ChildShards) != 2 {
		t.Fatalf("parent: %d records (want %d), last read %+v", len(recs), want, last)
	}
	for _, c := range last.ChildShards {
		if !slices.Equal(c.ParentShards, []string{parent.ShardID}) {
			t.Fatalf("child %+v", c)
		}
	}
	for _, r := range recs {
		if r.SequenceNumber > p.EndingSequenceNumber {
			t.Fatalf("record %s after the parent's end %s", r.SequenceNumber, p.EndingSequenceNumber)
		}
	}
	// A read that ends exactly at the last record reports the end at once.
	pos, _ := s.Seek("t", parent.ShardID, shardstore.Start{Type: shardstore.TrimHorizon})
	if res, _ := s.Read(bg, pos, want); len(res.Records) != want || !res.EndOfShard {
		t.Fatalf("exact read: %d records, end %v", len(res.Records), res.EndOfShard)
	}
	// LATEST on a closed shard is its end.
	pos, _ = s.Seek("t", parent.ShardID, shardstore.Start{Type: shardstore.Latest})
	if res, _ := s.Read(bg, pos, 10); len(res.Records) != 0 || !res.EndOfShard {
		t.Fatalf("LATEST of a closed shard: %+v", res)
	}
	// Children got the records that route to their ranges after the split.
	n := 0
	for _, c := range []shardstore.ShardInfo{c1, c2} {
		got, last := readAll(t, s, "t", c.ShardID, shardstore.Start{Type: shardstore.TrimHorizon}, 50)
		n += len(got)
		if last.EndOfShard {
			t.Fatal("open child reported end of shard")
		}
		for _, r := range got {
			h := shardstore.HashPartitionKey(r.PartitionKey)
			if h.Cmp(c.StartingHashKey) < 0 || h.Cmp(c.EndingHashKey) > 0 {
				t.Fatalf("record %s in %s outside its range", r.PartitionKey, c.ShardID)
			}
		}
	}
	for _, r := range after {
		if r.ShardID == parent.ShardID {
			t.Fatal("record stored in the closed parent")
		}
	}
	// Errors: closed shard, bad key, unknown shard.
	if err := s.SplitShard(bg, "t", parent.ShardID, mid); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Errorf("split a closed shard: %v", err)
	}
	if err := s.SplitShard(bg, "t", c2.ShardID, c2.StartingHashKey); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Errorf("split at the start: %v", err)
	}
	if err := s.SplitShard(bg, "t", "shardId-000000000099", mid); !errors.Is(err, shardstore.ErrShardNotFound) {
		t.Errorf("split unknown: %v", err)
	}
	_ = n
}

func TestMerge(t *testing.T) {
	s := open(t, unlimited())
	mustCreate(t, s, "t", 3)
	mustPut(t, s, "t", entries("a", 100, 10))
	if err := s.MergeShards(bg, "t", "shardId-000000000000", "shardId-000000000002"); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Fatalf("non-adjacent merge: %v", err)
	}
	if err := s.MergeShards(bg, "t", "shardId-000000000002", "shardId-000000000001"); err != nil {
		t.Fatal(err)
	}
	in, _ := s.DescribeStream("t")
	checkPartition(t, in)
	c := shardByID(in, "shardId-000000000003")
	s1, s2 := shardByID(in, "shardId-000000000001"), shardByID(in, "shardId-000000000002")
	if c.ParentShardID != "shardId-000000000002" || c.AdjacentParentShardID != "shardId-000000000001" ||
		c.StartingHashKey != s1.StartingHashKey || c.EndingHashKey != s2.EndingHashKey || s1.Open() || s2.Open() || in.OpenShards != 2 {
		t.Fatalf("after merge: %+v", in.Shards)
	}
	for _, p := range []string{"shardId-000000000001", "shardId-000000000002"} {
		_, last := readAll(t, s, "t", p, shardstore.Start{Type: shardstore.TrimHorizon}, 1000)
		if !last.EndOfShard || len(last.ChildShards) != 1 || last.ChildShards[0].ShardID != c.ShardID ||
			!slices.Equal(last.ChildShards[0].ParentShards, []string{"shardId-000000000002", "shardId-000000000001"}) {
			t.Fatalf("end of %s: %+v", p, last)
		}
	}
	res := mustPut(t, s, "t", []shardstore.PutEntry{{PartitionKey: "x", ExplicitHashKey: shardstore.MaxHashKey.String(), Data: []byte("x")}})
	if res[0].ShardID != c.ShardID {
		t.Fatalf("routed to %s", res[0].ShardID)
	}
}

func TestUpdateShardCount(t *testing.T) {
	s := open(t, unlimited())
	mustCreate(t, s, "t", 4)
	for _, target := range []int{8, 6, 3, 5, 5, 3, 2, 1, 2} {
		mustPut(t, s, "t", entries(fmt.Sprint(target), 50, 10))
		before, _ := s.DescribeStream("t")
		prev, err := s.UpdateShardCount(bg, "t", target)
		if err != nil {
			t.Fatalf("→ %d: %v", target, err)
		}
		in, _ := s.DescribeStream("t")
		if prev != before.OpenShards || in.OpenShards != target {
			t.Fatalf("→ %d: previous %d (want %d), now %d open", target, prev, before.OpenShards, in.OpenShards)
		}
		checkPartition(t, in)
		for i, sh := range openShards(in) {
			want := kinesaliteRanges(target)[i]
			if sh.StartingHashKey.String() != want[0] || sh.EndingHashKey.String() != want[1] {
				t.Fatalf("→ %d: shard %d = %s..%s, want %v", target, i, sh.StartingHashKey, sh.EndingHashKey, want)
			}
		}
		// Lineage: every shard has at most two parents, a merge child's
		// parents are adjacent and cover it, a split child lies in its
		// parent; every closed shard ends with children.
		for _, sh := range in.Shards {
			if sh.ParentShardID == "" {
				continue
			}
			p := shardByID(in, sh.ParentShardID)
			if p.Open() {
				t.Fatalf("%s has an open parent", sh.ShardID)
			}
			if sh.AdjacentParentShardID != "" {
				a := shardByID(in, sh.AdjacentParentShardID)
				lo, hi := p, a
				if a.StartingHashKey.Cmp(p.StartingHashKey) < 0 {
					lo, hi = a, p
				}
				if addOne(lo.EndingHashKey) != hi.StartingHashKey || sh.StartingHashKey != lo.StartingHashKey || sh.EndingHashKey != hi.EndingHashKey {
					t.Fatalf("merge child %+v of %+v and %+v", sh, p, a)
				}
			} else if sh.StartingHashKey.Cmp(p.StartingHashKey) < 0 || sh.EndingHashKey.Cmp(p.EndingHashKey) > 0 {
				t.Fatalf("split child %+v outside parent %+v", sh, p)
			}
		}
		for _, sh := range in.Shards {
			if !sh.Open() {
				_, last := readAll(t, s, "t", sh.ShardID, shardstore.Start{Type: shardstore.TrimHorizon}, 1000)
				if !last.EndOfShard || len(last.ChildShards) == 0 {
					t.Fatalf("closed %s: %+v", sh.ShardID, last)
				}
			}
		}
	}
	for _, bad := range []int{5, 0} { // from 2: more than double; zero
		if _, err := s.UpdateShardCount(bg, "t", bad); err == nil {
			t.Errorf("→ %d accepted", bad)
		}
	}
	if _, err := s.UpdateShardCount(bg, "t", 5); !errors.Is(err, shardstore.ErrLimitExceeded) {
		t.Error(err)
	}
}

func TestRetentionAndTrim(t *testing.T) {
	clk := newClock()
	o := unlimited()
	o.Now = clk.Now
	s := open(t, o)
	mustCreate(t, s, "t", 1)
	old := mustPut(t, s, "t", entries("old", 300, 10))
	clk.Advance(23 * time.Hour)
	young := mustPut(t, s, "t", entries("young", 100, 10))
	if err := s.SplitShard(bg, "t", "shardId-000000000000", shardstore.HashKey{Hi: 1 << 63}); err != nil {
		t.Fatal(err)
	}
	child := mustPut(t, s, "t", entries("child", 50, 10))
	clk.Advance(2 * time.Hour) // "old" is 25 h old now, "young" 2 h

	recs, _ := readAll(t, s, "t", "shardId-000000000000", shardstore.Start{Type: shardstore.TrimHorizon}, 1000)
	if len(recs) != len(young) || recs[0].SequenceNumber != young[0].SequenceNumber {
		t.Fatalf("TRIM_HORIZON after expiry: %d records, want %d", len(recs), len(young))
	}
	// An AT_SEQUENCE_NUMBER of an expired record reads from the horizon.
	recs, _ = readAll(t, s, "t", "shardId-000000000000", shardstore.Start{Type: shardstore.AtSequenceNumber, SequenceNumber: old[5].SequenceNumber}, 1000)
	if len(recs) != len(young) {
		t.Fatalf("from an expired record: %d", len(recs))
	}
	st, err := s.Trim(bg)
	if err != nil || st.Records != len(old) || st.Shards != 0 {
		t.Fatalf("trim: %+v %v", st, err)
	}
	if st, _ := s.Trim(bg); st.Records != 0 {
		t.Fatalf("second trim: %+v", st)
	}
	// Longer retention keeps the parent; shorter makes it go.
	if err := s.IncreaseRetention(bg, "t", 72); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Hour)
	if st, _ := s.Trim(bg); st.Records != 0 || st.Shards != 0 {
		t.Fatalf("trim at 72 h: %+v", st)
	}
	if err := s.DecreaseRetention(bg, "t", 24); err != nil {
		t.Fatal(err)
	}
	in, _ := s.DescribeStream("t")
	if len(in.Shards) != 2 || in.Shards[0].ShardID != "shardId-000000000001" {
		t.Fatalf("expired parent still described: %+v", in.Shards)
	}
	if _, err := s.Seek("t", "shardId-000000000000", shardstore.Start{Type: shardstore.TrimHorizon}); !errors.Is(err, shardstore.ErrShardNotFound) {
		t.Fatalf("expired parent: %v", err)
	}
	st, _ = s.Trim(bg)
	if st.Shards != 1 || st.Records != len(child) {
		t.Fatalf("trim after decrease: %+v (want 1 shard, %d child records)", st, len(child))
	}
	// Retention limits and direction.
	for _, c := range []struct {
		inc   bool
		hours int
	}{{true, 23}, {true, 8761}, {false, 23}, {true, 12}, {false, 48}} {
		var err error
		if c.inc {
			err = s.IncreaseRetention(bg, "t", c.hours)
		} else {
			err = s.DecreaseRetention(bg, "t", c.hours)
		}
		if !errors.Is(err, shardstore.ErrInvalidArgument) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if err := s.IncreaseRetention(bg, "t", 8760); err != nil {
		t.Fatal(err)
	}
}

func TestTrimInChunks(t *testing.T) {
	clk := newClock()
	o := unlimited()
	o.Now = clk.Now
	s := open(t, o)
	mustCreate(t, s, "t", 2)
	for range 130 {
		mustPut(t, s, "t", entries("x", 500, 1))
	}
	clk.Advance(25 * time.Hour)
	st, err := s.Trim(bg)
	if err != nil || st.Records != 65_000 {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestTrimmerRunsByItself(t *testing.T) {
	clk := newClock()
	logs := &testenv.Buffer{}
	o := unlimited()
	o.Now = clk.Now
	o.TrimInterval = 5 * time.Millisecond
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s := open(t, o)
	mustCreate(t, s, "t", 1)
	mustPut(t, s, "t", entries("x", 10, 1))
	clk.Advance(25 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "trimmed expired data") {
		if time.Now().After(deadline) {
			t.Fatalf("trimmer did not run; log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "records=10") {
		t.Fatalf("log: %s", logs.String())
	}
}

package shardstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

var bg = context.Background()

// kinesaliteRanges is how Kinesis (and kinesalite) lay out n shards.
func kinesaliteRanges(n int) [][2]string {
	pow := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(pow, big.NewInt(int64(n)))
	var out [][2]string
	for i := range n {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Mul(step, big.NewInt(int64(i+1)))
		if i == n-1 {
			end = pow
		}
		end.Sub(end, big.NewInt(1))
		out = append(out, [2]string{start.String(), end.String()})
	}
	return out
}

func TestCreateDescribeList(t *testing.T) {
	s := open(t, shardstore.Options{MaxShards: 30})
	for n := 1; n <= 7; n++ {
		name := fmt.Sprintf("s%d", n)
		mustCreate(t, s, name, n)
		in, err := s.DescribeStream(name)
		if err != nil {
			t.Fatal(err)
		}
		want := kinesaliteRanges(n)
		if len(in.Shards) != n || in.OpenShards != n || in.RetentionHours != 24 {
			t.Fatalf("%s: %+v", name, in)
		}
		for i, sh := range in.Shards {
			if sh.ShardID != fmt.Sprintf("shardId-%012d", i) || sh.StartingHashKey.String() != want[i][0] || sh.EndingHashKey.String() != want[i][1] || !sh.Open() || sh.ParentShardID != "" {
				t.Fatalf("%s shard %d: %+v, want range %v", name, i, sh, want[i])
			}
		}
	}
	if got := s.ListStreams(); strings.Join(got, ",") != "s1,s2,s3,s4,s5,s6,s7" {
		t.Fatal(got)
	}
	if err := s.CreateStream(bg, "s1", 1); !errors.Is(err, shardstore.ErrStreamExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.CreateStream(bg, "big", 3); !errors.Is(err, shardstore.ErrLimitExceeded) {
		t.Fatalf("over the shard limit (28 of 30 used): %v", err)
	}
	for _, bad := range []string{"", "a b", "a/b", strings.Repeat("x", 129)} {
		if err := s.CreateStream(bg, bad, 1); !errors.Is(err, shardstore.ErrInvalidArgument) {
			t.Errorf("CreateStream(%q): %v", bad, err)
		}
	}
	if err := s.CreateStream(bg, "zero", 0); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Errorf("0 shards: %v", err)
	}
	if _, err := s.DescribeStream("nope"); !errors.Is(err, shardstore.ErrStreamNotFound) {
		t.Fatal(err)
	}
	if err := s.DeleteStream(bg, "s7"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "big", 2) // room again
}

func TestPutRoutesByMD5AndReadsBack(t *testing.T) {
	s := open(t, unlimited())
	mustCreate(t, s, "t", 4)
	in, _ := s.DescribeStream("t")
	es := entries("r", 400, 100)
	// Two entries with explicit hash keys at the edges of shard 2.
	es = append(es,
		shardstore.PutEntry{PartitionKey: "x", ExplicitHashKey: in.Shards[2].StartingHashKey.String(), Data: []byte("edge-lo")},
		shardstore.PutEntry{PartitionKey: "x", ExplicitHashKey: in.Shards[2].EndingHashKey.String(), Data: []byte("edge-hi")},
		shardstore.PutEntry{PartitionKey: "y", ExplicitHashKey: "0", Data: nil},
	)
	res := mustPut(t, s, "t", es)
	byShard := map[string][]int{}
	for i, r := range res {
		h := shardstore.HashPartitionKey(es[i].PartitionKey)
		if es[i].ExplicitHashKey != "" {
			h, _ = shardstore.ParseHashKey(es[i].ExplicitHashKey)
		}
		var want string
		for _, sh := range in.Shards {
			if h.Cmp(sh.StartingHashKey) >= 0 && h.Cmp(sh.EndingHashKey) <= 0 {
				want = sh.ShardID
			}
		}
		if r.ShardID != want {
			t.Fatalf("entry %d (%s) went to %s, want %s", i, h, r.ShardID, want)
		}
		byShard[r.ShardID] = append(byShard[r.ShardID], i)
	}
	if res[400].ShardID != "shardId-000000000002" || res[401].ShardID != "shardId-000000000002" || res[402].ShardID != "shardId-000000000000" {
		t.Fatalf("explicit hash keys: %+v", res[400:])
	}
	for _, sh := range in.Shards {
		recs, last := readAll(t, s, "t", sh.ShardID, shardstore.Start{Type: shardstore.TrimHorizon}, 37)
		idx := byShard[sh.ShardID]
		if len(recs) != len(idx) {
			t.Fatalf("%s: read %d records, stored %d", sh.ShardID, len(recs), len(idx))
		}
		for j, rec := range recs {
			e, r := es[idx[j]], res[idx[j]]
			if rec.SequenceNumber != r.SequenceNumber || rec.PartitionKey != e.PartitionKey || !bytes.Equal(rec.Data, e.Data) {
				t.Fatalf("%s record %d: %+v, want %+v / %s", sh.ShardID, j, rec, e, r.SequenceNumber)
			}
			if j > 0 && !(recs[j-1].SequenceNumber < rec.SequenceNumber) {
				t.Fatalf("sequence numbers not rising: %s then %s", recs[j-1].SequenceNumber, rec.SequenceNumber)
			}
			if rec.SequenceNumber < sh.StartingSequenceNumber {
				t.Fatalf("record %s below the shard's starting sequence number %s", rec.SequenceNumber, sh.StartingSequenceNumber)
			}
		}
		if last.EndOfShard || last.MillisBehindLatest != 0 {
			t.Fatalf("open shard read: %+v", last)
		}
	}
}

func TestPutValidation(t *testing.T) {
	s := open(t, unlimited())
	mustCreate(t, s, "t", 1)
	cases := map[string][]shardstore.PutEntry{
		"empty":          nil,
		"501 entries":    entries("a", 501, 1),
		"no key":         {{Data: []byte("x")}},
		"long key":       {{PartitionKey: strings.Repeat("k", 257), Data: []byte("x")}},
		"big record":     {{PartitionKey: "k", Data: make([]byte, 1<<20+1)}},
		"over 5 MiB":     {{PartitionKey: "k", Data: make([]byte, 1<<20)}, {PartitionKey: "k", Data: make([]byte, 1<<20)}, {PartitionKey: "k", Data: make([]byte, 1<<20)}, {PartitionKey: "k", Data: make([]byte, 1<<20)}, {PartitionKey: "k", Data: make([]byte, 1<<20)}, {PartitionKey: "k", Data: make([]byte, 1)}},
		"bad hash key":   {{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211456", Data: nil}},
		"hash key sign":  {{PartitionKey: "k", ExplicitHashKey: "-1"}},
		"hash key float": {{PartitionKey: "k", ExplicitHashKey: "1.0"}},
	}
	for name, es := range cases {
		if _, err := s.Put(bg, "t", es); !errors.Is(err, shardstore.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The limits themselves are fine: 256 characters (not bytes), 1 MiB.
	mustPut(t, s, "t", []shardstore.PutEntry{{PartitionKey: strings.Repeat("é", 256), Data: make([]byte, 1<<20)}})
	if _, err := s.Put(bg, "nope", entries("a", 1, 1)); !errors.Is(err, shardstore.ErrStreamNotFound) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := s.Put(ctx, "t", entries("a", 1, 1)); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestSeekTypes(t *testing.T) {
	s, clk := openClocked(t, "t", 2)
	put := func(prefix string, n int) []shardstore.PutResult {
		es := make([]shardstore.PutEntry, n)
		for i := range es {
			es[i] = shardstore.PutEntry{PartitionKey: "one-key", Data: []byte(fmt.Sprintf("%s%d", prefix, i))}
		}
		return mustPut(t, s, "t", es)
	}
	first := put("a", 5)
	shard := first[0].ShardID
	clk.Advance(10 * time.Second)
	t1 := clk.Now()
	second := put("b", 5)
	latest, err := s.Seek("t", shard, shardstore.Start{Type: shardstore.Latest})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	third := put("c", 3)

	data := func(recs []shardstore.Record) string {
		var out []string
		for _, r := range recs {
			out = append(out, string(r.Data))
		}
		return strings.Join(out, ",")
	}
	read := func(start shardstore.Start) string {
		t.Helper()
		recs, _ := readAll(t, s, "t", shard, start, 4)
		return data(recs)
	}
	all := "a0,a1,a2,a3,a4,b0,b1,b2,b3,b4,c0,c1,c2"
	if got := read(shardstore.Start{Type: shardstore.TrimHorizon}); got != all {
		t.Fatalf("TRIM_HORIZON: %s", got)
	}
	if got := read(shardstore.Start{Type: shardstore.AtSequenceNumber, SequenceNumber: second[2].SequenceNumber}); got != "b2,b3,b4,c0,c1,c2" {
		t.Fatalf("AT_SEQUENCE_NUMBER: %s", got)
	}
	if got := read(shardstore.Start{Type: shardstore.AfterSequenceNumber, SequenceNumber: second[2].SequenceNumber}); got != "b3,b4,c0,c1,c2" {
		t.Fatalf("AFTER_SEQUENCE_NUMBER: %s", got)
	}
	if got := read(shardstore.Start{Type: shardstore.AfterSequenceNumber, SequenceNumber: third[2].SequenceNumber}); got != "" {
		t.Fatalf("AFTER the last: %s", got)
	}
	if got := read(shardstore.Start{Type: shardstore.AtTimestamp, Timestamp: t1}); got != "b0,b1,b2,b3,b4,c0,c1,c2" {
		t.Fatalf("AT_TIMESTAMP: %s", got)
	}
	if got := read(shardstore.Start{Type: shardstore.AtTimestamp, Timestamp: t1.Add(time.Millisecond)}); got != "c0,c1,c2" {
		t.Fatalf("AT_TIMESTAMP +1ms: %s", got)
	}
	if got := read(shardstore.Start{Type: shardstore.AtTimestamp, Timestamp: t1.Add(-time.Hour)}); got != all {
		t.Fatalf("AT_TIMESTAMP before everything: %s", got)
	}
	res, err := s.Read(bg, latest, 100)
	if err != nil || data(res.Records) != "c0,c1,c2" {
		t.Fatalf("LATEST: %s %v", data(res.Records), err)
	}
	for i, r := range res.Records {
		if r.SequenceNumber != third[i].SequenceNumber || !r.ApproximateArrivalTimestamp.Equal(t1.Add(time.Second)) {
			t.Fatalf("record %+v, want seq %s at %v", r, third[i].SequenceNumber, t1.Add(time.Second))
		}
	}
	// MillisBehindLatest: reading one record at a time from the start.
	clk.Advance(5 * time.Second)
	pos, _ := s.Seek("t", shard, shardstore.Start{Type: shardstore.TrimHorizon})
	res, _ = s.Read(bg, pos, 1)
	if want := int64(16_000); res.MillisBehindLatest != want {
		t.Fatalf("MillisBehindLatest = %d, want %d", res.MillisBehindLatest, want)
	}

	other := "shardId-000000000000"
	if shard == other {
		other = "shardId-000000000001"
	}
	bad := []shardstore.Start{
		{Type: shardstore.AtSequenceNumber, SequenceNumber: first[0].SequenceNumber + "0"},
		{Type: shardstore.AtSequenceNumber},
		{Type: shardstore.AtTimestamp},
		{Type: shardstore.AtTimestamp, Timestamp: clk.Now().Add(time.Minute)},
		{Type: "SOMEWHERE"},
	}
	for _, b := range bad {
		if _, err := s.Seek("t", shard, b); !errors.Is(err, shardstore.ErrInvalidArgument) {
			t.Errorf("Seek(%+v): %v", b, err)
		}
	}
	// A sequence number of another shard, and one never issued.
	if _, err := s.Seek("t", other, shardstore.Start{Type: shardstore.AtSequenceNumber, SequenceNumber: first[0].SequenceNumber}); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Errorf("foreign sequence number: %v", err)
	}
	sn, _ := shardstore.ParseSequenceNumber(third[2].SequenceNumber)
	sn.Position += 1000
	if _, err := s.Seek("t", shard, shardstore.Start{Type: shardstore.AtSequenceNumber, SequenceNumber: sn.String()}); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Errorf("unissued sequence number: %v", err)
	}
	if _, err := s.Seek("t", "shardId-000000000009", shardstore.Start{Type: shardstore.TrimHorizon}); !errors.Is(err, shardstore.ErrShardNotFound) {
		t.Errorf("missing shard: %v", err)
	}
	if _, err := s.Read(bg, pos, 0); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Error(err)
	}
	if _, err := s.Read(bg, pos, 10_001); !errors.Is(err, shardstore.ErrInvalidArgument) {
		t.Error(err)
	}
}

func TestThrottling(t *testing.T) {
	clk := newClock()
	s := open(t, shardstore.Options{Now: clk.Now, Throughput: shardstore.Throughput{WriteRecordsPerSec: 10, WriteBytesPerSec: 1000, ReadsPerSec: 3, ReadBytesPerSec: 500}})
	mustCreate(t, s, "t", 2)
	// 15 records to one shard: 10 pass, 5 are throttled, in one call.
	es := make([]shardstore.PutEntry, 15)
	for i := range es {
		es[i] = shardstore.PutEntry{PartitionKey: "k", Data: []byte{byte(i)}}
	}
	// plus 3 to the other shard, which has its own budget
	otherEnd := shardstore.MaxHashKey.String()
	if shardstore.HashPartitionKey("k").Hi>>63 == 1 {
		otherEnd = "0"
	}
	es = append(es, shardstore.PutEntry{PartitionKey: "k", ExplicitHashKey: otherEnd, Data: []byte("o")})
	res, err := s.Put(bg, "t", es)
	if err != nil {
		t.Fatal(err)
	}
	ok, throttled := 0, 0
	for i, r := range res {
		switch {
		case r.Err == nil:
			ok++
		case errors.Is(r.Err, shardstore.ErrThrottled):
			throttled++
			if i < 10 {
				t.Fatalf("entry %d throttled before the budget was used", i)
			}
		default:
			t.Fatal(r.Err)
		}
	}
	if ok != 11 || throttled != 5 || res[15].Err != nil {
		t.Fatalf("ok %d throttled %d: %+v", ok, throttled, res)
	}
	// Half a second refills half the bucket.
	clk.Advance(500 * time.Millisecond)
	res, _ = s.Put(bg, "t", es[:10])
	if res[4].Err != nil || res[5].Err == nil {
		t.Fatalf("after 0.5 s: %+v", res)
	}
	// Bytes: 1000 B/s; a 600-byte record, then another is throttled.
	clk.Advance(10 * time.Second)
	big := []shardstore.PutEntry{{PartitionKey: "k", Data: make([]byte, 599)}, {PartitionKey: "k", Data: make([]byte, 599)}}
	res, _ = s.Put(bg, "t", big)
	if res[0].Err != nil || !errors.Is(res[1].Err, shardstore.ErrThrottled) {
		t.Fatalf("bytes: %+v", res)
	}

	// Reads: 3 calls per second, then throttled.
	pos, _ := s.Seek("t", res[0].ShardID, shardstore.Start{Type: shardstore.TrimHorizon})
	for i := range 3 {
		if _, err := s.Read(bg, pos, 1); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if _, err := s.Read(bg, pos, 1); !errors.Is(err, shardstore.ErrThrottled) {
		t.Fatalf("4th read in a second: %v", err)
	}
	// A large read puts the byte bucket into debt: 500 B/s, the read
	// returns ~620 bytes, so reads stay refused until the debt is repaid.
	clk.Advance(time.Second)
	r, err := s.Read(bg, pos, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rec := range r.Records {
		n += len(rec.Data) + len(rec.PartitionKey)
	}
	if n < 600 {
		t.Fatalf("read %d bytes", n)
	}
	clk.Advance(200 * time.Millisecond)
	if _, err := s.Read(bg, pos, 1); !errors.Is(err, shardstore.ErrThrottled) {
		t.Fatalf("read while in debt: %v", err)
	}
	clk.Advance(time.Second)
	if _, err := s.Read(bg, pos, 1); err != nil {
		t.Fatalf("read after the debt is repaid: %v", err)
	}
}

func TestThroughputDefaultsAreKinesis(t *testing.T) {
	clk := newClock()
	s := open(t, shardstore.Options{Now: clk.Now})
	mustCreate(t, s, "t", 1)
	total := 0
	for range 3 {
		res, err := s.Put(bg, "t", entries("x", 500, 10))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err == nil {
				total++
			}
		}
	}
	if total != 1000 {
		t.Fatalf("stored %d of 1500 in one second, want 1000", total)
	}
}

func TestDeleteAndRecreate(t *testing.T) {
	s := open(t, unlimited())
	mustCreate(t, s, "t", 1)
	mustPut(t, s, "t", entries("a", 10, 10))
	pos, err := s.Seek("t", "shardId-000000000000", shardstore.Start{Type: shardstore.TrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(bg, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(bg, "t"); !errors.Is(err, shardstore.ErrStreamNotFound) {
		t.Fatal(err)
	}
	mustCreate(t, s, "t", 1)
	if _, err := s.Read(bg, pos, 10); !errors.Is(err, shardstore.ErrStreamNotFound) {
		t.Fatalf("position of the deleted stream: %v", err)
	}
	recs, _ := readAll(t, s, "t", "shardId-000000000000", shardstore.Start{Type: shardstore.TrimHorizon}, 100)
	if len(recs) != 0 {
		t.Fatalf("re-created stream has %d records", len(recs))
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := shardstore.Open(path, unlimited())
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "t", 3)
	before := mustPut(t, s, "t", entries("a", 100, 20))
	if err := s.SplitShard(bg, "t", "shardId-000000000000", shardstore.HashKey{Hi: 1 << 60}); err != nil {
		t.Fatal(err)
	}
	if err := s.IncreaseRetention(bg, "t", 48); err != nil {
		t.Fatal(err)
	}
	inBefore, _ := s.DescribeStream("t")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Put(bg, "t", entries("a", 1, 1)); !errors.Is(err, shardstore.ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	s = openAt(t, path, unlimited())
	inAfter, err := s.DescribeStream("t")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(inBefore) != fmt.Sprint(inAfter) {
		t.Fatalf("metadata changed across reopen:\n%+v\n%+v", inBefore, inAfter)
	}
	for _, r := range before {
		pos, err := s.Seek("t", r.ShardID, shardstore.Start{Type: shardstore.AtSequenceNumber, SequenceNumber: r.SequenceNumber})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Read(bg, pos, 1)
		if err != nil || len(res.Records) != 1 || res.Records[0].SequenceNumber != r.SequenceNumber {
			t.Fatalf("record %s after reopen: %+v %v", r.SequenceNumber, res, err)
		}
	}
	after := mustPut(t, s, "t", entries("b", 10, 20))
	maxBefore := ""
	for _, r := range before {
		maxBefore = max(maxBefore, r.SequenceNumber)
	}
	for _, r := range after {
		if r.SequenceNumber <= maxBefore {
			t.Fatalf("sequence number %s after reopen is not above %s", r.SequenceNumber, maxBefore)
		}
	}
	if _, err := shardstore.Open(path, shardstore.Options{}); !errors.Is(err, shardstore.ErrLocked) {
		t.Fatalf("second Open of a file in use: %v", err)
	}
}

func TestConcurrentPuts(t *testing.T) {
	s := open(t, unlimited())
	mustCreate(t, s, "t", 4)
	const writers, calls, per = 8, 40, 25
	var mu sync.Mutex
	acked := map[string]string{} // seq → data
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for c := range calls {
				es := make([]shardstore.PutEntry, per)
				for i := range es {
					es[i] = shardstore.PutEntry{PartitionKey: fmt.Sprintf("dev-%d-%d", g, i%5), Data: fmt.Appendf(nil, "%d/%d/%d", g, c, i)}
				}
				res, err := s.Put(bg, "t", es)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i, r := range res {
					acked[r.SequenceNumber] = string(es[i].Data)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(acked) != writers*calls*per {
		t.Fatalf("%d distinct sequence numbers, want %d", len(acked), writers*calls*per)
	}
	in, _ := s.DescribeStream("t")
	seen := 0
	lastOf := map[string]string{} // partition key → last data, to check per-key order
	for _, sh := range in.Shards {
		recs, _ := readAll(t, s, "t", sh.ShardID, shardstore.Start{Type: shardstore.TrimHorizon}, 1000)
		for i, r := range recs {
			if acked[r.SequenceNumber] != string(r.Data) {
				t.Fatalf("%s: %q, acknowledged %q", r.SequenceNumber, r.Data, acked[r.SequenceNumber])
			}
			if i > 0 && recs[i-1].SequenceNumber >= r.SequenceNumber {
				t.Fatal("not rising")
			}
			var g, c, n int
			fmt.Sscanf(string(r.Data), "%d/%d/%d", &g, &c, &n)
			if prev, ok := lastOf[r.PartitionKey]; ok {
				var pg, pc, pn int
				fmt.Sscanf(prev, "%d/%d/%d", &pg, &pc, &pn)
				if pc > c || pc == c && pn > n {
					t.Fatalf("key %s: %s after %s", r.PartitionKey, r.Data, prev)
				}
			}
			lastOf[r.PartitionKey] = string(r.Data)
			seen++
		}
	}
	if seen != len(acked) {
		t.Fatalf("read %d, acknowledged %d", seen, len(acked))
	}
}

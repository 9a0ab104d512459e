package kinesisbackend

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(1000, 1<<20, t0)
	for i := 0; i < 1000; i++ {
		if ok, _ := b.take(t0, 100); !ok {
			t.Fatalf("record %d of the burst refused", i)
		}
	}
	ok, at := b.take(t0, 100)
	if ok || at.Sub(t0) < time.Millisecond || at.Sub(t0) > 2*time.Millisecond {
		t.Fatalf("after the burst: ok=%v, retry in %v, want refused for ~1ms", ok, at.Sub(t0))
	}
	if ok, _ := b.take(t0.Add(time.Millisecond), 100); !ok {
		t.Fatal("one record refused after 1ms of refill")
	}
	// Bytes: a full second's worth, then a 1 MiB record needs a full bucket.
	b = newBucket(1000, 1<<20, t0)
	if ok, _ := b.take(t0, 1<<20); !ok {
		t.Fatal("1 MiB refused from a full bucket")
	}
	ok, at = b.take(t0, 1<<20)
	if ok || at.Sub(t0) < time.Second || at.Sub(t0) > time.Second+2*time.Millisecond {
		t.Fatalf("second 1 MiB: ok=%v, retry in %v, want ~1s", ok, at.Sub(t0))
	}
	// A record above the capacity passes a full bucket and leaves a debt.
	b = newBucket(1000, 1000, t0)
	if ok, _ := b.take(t0, 5000); !ok {
		t.Fatal("oversized record refused from a full bucket")
	}
	if _, at := b.take(t0, 10); at.Sub(t0) < 4*time.Second {
		t.Fatalf("after a 5x debt, retry in %v, want ≥4s", at.Sub(t0))
	}
	// Off: never refuses.
	b = newBucket(0, 0, t0)
	for i := 0; i < 10000; i++ {
		if ok, _ := b.take(t0, 1<<20); !ok {
			t.Fatal("a bucket with no limits refused")
		}
	}
}

func TestGateBackoff(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var g gate
	base, maxD := 100*time.Millisecond, 2*time.Second
	for n := 1; n <= 8; n++ {
		round := t0.Add(time.Duration(n) * time.Minute)
		g.fail(round, round, base, maxD)
		g.fail(round, round, base, maxD) // same round: counted once
		want := min(base<<(n-1), maxD)
		if d := g.blockedUntil.Sub(round); d < want/2 || d > want {
			t.Errorf("failure %d: blocked %v, want in [%v, %v]", n, d, want/2, want)
		}
	}
	if g.fails != 8 {
		t.Errorf("fails = %d, want 8 (one per round)", g.fails)
	}
	g.ok(t0)
	if g.fails != 0 {
		t.Errorf("fails = %d after a success, want 0", g.fails)
	}
}

func TestRoute(t *testing.T) {
	st := newStreamState("s", Config{ShardRecordsPerSec: 1000, ShardBytesPerSec: 1 << 20})
	// Kinesis splits the space evenly: 4 shards at multiples of 2^126.
	starts := []string{"0", "85070591730234615865843651857942052864", "170141183460469231731687303715884105728", "255211775190703847597530955573826158592"}
	ends := []string{"85070591730234615865843651857942052863", "170141183460469231731687303715884105727", "255211775190703847597530955573826158591", "340282366920938463463374607431768211455"}
	var ranges []shardRange
	for i := range starts {
		s, err1 := parseHashKey(starts[i])
		e, err2 := parseHashKey(ends[i])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		ranges = append(ranges, shardRange{start: s, end: e, id: fmt.Sprintf("shardId-%012d", i)})
	}
	st.install(ranges, time.Now())
	for key, want := range map[string]string{
		// MD5 first byte: "a" 0x0c, "b" 0x92, "c" 0x4a, "d" 0x82, "e" 0xe1
		"a": "shardId-000000000000", "b": "shardId-000000000002", "c": "shardId-000000000001",
		"d": "shardId-000000000002", "e": "shardId-000000000003",
	} {
		if got := st.route(hashPartitionKey(key)).id; got != want {
			t.Errorf("route(%q) = %s, want %s", key, got, want)
		}
	}
	for _, bad := range []string{"-1", "340282366920938463463374607431768211456", "x", ""} {
		if _, err := parseHashKey(bad); err == nil {
			t.Errorf("parseHashKey(%q): no error", bad)
		}
	}
	// A gap (mid-reshard) routes to the unknown shard, not a wrong one.
	st.install(ranges[1:], time.Now())
	if got := st.route(hashPartitionKey("a")); got != st.unknown {
		t.Errorf("key in a gap routed to %q", got.id)
	}
}

func TestShardIDInMessage(t *testing.T) {
	for msg, want := range map[string]string{
		"Rate exceeded for shard shardId-000000000001 in stream s under account 111111111111.": "shardId-000000000001",
		"Rate exceeded for shard shardId-000000000002.":                                        "shardId-000000000002",
		"Rate exceeded for stream s":                                                           "",
	} {
		if got := shardIDInMessage(msg); got != want {
			t.Errorf("shardIDInMessage(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestEntryErrorIsThrottled(t *testing.T) {
	for code, want := range map[string]bool{
		"ProvisionedThroughputExceededException": true, "KMSThrottlingException": true,
		"InternalFailure": false, "KMSAccessDeniedException": false,
	} {
		if got := errors.Is(&EntryError{Code: code}, ErrThrottled); got != want {
			t.Errorf("%s: Is(ErrThrottled) = %v", code, got)
		}
	}
}

package kinesisbackend_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
)

// makeEntries returns perKey entries for each of nKeys keys, interleaved
// (k0/0, k1/0, …, k0/1, k1/1, …), each padded to at least size bytes of
// data. Keys are prefix + index.
func makeEntries(prefix string, nKeys, perKey, size int) []kinesisbackend.Entry {
	var es []kinesisbackend.Entry
	for n := 0; n < perKey; n++ {
		for k := 0; k < nKeys; k++ {
			key := prefix + strconv.Itoa(k)
			es = append(es, kinesisbackend.Entry{PartitionKey: key, Data: entryData(key, n, size)})
		}
	}
	return es
}

func entryData(key string, n, size int) []byte {
	s := fmt.Sprintf("%s/%06d/", key, n)
	if len(s) < size {
		s += strings.Repeat(".", size-len(s))
	}
	return []byte(s)
}

// seqOf parses the entry number out of entryData.
func seqOf(t testing.TB, data string) int {
	t.Helper()
	parts := strings.SplitN(data, "/", 3)
	if len(parts) < 3 {
		t.Fatalf("record data %.40q is not ours", data)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("record data %.40q: %v", data, err)
	}
	return n
}

// wantCounts counts entries per key.
func wantCounts(es []kinesisbackend.Entry) map[string]int {
	m := map[string]int{}
	for _, e := range es {
		m[e.PartitionKey]++
	}
	return m
}

// checkExactlyOnceInOrder checks that got (each key's record data in
// stream order) holds entries 0..want[key]-1 of every key, each once, in
// order, and nothing else.
func checkExactlyOnceInOrder(t testing.TB, got map[string][]string, want map[string]int) {
	t.Helper()
	bad := 0
	for key, n := range want {
		recs := got[key]
		ok := len(recs) == n
		for i := 0; ok && i < n; i++ {
			ok = seqOf(t, recs[i]) == i
		}
		if !ok {
			bad++
			if bad <= 5 {
				seqs := make([]int, len(recs))
				for i, r := range recs {
					seqs[i] = seqOf(t, r)
				}
				t.Errorf("key %s: stream holds entries %v, want 0..%d once each in order", key, seqs, n-1)
			}
		}
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("stream holds %d records of unexpected key %s", len(got[key]), key)
		}
	}
	if bad > 5 {
		t.Errorf("... %d keys wrong in all", bad)
	}
}

// checkAtLeastOnceInOrder is checkExactlyOnceInOrder allowing duplicates:
// each key's records are non-decreasing and cover 0..want[key]-1. It
// returns the number of duplicates.
func checkAtLeastOnceInOrder(t testing.TB, got map[string][]string, want map[string]int) (dups int) {
	t.Helper()
	for key, n := range want {
		next := 0
		for _, r := range got[key] {
			switch s := seqOf(t, r); {
			case s == next:
				next++
			case s == next-1:
				dups++
			default:
				t.Errorf("key %s: entry %d after entry %d (out of order or missing)", key, s, next-1)
			}
		}
		if next != n {
			t.Errorf("key %s: stream holds entries up to %d, want up to %d", key, next-1, n-1)
		}
	}
	return dups
}

func checkAllWritten(t testing.TB, res []kinesisbackend.Result, err error, n int) {
	t.Helper()
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if len(res) != n {
		t.Fatalf("Put returned %d results for %d entries", len(res), n)
	}
	for i, r := range res {
		if r.Err != nil || r.ShardID == "" || r.SequenceNumber == "" {
			t.Fatalf("entry %d: %+v, want written", i, r)
		}
	}
}

package shardstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/cloud/shardstore/shardstoretest"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// childHelpers are the child processes some tests re-execute this test
// binary as (testenv.Helper): name → main.
var childHelpers = map[string]func(){}

func TestMain(m *testing.M) {
	childHelpers[crashHelperName] = crashHelper // the kill -9 test's child
	testenv.RunHelper(childHelpers)
	goleak.VerifyTestMain(m)
}

func newClock() *testenv.Clock {
	return testenv.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
}

// open opens a store in t.TempDir() that closes at cleanup.
var open, openAt = shardstoretest.Open, shardstoretest.OpenAt

// openClocked opens an unlimited store on a fake clock with a stream of
// the given shards.
func openClocked(t testing.TB, stream string, shards int) (*shardstore.Store, *testenv.Clock) {
	t.Helper()
	clk := newClock()
	o := unlimited()
	o.Now = clk.Now
	s := open(t, o)
	mustCreate(t, s, stream, shards)
	return s, clk
}

func unlimited() shardstore.Options {
	return shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}
}

func mustCreate(t testing.TB, s *shardstore.Store, name string, shards int) {
	t.Helper()
	if err := s.CreateStream(context.Background(), name, shards); err != nil {
		t.Fatal(err)
	}
}

func entries(prefix string, n, size int) []shardstore.PutEntry {
	out := make([]shardstore.PutEntry, n)
	for i := range out {
		data := make([]byte, size)
		copy(data, fmt.Sprintf("%s-%d|", prefix, i))
		out[i] = shardstore.PutEntry{PartitionKey: fmt.Sprintf("%s-key-%d", prefix, i), Data: data}
	}
	return out
}

func mustPut(t testing.TB, s *shardstore.Store, stream string, es []shardstore.PutEntry) []shardstore.PutResult {
	t.Helper()
	res, err := s.Put(context.Background(), stream, es)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
	}
	return res
}

// readAll reads a shard from start to the end of what is there (or of the
// shard) with the given limit per read.
func readAll(t testing.TB, s *shardstore.Store, stream, shard string, start shardstore.Start, limit int) ([]shardstore.Record, shardstore.ReadResult) {
	t.Helper()
	pos, err := s.Seek(stream, shard, start)
	if err != nil {
		t.Fatal(err)
	}
	var out []shardstore.Record
	for {
		res, err := s.Read(context.Background(), pos, limit)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Records...)
		if res.EndOfShard || len(res.Records) == 0 {
			return out, res
		}
		pos = res.Next
	}
}

package shardstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunHelper(map[string]func(){crashHelperName: crashHelper}) // the kill -9 test's child
	goleak.VerifyTestMain(m)
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// open opens a store in t.TempDir() that closes at cleanup.
func open(t testing.TB, o shardstore.Options) *shardstore.Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "streams.db"), o)
}

func openAt(t testing.TB, path string, o shardstore.Options) *shardstore.Store {
	t.Helper()
	if o.TrimInterval == 0 {
		o.TrimInterval = -1
	}
	s, err := shardstore.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
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

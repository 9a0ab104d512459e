package shardstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// BenchmarkPut: 4 writers put 500 records of 200 B per call into a stream
// of 4 shards (limits off), each call durable before it returns.
// b.N counts calls; records/s is the figure.
func BenchmarkPut(b *testing.B) {
	s := open(b, unlimited())
	mustCreate(b, s, "bench", 4)
	const writers, per, size = 4, 500, 200
	batches := make([][]shardstore.PutEntry, writers)
	for g := range batches {
		batches[g] = entries(fmt.Sprintf("w%d", g), per, size)
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				res, err := s.Put(context.Background(), "bench", batches[g])
				if err != nil || res[0].Err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*per)/time.Since(start).Seconds(), "records/s")
	b.SetBytes(per * size)
}

// BenchmarkRead: reads of 10,000 records of 200 B from one shard, as
// GetRecords does. b.N counts reads; records/s is the figure.
func BenchmarkRead(b *testing.B) {
	s := open(b, unlimited())
	mustCreate(b, s, "bench", 1)
	for range 200 {
		mustPut(b, s, "bench", entries("r", 500, 200))
	}
	start, err := s.Seek("bench", "shardId-000000000000", shardstore.Start{Type: shardstore.TrimHorizon})
	if err != nil {
		b.Fatal(err)
	}
	pos := start
	b.ResetTimer()
	t0 := time.Now()
	n := 0
	for range b.N {
		res, err := s.Read(context.Background(), pos, shardstore.MaxReadRecords)
		if err != nil {
			b.Fatal(err)
		}
		n += len(res.Records)
		pos = res.Next
		if len(res.Records) < shardstore.MaxReadRecords {
			pos = start
		}
	}
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "records/s")
}

package queue_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/protocol"
)

// The durable-intake benchmarks. Compare BenchmarkAppend (readings/s) with
// BenchmarkRawBolt (records/s) from the same run, or run
// BenchmarkAppendVsRawBolt, which measures both back to back and reports
// the ratio:
//
//	go test -run '^$' -bench . -benchmem ./edge/queue/

const (
	benchProducers = 64
	benchPer       = 10 // readings per Append
)

// appendConcurrently makes n Appends of benchPer readings from
// benchProducers goroutines (fresh natural keys every time).
func appendConcurrently(tb testing.TB, q *queue.Queue, n int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := range benchProducers {
		wg.Go(func() {
			rs := readings(fmt.Sprintf("sensor-%04d", p), 0, benchPer)
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				for k := range rs {
					rs[k].Time = baseTime + (i*benchPer+int64(k))*1000
					rs[k].Received = rs[k].Time + 250
				}
				if _, err := q.Append(ctx, rs); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkAppend: 64 producers each appending 10 readings at a time,
// every Append acknowledged only after its commit's fsync.
func BenchmarkAppend(b *testing.B) {
	q, _ := openQueue(b, queue.Options{})
	b.ReportAllocs()
	b.ResetTimer()
	appendConcurrently(b, q, b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchPer)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(b.N*benchPer)/float64(q.Stats().Commits), "readings/commit")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAppendWithUplink is BenchmarkAppend while an uplink reads and
// acknowledges from the head, as in steady state.
func BenchmarkAppendWithUplink(b *testing.B) {
	q, _ := openQueue(b, queue.Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]protocol.Reading, 0, 5000)
		for {
			select {
			case <-stop:
				return
			case <-q.Notify():
			case <-time.After(10 * time.Millisecond):
			}
			for {
				first, out, err := q.Read(q.Head(), 5000, 0, buf)
				if err != nil || len(out) == 0 {
					break
				}
				if err := q.Ack(context.Background(), first, first+uint64(len(out))-1); err != nil {
					return
				}
				buf = out
			}
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	appendConcurrently(b, q, b.N)
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(b.N*benchPer)/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(0, "ns/op")
}

// rawBolt writes n pre-encoded 200-byte records, 1,000 per transaction,
// from one goroutine with bbolt's default fsync on commit: the ceiling
// our group commit is measured against.
func rawBolt(tb testing.TB, n int) {
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		tb.Fatal(err)
	}
	val := make([]byte, 200)
	keys := make([]byte, 8*n)
	for i := range n {
		binary.BigEndian.PutUint64(keys[8*i:], uint64(i+1))
	}
	for done := 0; done < n; {
		m := min(1000, n-done)
		err := db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("b"))
			b.FillPercent = 1.0
			for i := done; i < done+m; i++ {
				if err := b.Put(keys[8*i:8*i+8], val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		done += m
	}
}

// BenchmarkRawBolt: records/s of rawBolt.
func BenchmarkRawBolt(b *testing.B) {
	b.ReportAllocs()
	rawBolt(b, b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAppendVsRawBolt measures 200,000 raw bbolt records and then
// 200,000 readings through the queue, and reports both rates and their
// ratio (queue readings/s ÷ raw records/s).
func BenchmarkAppendVsRawBolt(b *testing.B) {
	const n = 200_000
	var raw, qd time.Duration
	for range b.N {
		start := time.Now()
		rawBolt(b, n)
		raw += time.Since(start)

		path := filepath.Join(b.TempDir(), "q.db")
		q, err := queue.Open(path, queue.Options{})
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		appendConcurrently(b, q, n/benchPer)
		qd += time.Since(start)
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}
	}
	rawRate := float64(b.N*n) / raw.Seconds()
	qRate := float64(b.N*n) / qd.Seconds()
	b.ReportMetric(rawRate, "raw-records/s")
	b.ReportMetric(qRate, "queue-readings/s")
	b.ReportMetric(qRate/rawRate, "ratio")
	b.ReportMetric(0, "ns/op")
}

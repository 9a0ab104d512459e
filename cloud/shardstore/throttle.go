package shardstore

import (
	"sync"
	"sync/atomic"
)

// rtKey names a shard across the store: stream incarnation and index.
type rtKey struct {
	stream uint64
	shard  uint32
}

// shardRuntime is a shard's throughput state, kept in memory only (a
// restart refills every bucket). The write buckets belong to the writer
// goroutine; the read buckets are shared by readers under mu.
type shardRuntime struct {
	inBytes, inRecords bucket // writer only

	mu                sync.Mutex
	outBytes, outCall bucket

	c counters // what ShardMetrics reports
}

// counters are a shard's CloudWatch-style totals since the store opened.
type counters struct {
	inBytes, inRecords          atomic.Uint64
	writeExceeded, readExceeded atomic.Uint64
	outBytes, outRecords, reads atomic.Uint64
	iteratorAgeMs               atomic.Int64 // of the latest read
}

// bucket is a token bucket holding at most one second's worth of tokens.
type bucket struct {
	tokens float64
	last   int64 // ns
	init   bool
}

func (b *bucket) refill(nowNs int64, rate int) { b.refillF(nowNs, float64(rate)) }

func (s *Store) runtime(stream uint64, shard uint32) *shardRuntime {
	k := rtKey{stream, shard}
	s.rtMu.Lock()
	defer s.rtMu.Unlock()
	rt := s.rt[k]
	if rt == nil {
		rt = &shardRuntime{}
		s.rt[k] = rt
	}
	return rt
}

// dropRuntime forgets the state of the given shards of a stream (all of
// them if shards is nil).
func (s *Store) dropRuntime(stream uint64, shards []uint32) {
	s.rtMu.Lock()
	defer s.rtMu.Unlock()
	if shards == nil {
		for k := range s.rt {
			if k.stream == stream {
				delete(s.rt, k)
			}
		}
		return
	}
	for _, sh := range shards {
		delete(s.rt, rtKey{stream, sh})
	}
}

// admitWrite takes one record and size bytes from the write buckets, or
// reports that either is short (then nothing is taken).
func (rt *shardRuntime) admitWrite(nowNs int64, size int, t *Throughput) bool {
	if t.WriteRecordsPerSec > 0 {
		rt.inRecords.refill(nowNs, t.WriteRecordsPerSec)
		if rt.inRecords.tokens < 1 {
			return false
		}
	}
	if t.WriteBytesPerSec > 0 {
		rt.inBytes.refill(nowNs, t.WriteBytesPerSec)
		if rt.inBytes.tokens < float64(size) {
			return false
		}
		rt.inBytes.tokens -= float64(size)
	}
	if t.WriteRecordsPerSec > 0 {
		rt.inRecords.tokens--
	}
	return true
}

// admitRead takes one read call; it fails while the call bucket is empty
// or the byte bucket is in debt.
func (rt *shardRuntime) admitRead(nowNs int64, t *Throughput) bool {
	if t.ReadsPerSec <= 0 && t.ReadBytesPerSec <= 0 {
		return true
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if t.ReadBytesPerSec > 0 {
		rt.outBytes.refill(nowNs, t.ReadBytesPerSec)
		if rt.outBytes.tokens <= 0 {
			return false
		}
	}
	if t.ReadsPerSec > 0 {
		rt.outCall.refill(nowNs, t.ReadsPerSec)
		if rt.outCall.tokens < 1 {
			return false
		}
		rt.outCall.tokens--
	}
	return true
}

// chargeRead takes the bytes a read returned (possibly into debt).
func (rt *shardRuntime) chargeRead(bytes int, t *Throughput) {
	if t.ReadBytesPerSec <= 0 || bytes == 0 {
		return
	}
	rt.mu.Lock()
	rt.outBytes.tokens -= float64(bytes)
	rt.mu.Unlock()
}

package ingest_test

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/protocol"
)

// memBackend is an in-memory stream backend, faithful to the Kinesis model
// the real ones follow: one stream of n shards splitting the 128-bit
// MD5(partition key) space evenly, sequence numbers rising per shard,
// every accepted entry durable when Put returns, one Result per entry. It
// can throttle entries (per shard, like a shard at capacity), fail whole
// calls, and fail after writing (an unknown outcome).
type memBackend struct {
	mu     sync.Mutex
	stream string
	shards [][]memRecord
	seq    []uint64
	calls  int

	throttle   func(shard int) bool // nil: never
	unknown    func(shard int) bool // write, but answer ErrOutcomeUnknown
	failCalls  int                  // the next n calls fail before writing
	failAfter  int                  // the next n calls write, then fail
	throttled  int                  // entries answered ErrThrottled
	putEntries []int                // entries per call
	afterWrite func()               // called (unlocked) after a call wrote its entries
}

type memRecord struct {
	Shard, Seq, Key string
	Data            []byte
}

var _ ingest.Backend = (*memBackend)(nil)

func newMemBackend(stream string, shards int) *memBackend {
	return &memBackend{stream: stream, shards: make([][]memRecord, shards), seq: make([]uint64, shards)}
}

func (m *memBackend) shardOf(key string) int {
	h := md5.Sum([]byte(key))
	hi, _ := bits.Mul64(binary.BigEndian.Uint64(h[:8]), uint64(len(m.shards)))
	return int(hi)
}

func (m *memBackend) Put(ctx context.Context, stream string, entries []ingest.Entry) ([]ingest.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if stream != m.stream {
		return nil, fmt.Errorf("membackend: ResourceNotFoundException: stream %s not found", stream)
	}
	if len(entries) == 0 || len(entries) > ingest.MaxPutEntries {
		return nil, fmt.Errorf("membackend: %d entries in one call", len(entries))
	}
	size := 0
	for _, e := range entries {
		n := len(e.Data) + len(e.PartitionKey)
		if n > protocol.MaxRecordBytes || e.PartitionKey == "" || len(e.PartitionKey) > 256 {
			return nil, fmt.Errorf("membackend: invalid entry (%d bytes, key %q)", n, e.PartitionKey)
		}
		size += n
	}
	if size > ingest.MaxPutBytes {
		return nil, fmt.Errorf("membackend: %d bytes in one call", size)
	}
	m.putEntries = append(m.putEntries, len(entries))
	if m.failCalls > 0 {
		m.failCalls--
		return nil, errors.New("membackend: injected failure (nothing written)")
	}
	res := make([]ingest.Result, len(entries))
	for i, e := range entries {
		sh := m.shardOf(e.PartitionKey)
		if m.throttle != nil && m.throttle(sh) {
			m.throttled++
			res[i].Err = fmt.Errorf("membackend: shard %d: ProvisionedThroughputExceededException: %w", sh, ingest.ErrThrottled)
			continue
		}
		m.seq[sh]++
		r := memRecord{Shard: fmt.Sprintf("shardId-%012d", sh), Seq: fmt.Sprintf("49%03d%019d", sh, m.seq[sh]),
			Key: e.PartitionKey, Data: append([]byte(nil), e.Data...)}
		m.shards[sh] = append(m.shards[sh], r)
		res[i] = ingest.Result{ShardID: r.Shard, SequenceNumber: r.Seq}
		if m.unknown != nil && m.unknown(sh) {
			res[i] = ingest.Result{Err: fmt.Errorf("membackend: connection lost: %w", ingest.ErrOutcomeUnknown)}
		}
	}
	if m.failAfter > 0 {
		m.failAfter--
		return nil, errors.New("membackend: injected timeout after writing")
	}
	if f := m.afterWrite; f != nil {
		m.mu.Unlock()
		f()
		m.mu.Lock()
	}
	return res, nil
}

// with runs f with the backend locked, to change or read its settings.
func (m *memBackend) with(f func(*memBackend)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

func (m *memBackend) setThrottle(f func(shard int) bool) {
	m.mu.Lock()
	m.throttle = f
	m.mu.Unlock()
}

func (m *memBackend) failNext(before, after int) {
	m.mu.Lock()
	m.failCalls += before
	m.failAfter += after
	m.mu.Unlock()
}

// records returns every record, shard by shard, in sequence order.
func (m *memBackend) records() []memRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []memRecord
	for _, s := range m.shards {
		out = append(out, s...)
	}
	return out
}

func (m *memBackend) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.shards {
		n += len(s)
	}
	return n
}

// streamReadings decodes every record and checks the layout: partition
// key = device, gateway = want gateway (if set). It returns the readings
// in stream order (per shard, by sequence number).
func streamReadings(t testing.TB, recs []memRecord) []protocol.Reading {
	t.Helper()
	var out []protocol.Reading
	for _, r := range recs {
		rec, err := protocol.DecodeRecord(r.Data)
		if err != nil {
			t.Fatalf("record %s/%s: %v", r.Shard, r.Seq, err)
		}
		if r.Key != protocol.PartitionKey(rec.Device) {
			t.Errorf("record of device %s has partition key %q", rec.Device, r.Key)
		}
		out = append(out, rec.Readings...)
	}
	return out
}

// scanBackend is a memBackend that can be read back (ingest.Scanner). The
// memBackend keeps no arrival times, so every record is in range: the
// ingest's part (which readings to settle) is what this tests; the time
// range is the real store's (cloud/server).
type scanBackend struct{ *memBackend }

var _ ingest.Scanner = scanBackend{}

func (s scanBackend) Scan(ctx context.Context, stream string, from, to time.Time, fn func([]byte) error) error {
	for _, r := range s.records() {
		if err := fn(r.Data); err != nil {
			return err
		}
	}
	return nil
}

package kinesisbackend

import (
	"context"
	"math/big"
	"time"
)

// ShardMetrics are what Put has seen of one open shard since the Backend
// was built, under the names of CloudWatch's shard-level metrics. They
// count this process's writes only: CloudWatch (not reachable from here)
// has the stream-wide figures and the read side.
type ShardMetrics struct {
	ShardID         string
	StartingHashKey string // decimal
	EndingHashKey   string
	// IncomingBytes (data + partition key) and IncomingRecords that
	// Kinesis acknowledged.
	IncomingBytes   uint64
	IncomingRecords uint64
	// WriteProvisionedThroughputExceeded counts entries Kinesis throttled
	// (ProvisionedThroughputExceededException, KMSThrottlingException).
	WriteProvisionedThroughputExceeded uint64
}

// shardCounts are one shard's totals; guarded by the stream's mu.
type shardCounts struct {
	bytes, records, throttled uint64
}

// maxCountedShards bounds the shards counted per stream between two
// ListShards (which drop the closed ones).
const maxCountedShards = 10_000

// count adds a written entry of size bytes (or a throttled one) to shard
// id's totals. Callers hold st.mu.
func (st *streamState) count(id string, size int, throttled bool) {
	if id == "" {
		return
	}
	c := st.counts[id]
	if c == nil {
		if len(st.counts) >= maxCountedShards {
			return
		}
		c = &shardCounts{}
		st.counts[id] = c
	}
	if throttled {
		c.throttled++
		return
	}
	c.records++
	c.bytes += uint64(size)
}

// ShardMetrics lists stream's open shards (ListShards) with what Put has
// seen of each, in hash-key order. It also refreshes the shard map Put
// routes with.
func (b *Backend) ShardMetrics(ctx context.Context, stream string) ([]ShardMetrics, error) {
	ranges, err := b.listShards(ctx, stream)
	if err != nil {
		return nil, err
	}
	st := b.stream(stream)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.install(ranges, time.Now())
	out := make([]ShardMetrics, len(ranges))
	for i, r := range ranges {
		m := ShardMetrics{ShardID: r.id, StartingHashKey: decimal(r.start), EndingHashKey: decimal(r.end)}
		if c := st.counts[r.id]; c != nil {
			m.IncomingBytes, m.IncomingRecords, m.WriteProvisionedThroughputExceeded = c.bytes, c.records, c.throttled
		}
		out[i] = m
	}
	return out, nil
}

func decimal(h hashKey) string { return new(big.Int).SetBytes(h[:]).String() }

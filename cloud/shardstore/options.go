package shardstore

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"
)

// Limits of the Kinesis data model that the store enforces.
const (
	MaxRecordBytes        = 1 << 20  // one record's data
	MaxPartitionKeyLength = 256      // characters (Unicode code points)
	MaxPutEntries         = 500      // entries in one Put call
	MaxPutBytes           = 5 << 20  // data + partition keys in one Put call
	MaxReadRecords        = 10_000   // records in one Read
	MaxReadBytes          = 10 << 20 // bytes in one Read (at least one record is returned)
	MinRetentionHours     = 24
	MaxRetentionHours     = 8760
	DefaultRetentionHours = 24
	MaxStreamNameLength   = 128
)

// Defaults of Options.
const (
	DefaultWriteBytesPerSec   = 1 << 20 // per shard, as Kinesis
	DefaultWriteRecordsPerSec = 1000
	DefaultReadBytesPerSec    = 2 << 20
	DefaultReadsPerSec        = 5
	DefaultMaxShards          = 1000
	DefaultMaxStreams         = 100
	DefaultMaxBatch           = 20_000
	DefaultTrimInterval       = time.Minute
	// pendingRequests is how many Put calls may wait for the writer beyond
	// the batch in progress (backpressure).
	pendingRequests = 256
	// trimChunk bounds the records one trim transaction deletes, so that
	// puts interleave with a large trim.
	trimChunk = 50_000
)

// Throughput sets the per-shard limits, enforced with token buckets that
// hold one second's worth. A zero field means the Kinesis default; a
// negative one turns that limit off.
type Throughput struct {
	// Unlimited turns every limit off (benchmarks, bulk loads).
	Unlimited bool
	// WriteBytesPerSec (data + partition key) and WriteRecordsPerSec are
	// checked per entry: an entry that finds either bucket short fails with
	// ErrThrottled, the others are stored.
	WriteBytesPerSec   int
	WriteRecordsPerSec int
	// ReadsPerSec counts Read calls; ReadBytesPerSec is charged after a
	// read and may go into debt (a 10 MiB read at 2 MiB/s blocks reads
	// for the next ~4 s), like Kinesis GetRecords.
	ReadBytesPerSec int
	ReadsPerSec     int
}

func (t Throughput) resolve() Throughput {
	def := func(v *int, d int) {
		switch {
		case t.Unlimited || *v < 0:
			*v = 0 // off
		case *v == 0:
			*v = d
		}
	}
	def(&t.WriteBytesPerSec, DefaultWriteBytesPerSec)
	def(&t.WriteRecordsPerSec, DefaultWriteRecordsPerSec)
	def(&t.ReadBytesPerSec, DefaultReadBytesPerSec)
	def(&t.ReadsPerSec, DefaultReadsPerSec)
	return t
}

// Options configure a Store. The zero value is valid.
type Options struct {
	// Throughput limits per shard (default: the Kinesis limits).
	Throughput Throughput
	// OnDemand is the initial write capacity of ON_DEMAND streams
	// (default: Kinesis's, 4 MiB/s and 4,000 records/s).
	OnDemand OnDemandCapacity
	// MaxShards bounds the open shards of all streams together (default
	// 1000); CreateStream, SplitShard and UpdateShardCount beyond it fail
	// with ErrLimitExceeded.
	MaxShards int
	// MaxStreams bounds the number of streams (default 100).
	MaxStreams int
	// MaxBatch is the most records per commit (default 20,000). One Put
	// call is never split.
	MaxBatch int
	// TrimInterval is how often the trimmer deletes expired records and
	// shards (default one minute; negative: never, call Trim yourself).
	TrimInterval time.Duration
	// Now is the clock (default time.Now). Arrival timestamps, retention,
	// throttling and MillisBehindLatest follow it; tests inject one.
	Now func() time.Time
	// Logger receives trims, reshards and errors (default: discard).
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	o.Throughput = o.Throughput.resolve()
	o.OnDemand.WriteBytesPerSec = cmp.Or(o.OnDemand.WriteBytesPerSec, DefaultOnDemandWriteBytesPerSec)
	o.OnDemand.WriteRecordsPerSec = cmp.Or(o.OnDemand.WriteRecordsPerSec, DefaultOnDemandWriteRecordsPerSec)
	o.MaxShards = cmp.Or(o.MaxShards, DefaultMaxShards)
	o.MaxStreams = cmp.Or(o.MaxStreams, DefaultMaxStreams)
	o.MaxBatch = cmp.Or(o.MaxBatch, DefaultMaxBatch)
	if o.MaxShards < 0 || o.MaxStreams < 0 || o.MaxBatch < 0 || o.OnDemand.WriteBytesPerSec < 0 || o.OnDemand.WriteRecordsPerSec < 0 {
		return o, fmt.Errorf("shardstore: MaxShards, MaxStreams, MaxBatch and OnDemand must not be negative (0 means the default)")
	}
	if o.TrimInterval == 0 {
		o.TrimInterval = DefaultTrimInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Resolved returns t with defaults applied: each limit as enforced, 0 for
// off.
func (t Throughput) Resolved() Throughput { return t.resolve() }

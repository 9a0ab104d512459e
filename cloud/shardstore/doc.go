// Package shardstore is the cloud tier's embedded stream store: streams of
// shards over MD5 hash-key ranges, with the Amazon Kinesis Data Streams
// data model, in one bbolt file.
//
// # Guarantees
//
//   - Durable before acknowledged: Put returns only after the bbolt commit
//     holding its records is fsynced. Killed at any instant (kill -9,
//     power cut), the store reopens with every acknowledged record readable
//     at its sequence number, intact (each record carries a CRC-32C). The
//     crash test re-executes the test binary as a writer, kills it with
//     SIGKILL mid-stream and checks every acknowledged record.
//   - Damage and full disks: Open checks the file's structure before bbolt
//     maps it (internal/boltfile), so a damaged file is ErrCorrupt naming
//     the file, never a crash. A commit that cannot grow the file (disk or
//     quota full) fails the calls in it with ErrNoSpace, storing nothing of
//     them; what was acknowledged before stays, and the store works again
//     when space returns. Both are tested on real files (a child process
//     under RLIMIT_FSIZE for the full disk).
//   - Group commit: one writer goroutine owns every write transaction and
//     takes all pending Put calls (up to Options.MaxBatch records, a call
//     is never split) into one transaction, so many concurrent callers
//     share an fsync. Past 256 waiting calls Put blocks (honouring its
//     context): that is the store's backpressure.
//   - Order: within a shard, sequence numbers rise strictly in commit
//     order, and arrival timestamps never go back (each commit stamps its
//     records with max(clock, previous stamp)). Entries of one Put that go
//     to the same shard keep their order.
//   - Routing: a record goes to the open shard whose hash key range holds
//     MD5(partition key) read as a 128-bit big-endian integer (or its
//     ExplicitHashKey), exactly as Kinesis routes, so the same keys land
//     in the same shard ids as on Kinesis for the same resharding history.
//   - Per-entry outcome: an entry whose shard is over its write limit
//     fails alone with ErrThrottled; the others are stored.
//   - Resharding keeps lineage: SplitShard, MergeShards and
//     UpdateShardCount close parents (EndingSequenceNumber set) and create
//     children that record their parent (and adjacent parent). Parents stay
//     readable until the retention period has passed since they closed; a
//     read that reaches a closed shard's end says so and names the
//     children (ReadResult.EndOfShard, ChildShards).
//   - Retention: records older than the stream's retention period (24 h by
//     default, 24..8760 h) are never returned; the trimmer deletes them and
//     removes expired closed shards.
//
// # Sequence numbers
//
// A sequence number is the decimal form of the 128-bit integer
//
//	2^124 + position·2^60 + shard·2^28
//
// always 38 digits, so numeric and string order agree. position is a
// store-wide counter (64 bits) that every stored record, every new stream
// and every shard closure takes the next value of; shard is the shard
// index (32 bits). So a sequence number names its shard and the record's
// key in that shard's bucket, sequence numbers rise strictly within a
// shard (and across the whole store in commit order), a child shard's
// numbers are above its parents', and the number of a record that was
// never issued is recognisable. ParseSequenceNumber decodes one.
// StartingSequenceNumber of a shard is at or below its first record's,
// EndingSequenceNumber is the counter value taken when it closed.
//
// # Positions
//
// Seek turns a starting point (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER,
// AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP) into a Position: (stream, stream
// incarnation, shard, next position). Read returns records from there and
// the Position to continue from. LATEST is resolved when Seek is called
// (records stored afterwards are read); AT_TIMESTAMP finds the first
// record that arrived at or after the time by binary search over
// positions; a position below the trim horizon reads from the horizon. A
// Position of a deleted (or deleted and re-created) stream fails with
// ErrStreamNotFound; of an expired shard with ErrShardNotFound.
//
// # Throughput
//
// Per shard, token buckets holding one second's worth enforce (defaults =
// Kinesis) 1 MiB/s and 1,000 records/s in, checked per entry, and 5
// reads/s and 2 MiB/s out: a read is refused while the call bucket is
// empty or the byte bucket is in debt, and its bytes are charged after it
// (so one 10 MiB read blocks the shard's reads for about 4 s, as on
// Kinesis). Throughput{Unlimited: true} or negative fields turn limits
// off. Bucket state is in memory: a restart refills them.
//
// # Capacity modes
//
// A stream is PROVISIONED (the per-shard limits above) or ON_DEMAND
// (CreateStreamMode, UpdateStreamMode). An on-demand stream follows AWS's
// published on-demand rules for the stream as a whole, and its shards
// have no write limit of their own: it takes 4 MiB/s and 4,000 records/s
// at first (Options.OnDemand; a stream switched from provisioned at least
// what its open shards took), and at any time double the peak write
// throughput of the last 30 days, where a peak is a minute's average
// that counts from 15 minutes after its minute ended, so traffic that
// more than doubles the previous peak within 15 minutes is throttled.
// Peaks are kept in memory: a restart starts from the initial capacity.
// An on-demand stream cannot be resharded by hand (Kinesis manages its
// shards; here the shard count stays as created, 4 by default).
//
// # File layout
//
// One bbolt file (freelist not persisted) with buckets:
//
//	meta     "format" → 1 (8-byte big-endian); "state" → next position
//	         counter and last arrival time (ms), 8 bytes each
//	streams  name → JSON metadata: incarnation id, creation time,
//	         retention, next shard index, every live shard (index, hash
//	         range, parent, adjacent parent, first position, last position
//	         and close time if closed, creation time)
//	records  8-byte stream incarnation → 4-byte shard index →
//	         8-byte position → CRC-32C (4) | arrival ms (8) |
//	         uvarint key length | partition key | data
//
// Positions only grow, so record buckets fill pages completely
// (FillPercent 1.0) and a shard's records are in arrival order.
//
// # Limits
//
// Records of at most 1 MiB, partition keys of 1..256 characters, at most
// 500 entries and 5 MiB (data + keys) per Put, reads of at most 10,000
// records and 10 MiB (at least one record), stream names of 1..128
// characters of [a-zA-Z0-9_.-], 1,000 open shards (Options.MaxShards)
// and 100 streams (Options.MaxStreams) per store. CreateStream, reshards
// and retention changes take effect at once: streams are always ACTIVE.
// Kinesis's limits on how often control operations may be called (such
// as 10 UpdateShardCount calls a day, or two mode switches a day) are not
// enforced: the autoscaler (cloud/autoscale) keeps to them itself.
//
// # Metrics
//
// ShardMetrics returns every shard's totals under CloudWatch's names
// (IncomingBytes, IncomingRecords, WriteProvisionedThroughputExceeded,
// ReadProvisionedThroughputExceeded, OutgoingBytes, OutgoingRecords,
// GetRecords, GetRecords.IteratorAgeMilliseconds), and Collector exports
// them to Prometheus as tributary_stream_shard_*{stream,shard} (and
// tributary_stream_open_shards{stream}). They are in memory: a restart
// starts them at zero.
package shardstore

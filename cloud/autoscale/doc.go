// Package autoscale reshards a stream to fit its load: the embedded store
// or Amazon Kinesis, through the Kinesis API (UpdateShardCount,
// SplitShard), driven by per-shard metrics with CloudWatch's names.
//
// # Measure
//
// Every Config.Interval a Source gives each open shard's counters
// (IncomingBytes, IncomingRecords, WriteProvisionedThroughputExceeded,
// ReadProvisionedThroughputExceeded, OutgoingBytes). Loads turns two
// snapshots into rates and a utilisation per shard: the largest of write
// bytes and write records over the shard's write limits (1 MiB/s, 1,000
// records/s on Kinesis) and read bytes over its read limit (2 MiB/s),
// where write demand counts the throttled records too (what was offered,
// not only what was taken), at most as many as were taken: a refused
// record is usually sent again and each attempt counts, so throttles
// overstate demand. Read-call throttles are not scaled for: every
// consumer polls every shard, so more shards do not relieve them.
//
// Sources: StoreSource (the embedded store counts every write, read and
// throttle itself: shardstore.Store.ShardMetrics) and BackendSource
// (Kinesis: what this process's writes saw; kinesisbackend.Backend.
// ShardMetrics). CloudWatch is not consulted (it is not reachable from
// here, and needs its own IAM permissions); a Source that reads
// GetMetricData for the same metric names can take BackendSource's place.
//
// # Decide
//
// With U the sum of the shards' utilisations, the stream needs
// ceil(U / target_utilisation) shards, within [min_shards, max_shards].
// A scale-up needs two measurements in a row asking for it: one
// interval's burst (a fleet connecting at once, a backlog flushed) is not
// a load.
//
//   - Hot key range: if one shard is over the target and at least twice
//     the others' average, and one more shard would do, that shard alone
//     is split at the middle of its hash key range (SplitShard).
//   - Uniform load: otherwise, when more shards are needed (or a shard is
//     over its limit), UpdateShardCount (UNIFORM_SCALING) to that many,
//     at most double the open count per call.
//   - Scale down: when a count that keeps U under 80% of the target
//     (hysteresis) is below the open count, nothing was throttled, and
//     that has been so for scale_down_delay, UpdateShardCount to it, at
//     least half the open count per call; never while a consumer is more
//     than Options.MaxLag (10s) behind (the monitor consumer's
//     MillisBehindLatest).
//   - Kinesis's rules: at most double or half per UpdateShardCount, at
//     most 10 UpdateShardCount calls per rolling 24 h (MaxUpdatesPerDay),
//     and at least cooldown between two reshards of any kind (a failed
//     call counts, so a refused call is not retried at once).
//
// A decision that something should change but a rule forbids it now is
// a hold. Every reshard (with its reason and, if it failed, the error) and
// every hold whose reason differs from the previous one is logged and kept
// in a bounded history (Options.History, default 100), which Status
// returns with the last interval's per-shard loads and the configuration
// (tributary-cloud serves it at GET /api/v1/autoscale on the admin
// listener; Handler serves it alone, for other programs). A split's
// children hold the parent's keys in two halves, so a single hot
// partition key cannot be spread (Kinesis has the same per-key limit):
// when the hot child of a hot split still carries 80% or more of its
// parent's load, the autoscaler holds, saying so, instead of splitting
// again.
//
// # Kinesis
//
// On Amazon Kinesis the cloud's IAM role needs kinesis:ListShards (to
// measure), kinesis:UpdateShardCount and kinesis:SplitShard (deploy/aws
// grants them). A Kinesis stream in ON_DEMAND mode is resharded by
// Kinesis itself and refuses these calls: leave stream.autoscale off for
// it (the refusals would be recorded as failed decisions, one per
// cooldown).
//
// # Kafka
//
// The autoscaler does not repartition Kafka topics: adding partitions
// moves keys to other partitions, breaking per-device order. With any
// backend but embedded and kinesis, the Scaler only explains that
// (Explain), in the log and in its status.
package autoscale

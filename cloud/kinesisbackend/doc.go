// Package kinesisbackend writes stream records to Amazon Kinesis Data
// Streams (or anything that speaks its API: our own cloud/kinesisapi,
// kinesalite, LocalStack) with PutRecords.
//
// # Guarantees
//
// No duplicates from partial failures. PutRecords may fail some entries of
// a call and write the others. Put resends only the entries whose result
// carries an ErrorCode, never one that Kinesis acknowledged.
//
// Per-partition-key order. Kinesis does not keep the order of records in
// one PutRecords call: if entry 1 for key K is throttled and entry 2 for K
// is not, entry 2 lands first. So Put sends at most one entry per partition
// key in each call; the next entry of that key goes in a later call, and
// only after the previous one has been acknowledged. Within one Put, the
// records of a key therefore appear in the stream in the order of entries.
// Distinct keys still share calls (up to 500 of them per call, and
// Concurrency calls per round), so a Put of one entry per device, as the
// ingest tier makes, needs one round. Order between concurrent Put calls
// for the same key is the caller's business: serialise them per key.
//
// If an entry fails for good (a KMS error, say), the later entries of its
// key in the same Put are not sent either (they would overtake it): they
// fail with an error that wraps the first one's.
//
// Throttling. Put routes each partition key to its shard (MD5 over the
// 128-bit hash-key ranges that ListShards reports) and keeps a token bucket
// per shard at Kinesis's write limits (1,000 records/s and 1 MiB/s, a
// second's worth of burst), so that it rarely asks for more than a shard
// takes. When Kinesis throttles an entry anyway
// (ProvisionedThroughputExceededException, KMSThrottlingException) that
// shard alone backs off, exponentially with jitter, while the others go on.
// A stale shard map (after a reshard) is noticed from the ShardIds that come
// back and refreshed. Without ListShards permission Put still works, with
// one stream-wide backoff instead.
//
// Bounded time. Put returns by its context's deadline (Config.PutTimeout
// when the context has none). A PutRecords call already in flight at the
// deadline may finish, for at most RequestTimeout, so that its entries'
// outcome is known rather than unknown; cancelling the context aborts at
// once. Entries not written by then fail with an error that wraps
// ErrThrottled (retry later) and the context's error.
//
// Unknown outcomes. A call that fails without an answer from Kinesis (a
// connection lost after the request was sent, a server error, a timeout)
// may or may not have written its entries. Put resends them, so they are
// written at least once but possibly twice (the copy that counts for order
// is the acknowledged one, and later entries of the key follow it). If the
// deadline passes before such an entry is acknowledged, Put returns an
// error wrapping ErrOutcomeUnknown: those entries may be in the stream.
// Only transport failures cause duplicates; consumers dedupe by the
// readings' natural key.
//
// # Shard metrics
//
// ShardMetrics lists the open shards with what Put has seen of each, under
// CloudWatch's names (IncomingBytes, IncomingRecords,
// WriteProvisionedThroughputExceeded): the autoscaler's measure on
// Kinesis. They count this process's writes only. CloudWatch has the
// stream-wide and read-side figures (OutgoingBytes, ReadProvisioned-
// ThroughputExceeded, GetRecords.IteratorAgeMilliseconds), but it is
// another service with its own API and IAM permissions, not reached from
// here; a CloudWatch-based source can be plugged into the autoscaler
// instead (autoscale.Source).
//
// # Limits
//
// A call carries at most 500 entries and 5 MiB (data plus partition keys).
// An entry's partition key is 1 to 256 Unicode characters of valid UTF-8,
// and its data plus key is at most 1 MiB; an entry outside these limits
// fails with ErrInvalidEntry and the others are written.
//
// # Configuration
//
// Config.Endpoint is the base endpoint of a Kinesis-compatible API (unset:
// real AWS, found from Region). Credentials come from the default AWS chain
// (environment, shared files, IAM role) unless AccessKeyID and
// SecretAccessKey are given. The IAM policy needs kinesis:PutRecords and,
// for shard-aware throttling, kinesis:ListShards.
package kinesisbackend

// Package consumer reads a Tributary stream — Kinesis shards or Kafka
// partitions — and hands each shard's records, decoded into readings, to a
// handler, with checkpoints (committed offsets), resharding and rebalance
// order, and backoff. The Handler, Batch, Config, Options and Stats are
// the same on both engines (Runner is what both consumers are), so a
// user's consumer does not depend on the engine.
//
// It speaks the Kinesis Data Streams API through aws-sdk-go-v2 (ListShards,
// GetShardIterator, GetRecords; the KinesisAPI interface), so the same
// code reads the embedded store's API (cloud/kinesisapi), kinesalite and
// Amazon Kinesis.
//
// # Delivery
//
// At least once. Each shard is read by one goroutine: GetRecords, decode
// every record with protocol.DecodeRecord, call the Handler with the batch
// until it returns nil (an error retries the same batch after a jittered
// backoff; nothing is skipped), then write the shard's checkpoint — the
// last sequence number of the batch — to a bbolt file, fsynced, keyed by
// (Config.Application, stream, shard). A restarted consumer reads each
// shard AFTER_SEQUENCE_NUMBER of its checkpoint, so what it sees again is
// at most the one batch per shard that was being handled when it stopped.
// Readings carry a natural key (Reading.Key) for idempotent processing.
//
// Records that do not decode are counted, logged, passed to
// Options.OnBadRecord and skipped (checkpointed past): a bad record never
// stalls a shard.
//
// # Resharding and order
//
// Records of one partition key (one device) are in order within a shard,
// and a split or merge moves a key to a child shard. So a child is read
// only after all its parents (ParentShardId and AdjacentParentShardId)
// are finished: read to their end, handled, and checkpointed as ended.
// A parent no longer listed (expired past retention) counts as finished.
// The handler therefore sees each device's records in stream order across
// splits and merges. Shards are listed at start, every
// Config.ListInterval, and as soon as a shard ends.
//
// A shard without a checkpoint is read from its beginning if this
// application read one of its parents, and from Config.StartAt
// (TRIM_HORIZON by default, or LATEST) otherwise; with LATEST, closed
// shards nobody read are skipped.
//
// # Throttling and failures
//
// ProvisionedThroughputExceededException backs the shard off
// exponentially with jitter (from PollInterval up to MaxBackoff) on the
// same iterator; ExpiredIteratorException re-acquires the iterator from
// the checkpoint; a shard that is not found any more counts as finished;
// other failed calls are logged and retried with backoff. The SDK client's
// own retries come first; what they give up on reaches these rules. An
// empty read doubles the shard's poll pause up to MaxPollInterval. Only a
// checkpoint that cannot be written stops Run with an error.
//
// # Observability
//
// Stats returns the counters and per-shard lag. With Options.Registerer
// the consumer exports (labelled application and stream)
// tributary_consumer_behind_latest_seconds{shard} (MillisBehindLatest),
// tributary_consumer_iterator_age_seconds{shard},
// tributary_consumer_shards_active and the counters
// tributary_consumer_{records,readings,batches,decode_errors,throttles,
// handler_errors,expired_iterators,call_errors,shards_finished}_total.
//
// # Limits
//
// One consumer process per application and stream: there are no leases
// yet. The checkpoint file's lock keeps a second process of the same
// application on the same host from starting (OpenCheckpoints fails after
// a second); processes on different hosts with different files would both
// read every shard. A restart after kill -9 resumes from the checkpoints
// (TestKill9ResumesWithoutGaps kills a consumer process five times while
// a shard splits and checks every device's values arrive without a gap
// and in order, up to the re-delivery of uncommitted batches). The
// checkpoint file is local (bbolt); shard ids of a deleted and re-created
// stream meet the old checkpoints. With LATEST, a shard's position is
// only remembered after its first batch.
//
// # Kafka
//
// NewKafka builds a KafkaConsumer: a member of the consumer group
// Config.Application (the built-in monitor's is tributary-monitor) on the
// topic Config.Stream, with franz-go (kgo) — autocommit off and
// BlockRebalanceOnPoll. Each poll (at most Config.Limit records) is split
// by partition; the partitions' batches go to the handler concurrently,
// each partition's records in offset order (one device's records are in
// one partition, in the order they were produced). Once every batch of
// the poll was handled (the handler returned nil; errors retry the same
// batch with backoff, as on Kinesis), their offsets are committed
// synchronously, and only then may the group rebalance: a partition never
// moves while its records are being handled, and it moves with what was
// handled committed, so its next owner starts right after — no gap, no
// reordering, nothing handled twice. What is never committed is what was
// not handled: records polled when Run stops or a member dies are
// delivered again to the partition's next reader (at least once). A
// commit that fails (broker down) is retried with the next one and on
// revoke; if the partition moves first, its handled records are delivered
// again. Partitions lost to a session timeout are dropped without commit.
//
// TestKafkaGroupRebalance shares a topic between two consumers while one
// joins and the other leaves mid-stream (every record handled once, per
// device in order); TestKafkaKill9ResumesWithoutGaps kills a consumer
// process four times and checks that every run resumes from the group's
// committed offsets without a gap. Both run against franz-go's kfake as its
// own process (testenv.StartKafka), not a real Kafka.
//
// Bad records are counted, logged, passed to Options.OnBadRecord and
// committed past, as on Kinesis. Metrics have the same names: Batch.Shard
// and the shard label are the partition number in decimal,
// Record.SequenceNumber the offset, Record.Arrival the record's timestamp;
// tributary_consumer_lag_records{shard} is the partition's high watermark
// minus the next offset, behind_latest_seconds the age of the last
// handled record while there is lag (0 once caught up), and failed
// fetches and commits count as call_errors. The group timings (session
// timeout, heartbeat) come with the connection options.
package consumer

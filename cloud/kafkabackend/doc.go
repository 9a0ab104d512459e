// Package kafkabackend writes stream records to Apache Kafka or Amazon MSK
// with franz-go, and reads a time range of them back: it implements
// ingest.Backend, ingest.Scanner and ingest.Settler.
//
// # API
//
//	cfg := kafkabackend.Config{Brokers: []string{"b-1:9092"}, Topic: "telemetry"}
//	b, err := kafkabackend.New(ctx, cfg)      // connects lazily, validates cfg
//	err = b.EnsureTopics(ctx, "telemetry", "alerts") // kadm: create if missing
//	res, err := b.Put(ctx, "telemetry", entries) // ingest.Backend; Result.ShardID is
//	                                          // the partition ("3"), SequenceNumber the offset
//	err = b.Scan(ctx, "telemetry", from, to, fn) // ingest.Scanner
//	err = b.Settle(ctx)                       // ingest.Settler: wait for the
//	                                          // records reported unknown
//	opts, err := cfg.ClientOpts(ctx)          // connection options (brokers, TLS,
//	                                          // SASL, client id) for other clients,
//	                                          // e.g. a consumer group
//	b.Client(), b.Config(), b.Close()
//
// Errors: ErrInvalidEntry (Result.Err: empty key, over MaxRecordBytes),
// ErrPartitionMismatch (EnsureTopics: an existing topic's partition count
// differs; it is left alone). Constants MechanismSCRAMSHA512,
// MechanismAWSMSKIAM and the Default* values of Config.
//
// # Records
//
// One Entry is one Kafka record: key = Entry.PartitionKey (the device id),
// value = Entry.Data (a SenML-CBOR pack, protocol.EncodeRecords), the
// timestamp the producer's clock at Put (CreateTime). Partitions are chosen
// by Kafka's default partitioner: murmur2 of the key modulo the partition
// count (kgo.StickyKeyPartitioner(nil)), so the Java client, librdkafka
// (partitioner=murmur2_random) and this package put a device on the same
// partition. A topic's partition count is never changed here: that would
// move keys and break per-device order.
//
// # Guarantees
//
// The producer is idempotent with acks=all: the broker deduplicates the
// client's retries, so a record is written at most once per Put even when
// a connection drops mid-request, and records of one partition keep their
// order. Within one Put, the n-th entry of a key is produced only after the
// (n-1)-th was acknowledged; if that one failed, the later ones are not
// sent (they would overtake it) and fail with an error that wraps its.
//
// Put returns by its context's deadline (Config.PutTimeout when it has
// none) plus Config.SettleTimeout, the time franz-go gets to fail records
// it can safely fail. Each Result is then:
//
//   - Err nil: the broker acknowledged the record (acks=all): durable.
//   - Err wrapping ingest.ErrThrottled: not written, retry later. The
//     producer buffer was full (Config.MaxBufferedRecords: back-pressure),
//     the broker kept answering a retriable error such as
//     NOT_ENOUGH_REPLICAS or NOT_LEADER_OR_FOLLOWER, or the brokers were
//     unreachable, until the deadline. franz-go fails a record only when
//     it knows that no request carrying it was processed.
//   - Err wrapping ingest.ErrOutcomeUnknown: a request carrying it was sent
//     and not answered (a timeout, a connection lost mid-flight, the
//     broker's REQUEST_TIMED_OUT), so it may be in the topic. The record
//     stays in the producer, which keeps retrying it under the same
//     sequence number (the broker drops the copy if the first one landed).
//     A later Put of the identical record (same topic, key and value: the
//     gateway's resend of the same batch) waits for that copy instead of
//     producing a second one; and once that copy is acknowledged, a resend
//     within Config.RememberLate (10m) is acknowledged with it. A resend
//     whose record differs (the gateway re-cut its batch) is not matched
//     here: Settle returns once every record a Put reported unknown has
//     resolved (ingest.Settler), and the ingest then reads the topic back
//     (Scan) and writes only the readings that are not there. So a broker
//     outage longer than the timeouts does not duplicate records when it
//     ends.
//   - any other Err: not written and retrying will not help (a record over
//     the broker's max.message.bytes, authorization refused).
//
// # Scan
//
// Scan reads back the records of [from, to) of every partition: ListOffsets
// by timestamp gives each partition's first offset at or after from, and it
// reads up to the end offsets it listed at its start. The ingest uses it
// after a crash to acknowledge readings that reached the topic instead of
// writing them again (see cloud/ingest).
//
// # Security
//
// Config.TLS (a *tls.Config, internal/tlsfiles) encrypts the connections;
// Config.SASL authenticates: SCRAM-SHA-512 with a user name and password,
// or AWS_MSK_IAM, which signs with the default AWS credential chain
// (environment, shared files, IAM role). The Kafka APIs sent are
// ApiVersions, Metadata, CreateTopics, InitProducerId, Produce, ListOffsets
// and Fetch (no KIP-714 client metrics): on MSK the IAM actions
// kafka-cluster:Connect and WriteDataIdempotently on the cluster, and
// CreateTopic, DescribeTopic, WriteData and ReadData on the topics
// (deploy/aws/tributary-msk.yaml, checked by deploy/msk_test.go).
//
// # Metrics
//
// tributary_kafka_records_total{result=written|throttled|unknown|failed},
// tributary_kafka_joined_total (resends that waited for an in-flight copy
// or found it acknowledged late), tributary_kafka_late_acks_total,
// tributary_kafka_put_seconds, tributary_kafka_buffered_records.
package kafkabackend

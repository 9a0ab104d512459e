// Package verify checks a Tributary pipeline end to end: it reads a stream
// through the Kinesis API (the unmodified aws-sdk-go-v2 client, against the
// cloud's embedded store or Amazon Kinesis) or a Kafka topic (KafkaSource,
// franz-go, every partition from its start, outside any consumer group)
// and compares what arrived with the simulator's truth file. On Kafka a
// partition is what a shard is on Kinesis (one device's records are in one
// partition, in order); the read ends once every partition was read to
// the end offset it has after a settle period without new records.
//
// Expected readings come from the truth's published lines
// (model.KindPublished): per device, how many readings the device
// published and the span of their device times. The stream is walked
// shard by shard from the trim horizon, closed parents before their
// children, so a device's records are seen in the order the stream keeps
// them; the read stops once every shard has caught up and nothing new
// arrived for a settle period, or at a deadline.
//
// Per device and in total a Report gives readings expected, received,
// lost, duplicated (the same natural key (device, name, time) more than
// once), unexpected, out of order (a device's time going backwards along
// the stream), gateway health readings (agent.*) apart, and the latency
// from a reading's device time (corrected by the truth's clock skew) to a
// Stamper's time: by default the record's ApproximateArrivalTimestamp. With
// an alerts stream, an AlertScorer matches the alerts against the truth's
// injected anomalies for detection precision and recall.
//
// Because the truth holds counts, not every reading, a lost reading is
// known by number (expected minus unique readings in the device's span),
// not by key; Report.Devices names the largest gap in a lossy device's
// readings to point at where.
//
// Memory: the Checker holds one entry per unique reading seen (a 16-byte
// key: the device time and the interned metric) in a per-device hash set.
// BenchmarkCheckerMemory measures 36 bytes per reading (3 million readings
// of 1,000 devices, heap after GC); it varies between about 20 and 45 with
// where each device's set is in its growth, and a set being doubled holds
// both tables for a moment. So budget about 40 bytes per reading: 10
// million readings (10,000 devices at 1 sample/s of 3 metrics for 5.5
// minutes) take about 400 MB. Latencies go into a fixed histogram (under
// 60 KB, 0.8% resolution); alerts are matched as they are read.
package verify

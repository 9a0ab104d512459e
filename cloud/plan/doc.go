// Package plan sizes a Kinesis stream for a fleet and prices a month of it
// on four engines: Kinesis provisioned, Kinesis on-demand, MSK provisioned
// and MSK Serverless. It is `tributary-cloud plan`; pure computation, no
// network except Live.
//
// # Traffic
//
// From a Fleet (devices, samples per second, the readings of a sample,
// gateways, the agents' batch_age and batch_readings; or Fleet.Sample, a
// device's own SenML pack, for the readings of a sample), Measure works out
// what the ingest writes: a gateway sends a batch every batch_age or when
// batch_readings fill it, and the ingest writes each device's readings of
// a batch as one SenML-CBOR record (split at 25 KiB), partition key the
// device id. Records are encoded with protocol.EncodeRecords, the ingest's
// own encoder, so their sizes are measured, not assumed. From a running
// cloud, Live reads the monitor's rates (/api/v1/overview readings/s,
// /api/v1/stream records/s and bytes/s per shard, the mean of the last 10
// complete seconds); Traffic.Scale extrapolates to more devices.
//
// # Shards
//
// Capacity takes the largest of: write bytes (1 MiB/s a shard), write
// records (1,000/s), read bytes (2 MiB/s a shard shared by every consumer,
// or per consumer with enhanced fan-out), each with Fleet.Headroom (25%)
// on top. Read calls (5 GetRecords/s a shard, shared) do not depend on the
// shard count: consumers / poll_interval above 5 is reported as unmet,
// with the interval that fits. Byte rates count data plus partition key,
// as Kinesis's limits do.
//
// # Bills
//
// Kinesis provisioned: shard-hours, PUT payload units (each record's data
// in 25 KB units, rounded up per record), extended retention (shard-hours,
// above 24 h), long-term retention (GB-month beyond 7 days), enhanced
// fan-out (consumer-shard-hours and GB). On-demand: stream-hours, data in
// (each record rounded up to 1 KB), data out per consumer, retention per
// GB-month. MSK provisioned: brokers of the price file's type sized by its
// per-broker ingress and egress guideline (egress: consumers plus 2 replica
// fetches), at least 3 and a multiple of 3 (three AZs), storage = ingest ×
// retention × replication 3 with headroom, provisioned per broker (at most
// 16 TiB each: more data, more brokers). MSK
// Serverless: cluster-hours, partition-hours (partitions: Fleet.Partitions,
// else as many as shards, at least the per-partition write quota needs),
// GB in, GB out per consumer, GB-month stored. A month is the price file's
// hours_per_month (730); GB is 2^30 bytes. Data transfer, taxes and free
// tiers are not included, nor the agents' own health records (one small
// record per gateway every health.every, 10 s by default).
//
// # Prices
//
// One YAML file per region in deploy/prices (embedded in the binary), or
// -prices FILE: every price {usd, source} and guide {value, source} is
// required, its source an https URL; as_of dates the file. Decoding is
// strict and Validate names every bad field by its path.
package plan

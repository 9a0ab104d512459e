package consumer

import (
	"context"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// Handler processes one batch: the records one GetRecords call returned
// from one shard, in shard order. It is called for one shard at a time
// (batches of a shard never overlap) but for different shards
// concurrently, so it must be safe for concurrent use. Returning nil
// commits the batch (its checkpoint is written); an error makes the
// consumer call it again with the same batch after a backoff, until it
// succeeds or the consumer stops. Delivery is at least once: after a
// restart the batches since the last checkpoint come again, so process
// idempotently by Reading.Key.
//
// The Batch and its slices belong to the handler once it is called.
type Handler func(ctx context.Context, b Batch) error

// Batch is what a handler gets.
type Batch struct {
	Stream string
	Shard  string
	// Readings of every record that decoded, in record order: the
	// concatenation of Records[i].Readings. Each has Device set; use
	// Key() for its natural key.
	Readings []protocol.Reading
	// Records that decoded (records that did not are left out, counted
	// and passed to Options.OnBadRecord).
	Records []Record
	// MillisBehindLatest as GetRecords reported it: how far the end of
	// this batch is behind the shard's newest record (0: caught up).
	MillisBehindLatest int64
}

// Record is one stream record.
type Record struct {
	SequenceNumber string
	PartitionKey   string    // the device id, for records Tributary wrote
	Arrival        time.Time // ApproximateArrivalTimestamp
	Data           []byte    // the raw record (a SenML-CBOR pack)
	// Gateway and Device are from the decoded record; Readings is this
	// record's part of Batch.Readings. All empty for a bad record.
	Gateway  string
	Device   string
	Readings []protocol.Reading
}

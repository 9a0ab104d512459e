package ingest

import (
	"context"
	"errors"
	"time"
)

// Backend writes stream records: the embedded shard store, Amazon Kinesis
// or another stream. Put returns only when the accepted entries are
// durable.
//
// Put returns one Result per entry, in order. Err nil: the entry is
// durable. Err wrapping ErrThrottled: not written, its shard is at
// capacity (retry later). Err wrapping ErrOutcomeUnknown: it may or may
// not have been written. Any other Err: not written.
//
// An error from Put itself, with no Results, means no entry's outcome is
// known (some may have been written), unless it wraps ErrThrottled: then
// none was written. With a full set of Results the Results stand and the
// error only explains them.
type Backend interface {
	Put(ctx context.Context, stream string, entries []Entry) ([]Result, error)
}

// Entry is one stream record to write.
type Entry struct {
	PartitionKey string
	Data         []byte
}

// Result is the outcome of one Entry.
type Result struct {
	ShardID, SequenceNumber string
	Err                     error // wraps ErrThrottled when the shard is at capacity
}

// Errors a Backend reports through Result.Err (or Put's error).
var (
	ErrThrottled      = errors.New("ingest: stream throttled")
	ErrOutcomeUnknown = errors.New("ingest: write outcome unknown")
)

// Limits of one Backend.Put call (those of Kinesis PutRecords).
const (
	MaxPutEntries = 500
	MaxPutBytes   = 5 << 20 // data and partition keys
)

// Scanner is implemented by backends that can read back the records that
// arrived in a time range. An ingest restarted after a crash uses it to
// learn which readings of the writes it was doing reached the stream (see
// the package documentation); without it, those readings are written
// again when resent.
type Scanner interface {
	// Scan calls fn with the data of every record of stream that arrived
	// in [from, to), in no particular order across shards.
	Scan(ctx context.Context, stream string, from, to time.Time, fn func(data []byte) error) error
}

// Settler is implemented by backends whose writes go on after Put has
// reported them as ErrOutcomeUnknown (a Kafka producer keeps retrying
// them). With a Scanner too, the ingest reads the stream back before it
// writes a resend of such readings, and acknowledges those it finds
// instead of writing them twice (see the package documentation).
type Settler interface {
	// Settle returns nil once every entry that a Put reported as unknown
	// before the call has resolved: it is in the stream, or it never will
	// be. Otherwise it returns an error when ctx ends.
	Settle(ctx context.Context) error
}

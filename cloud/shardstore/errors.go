package shardstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the store returns for one of these reasons
// is an *Error wrapping the sentinel, so test with errors.Is.
var (
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("shardstore: closed")
	// ErrStreamNotFound: no stream of that name (or it was deleted since
	// the position was taken). Kinesis: ResourceNotFoundException.
	ErrStreamNotFound = errors.New("shardstore: stream not found")
	// ErrShardNotFound: no such shard in the stream, or it expired.
	// Kinesis: ResourceNotFoundException.
	ErrShardNotFound = errors.New("shardstore: shard not found")
	// ErrStreamExists: CreateStream of a name in use. Kinesis:
	// ResourceInUseException.
	ErrStreamExists = errors.New("shardstore: stream already exists")
	// ErrInvalidArgument: the request cannot succeed as given. Kinesis:
	// InvalidArgumentException.
	ErrInvalidArgument = errors.New("shardstore: invalid argument")
	// ErrThrottled: a shard's throughput limit is used up. Kinesis:
	// ProvisionedThroughputExceededException.
	ErrThrottled = errors.New("shardstore: provisioned throughput exceeded")
	// ErrLimitExceeded: too many shards or streams. Kinesis:
	// LimitExceededException.
	ErrLimitExceeded = errors.New("shardstore: limit exceeded")
	// ErrCorrupt: the database file or a stored record is damaged.
	ErrCorrupt = errors.New("shardstore: corrupt database")
	// ErrNoSpace: the database file cannot grow (the disk or the quota is
	// full, or a file size limit): nothing of the failed call was stored.
	ErrNoSpace = errors.New("shardstore: no space left for the database file")
	// ErrLocked: another process has the database file open.
	ErrLocked = errors.New("shardstore: database file is in use by another process")
)

// Error is the type of the store's failures: Err is one of the sentinels
// above, Msg says what is wrong in words a client can act on.
type Error struct {
	Err error
	Msg string
}

func (e *Error) Error() string { return "shardstore: " + e.Msg }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func errorf(kind error, format string, args ...any) error {
	return &Error{Err: kind, Msg: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error { return errorf(ErrInvalidArgument, format, args...) }

package queue

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/tributary-iot/tributary/internal/defaults"
)

// Policy says what a full queue does with new readings.
type Policy string

const (
	// Block holds appends until acknowledgements free space: Append waits,
	// TryAppend fails with ErrFull.
	Block Policy = "block"
	// DropOldest deletes the oldest readings to make room, counts every one
	// and logs each drop event.
	DropOldest Policy = "drop-oldest"
)

// Defaults and limits of Options.
const (
	DefaultMaxBatch      = 20_000
	DefaultDedupeWindow  = 200_000
	DefaultDeadLetterMax = 1_000
	// MinMaxBytes is the smallest quota accepted: below it bbolt's fixed
	// overheads leave too little room for readings.
	MinMaxBytes = 1 << 20
	// MaxDeadLetterPayload is the most payload bytes a dead letter keeps.
	MaxDeadLetterPayload = 64 << 10
	// maxDeadLetterText bounds a dead letter's topic and reason.
	maxDeadLetterText = 1 << 10
	// pendingRequests is how many Append calls may wait for the writer
	// beyond the MaxBatch readings it is working on (backpressure).
	pendingRequests = 256
)

// Options configure a Queue. The zero value is valid: unlimited size,
// Block policy, default batch, dedupe window and dead-letter bound.
type Options struct {
	// MaxBytes is the quota for the database file on disk, free pages
	// included; 0 means unlimited, otherwise at least MinMaxBytes.
	MaxBytes int64
	// Policy applies when the quota is reached (default Block).
	Policy Policy
	// MaxBatch is the most readings per commit (default 20,000). One
	// Append is never split, so a single larger Append commits alone.
	MaxBatch int
	// DedupeWindow is how many natural keys (device, name, time) of stored
	// readings are remembered to drop redeliveries (default 200,000; -1
	// disables). It persists across restarts. With a quota it is capped at
	// MaxBytes/64 so that the remembered keys take at most 1/8 of the file.
	DedupeWindow int
	// DeadLetterMax is how many dead letters are kept (default 1,000; the
	// oldest are evicted). With a quota they also take at most 1/16 of it.
	DeadLetterMax int
	// CommitInterval is the least time between the starts of two
	// commits (default 0: commit as soon as the previous commit ends).
	// Under light load every commit costs an fsync for a handful of
	// readings; a few milliseconds here gathers more readings per fsync,
	// trading that much acknowledgement latency for far less CPU and
	// flash wear. Appends arriving meanwhile join the next commit.
	CommitInterval time.Duration
	// OnCorrupt is what Open does with a damaged file: Refuse (the
	// default: an error wrapping ErrCorrupt) or Quarantine (move it aside,
	// start a new queue).
	OnCorrupt OnCorrupt
	// Logger receives drop events, quota transitions and corruption
	// reports (default: discard).
	Logger *slog.Logger
}

// limits are the numbers derived from Options once, at Open.
type limits struct {
	quota          int64 // 0 = unlimited
	allocSize      int   // bbolt's growth step
	appendLimit    int64 // bbolt MaxSize for transactions that add data
	ackLimit       int64 // bbolt MaxSize for transactions that only delete
	maxAppendBytes int64 // one Append's encoded size limit (ErrTooLarge)
	dedupeWindow   int   // 0 = disabled
	dlMax          int
	dlPayloadMax   int
	dlBytesMax     int64 // 0 = unlimited
	mmapSize       int
}

func (o Options) withDefaults() (Options, limits, error) {
	var l limits
	if o.MaxBytes < 0 || o.MaxBytes > 0 && o.MaxBytes < MinMaxBytes {
		return o, l, fmt.Errorf("queue: MaxBytes %d is below the minimum %d (or use 0 for unlimited)", o.MaxBytes, MinMaxBytes)
	}
	switch o.Policy {
	case "":
		o.Policy = Block
	case Block, DropOldest:
	default:
		return o, l, fmt.Errorf("queue: unknown policy %q (want %q or %q)", o.Policy, Block, DropOldest)
	}
	switch o.OnCorrupt {
	case "":
		o.OnCorrupt = Refuse
	case Refuse, Quarantine:
	default:
		return o, l, fmt.Errorf("queue: unknown OnCorrupt %q (want %q or %q)", o.OnCorrupt, Refuse, Quarantine)
	}
	defaults.Set(&o.MaxBatch, DefaultMaxBatch)
	if o.MaxBatch < 0 {
		return o, l, fmt.Errorf("queue: MaxBatch %d is negative", o.MaxBatch)
	}
	defaults.Set(&o.DedupeWindow, DefaultDedupeWindow)
	if o.DedupeWindow < -1 {
		return o, l, fmt.Errorf("queue: DedupeWindow %d is invalid (want -1 to disable, 0 for the default, or a positive count)", o.DedupeWindow)
	}
	defaults.Set(&o.DeadLetterMax, DefaultDeadLetterMax)
	if o.DeadLetterMax < 0 {
		return o, l, fmt.Errorf("queue: DeadLetterMax %d is negative", o.DeadLetterMax)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}

	l.quota = o.MaxBytes
	l.dlMax = o.DeadLetterMax
	l.dlPayloadMax = MaxDeadLetterPayload
	if o.DedupeWindow > 0 {
		l.dedupeWindow = o.DedupeWindow
	}
	if q := o.MaxBytes; q > 0 {
		l.allocSize = int(min(max(q/32, 32<<10), 16<<20))
		reserve := int64(8*pageSize) + q/256 // room kept for acknowledgements
		l.ackLimit = q
		l.appendLimit = q - reserve
		l.maxAppendBytes = q / 4
		l.dedupeWindow = min(l.dedupeWindow, int(q/64))
		l.dlPayloadMax = int(min(int64(MaxDeadLetterPayload), q/64))
		l.dlBytesMax = q / 16
		l.mmapSize = int(min(q, 256<<20))
	} else {
		l.allocSize = 16 << 20
		l.maxAppendBytes = 1 << 40
	}
	return o, l, nil
}

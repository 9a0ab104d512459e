package kafkabackend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/cloud/ingest"
)

var (
	_ ingest.Backend = (*Backend)(nil)
	_ ingest.Scanner = (*Backend)(nil)
	_ ingest.Settler = (*Backend)(nil)
)

// MaxRecordBytes bounds an entry's key plus value: Kafka's default
// max.message.bytes (1 MiB plus batch overhead).
const MaxRecordBytes = 1 << 20

// ErrInvalidEntry is wrapped by a Result's Err when the entry can never be
// written: an empty key, or key and value over MaxRecordBytes.
var ErrInvalidEntry = errors.New("kafkabackend: invalid entry")

// Put writes entries to topic ("" means Config.Topic) and returns one
// Result per entry, in order (see the package doc for what each means).
// ShardID is the partition number and SequenceNumber the offset. Put's own
// error is set only when nothing was sent (a bad topic name, a closed
// Backend); the Results then all carry it.
func (b *Backend) Put(ctx context.Context, topic string, entries []ingest.Entry) ([]ingest.Result, error) {
	if topic == "" {
		topic = b.cfg.Topic
	}
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	start := time.Now()
	defer func() { b.m.putSeconds.Observe(time.Since(start).Seconds()) }()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.PutTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	settled := make(chan struct{}) // closed SettleTimeout after the deadline
	settle := time.AfterFunc(time.Until(deadline)+b.cfg.SettleTimeout, func() { close(settled) })
	defer settle.Stop()

	results := make([]ingest.Result, len(entries))
	// rounds[r] are the entries that are the r-th of their key.
	var rounds [][]int
	nth := make(map[string]int)
	for i := range entries {
		e := &entries[i]
		if err := checkEntry(e); err != nil {
			results[i].Err = err
			b.m.failed.Inc()
			continue
		}
		r := nth[e.PartitionKey]
		nth[e.PartitionKey] = r + 1
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	blocked := make(map[string]error) // key → the failure its later entries are behind
	for _, round := range rounds {
		flights := make([]*flight, len(round))
		for j, i := range round {
			e := &entries[i]
			if err := blocked[e.PartitionKey]; err != nil {
				results[i].Err = fmt.Errorf("kafkabackend: not sent, an earlier entry for key %q was not written: %w", e.PartitionKey, err)
				b.count(results[i].Err)
				continue
			}
			flights[j] = b.produce(ctx, topic, e)
		}
		for j, i := range round {
			f := flights[j]
			if f == nil {
				continue
			}
			results[i] = b.settle(f, settled)
			b.count(results[i].Err)
			if err := results[i].Err; err != nil {
				blocked[entries[i].PartitionKey] = err
			}
		}
	}
	return results, nil
}

func checkEntry(e *ingest.Entry) error {
	if e.PartitionKey == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidEntry)
	}
	if n := len(e.PartitionKey) + len(e.Data); n > MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes of key and value (at most %d)", ErrInvalidEntry, n, MaxRecordBytes)
	}
	return nil
}

// classify maps the error a record failed with. franz-go's idempotent
// producer fails a record only when no request carrying it can have been
// processed, so every error means "not written", except the sequence
// errors after which the broker's state is unclear.
func classify(err error) error {
	switch {
	case errors.Is(err, kerr.OutOfOrderSequenceNumber), errors.Is(err, kerr.UnknownProducerID),
		errors.Is(err, kerr.InvalidProducerIDMapping), errors.Is(err, kerr.InvalidProducerEpoch):
		return fmt.Errorf("%w: kafkabackend: %w", ingest.ErrOutcomeUnknown, err)
	case errors.Is(err, kgo.ErrMaxBuffered):
		return fmt.Errorf("%w: kafkabackend: producer buffer full (max_buffered_records): %w", ingest.ErrThrottled, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries):
		return fmt.Errorf("%w: kafkabackend: not written by the deadline (brokers unreachable or refusing): %w", ingest.ErrThrottled, err)
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("kafkabackend: closed: %w", err)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if ke.Retriable {
			return fmt.Errorf("%w: kafkabackend: %w", ingest.ErrThrottled, err)
		}
		return fmt.Errorf("kafkabackend: %w", err)
	}
	// Network and metadata errors before anything was sent.
	return fmt.Errorf("%w: kafkabackend: %w", ingest.ErrThrottled, err)
}

func (b *Backend) count(err error) {
	switch {
	case err == nil:
		b.m.written.Inc()
	case errors.Is(err, ingest.ErrOutcomeUnknown):
		b.m.unknown.Inc()
	case errors.Is(err, ingest.ErrThrottled):
		b.m.throttled.Inc()
	default:
		b.m.failed.Inc()
	}
}

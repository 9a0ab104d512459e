package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// The token store is what the ingest verifies bearer tokens with.
var _ ingest.TokenVerifier = (*auth.Store)(nil)

// StoreBackend adapts the embedded shard store to ingest.Backend.
type StoreBackend struct{ Store *shardstore.Store }

var _ ingest.Backend = StoreBackend{}

// Put writes entries with shardstore.Store.Put. A call the store refuses
// as a whole stored nothing (its documented contract), so each entry gets
// that error (not written) except for a failed commit, whose outcome is
// unknown.
func (b StoreBackend) Put(ctx context.Context, stream string, entries []ingest.Entry) ([]ingest.Result, error) {
	in := make([]shardstore.PutEntry, len(entries))
	for i, e := range entries {
		in[i] = shardstore.PutEntry{PartitionKey: e.PartitionKey, Data: e.Data}
	}
	res, err := b.Store.Put(ctx, stream, in)
	out := make([]ingest.Result, len(entries))
	if err != nil {
		known := errors.Is(err, shardstore.ErrInvalidArgument) || errors.Is(err, shardstore.ErrStreamNotFound) ||
			errors.Is(err, shardstore.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		if !known {
			err = fmt.Errorf("%w: %w", ingest.ErrOutcomeUnknown, err)
		}
		for i := range out {
			out[i].Err = err
		}
		return out, nil
	}
	if len(res) != len(entries) {
		return nil, fmt.Errorf("shardstore: %d results for %d entries", len(res), len(entries))
	}
	for i, r := range res {
		out[i] = ingest.Result{ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, Err: r.Err}
		if r.Err != nil && errors.Is(r.Err, shardstore.ErrThrottled) {
			out[i].Err = fmt.Errorf("%w: %w", ingest.ErrThrottled, r.Err)
		}
	}
	return out, nil
}

// KinesisBackend adapts cloud/kinesisbackend to ingest.Backend. Each call
// is bounded by Timeout (the ingest's throttle wait): kinesisbackend paces
// and retries throttled entries itself until then, and reports what it
// could not write as throttled.
type KinesisBackend struct {
	Backend *kinesisbackend.Backend
	Timeout time.Duration
}

var _ ingest.Backend = KinesisBackend{}

// Put writes entries with kinesisbackend.Backend.Put.
func (b KinesisBackend) Put(ctx context.Context, stream string, entries []ingest.Entry) ([]ingest.Result, error) {
	if b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	in := make([]kinesisbackend.Entry, len(entries))
	for i, e := range entries {
		in[i] = kinesisbackend.Entry{PartitionKey: e.PartitionKey, Data: e.Data}
	}
	res, err := b.Backend.Put(ctx, stream, in)
	out := make([]ingest.Result, len(entries))
	if len(res) != len(entries) {
		if err == nil {
			err = fmt.Errorf("kinesisbackend: %d results for %d entries", len(res), len(entries))
		}
		// Nothing was sent (an invalid stream name).
		for i := range out {
			out[i].Err = err
		}
		return out, nil
	}
	// With Put's own error (ErrOutcomeUnknown), an entry that is not known
	// to be written may be in the stream.
	unknown := err != nil
	for i, r := range res {
		out[i] = ingest.Result{ShardID: r.ShardID, SequenceNumber: r.SequenceNumber}
		switch e := r.Err; {
		case e == nil:
		case errors.Is(e, kinesisbackend.ErrInvalidEntry):
			out[i].Err = e
		case unknown:
			out[i].Err = fmt.Errorf("%w: %w", ingest.ErrOutcomeUnknown, errors.Join(e, err))
		case errors.Is(e, kinesisbackend.ErrThrottled):
			out[i].Err = fmt.Errorf("%w: %w", ingest.ErrThrottled, e)
		default:
			out[i].Err = e
		}
	}
	return out, nil
}

var _ ingest.Scanner = StoreBackend{}

// Scan reads back every shard's records that arrived in [from, to), for
// the ingest's recovery after a crash (ingest.Scanner).
func (b StoreBackend) Scan(ctx context.Context, stream string, from, to time.Time, fn func([]byte) error) error {
	info, err := b.Store.DescribeStream(stream)
	if err != nil {
		return err
	}
	for _, sh := range info.Shards {
		if !sh.Closed.IsZero() && sh.Closed.Before(from) {
			continue
		}
		pos, err := b.Store.Seek(stream, sh.ShardID, shardstore.Start{Type: shardstore.AtTimestamp, Timestamp: from})
		if err != nil {
			return fmt.Errorf("scan %s: %w", sh.ShardID, err)
		}
		for {
			res, err := b.Store.Read(ctx, pos, 1000)
			if errors.Is(err, shardstore.ErrThrottled) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("scan %s: %w", sh.ShardID, err)
			}
			past := false
			for _, r := range res.Records {
				if !r.ApproximateArrivalTimestamp.Before(to) {
					past = true
					break
				}
				if err := fn(r.Data); err != nil {
					return err
				}
			}
			if past || res.EndOfShard || len(res.Records) == 0 {
				break
			}
			pos = res.Next
		}
	}
	return nil
}

package verify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Source is where a verification reads a stream from: Kinesis (a
// KinesisAPI client) or Kafka (KafkaSource).
type Source interface {
	// ReadStream reads o.Stream from its start (or o.From), every record
	// of a shard or partition in order, until caught up and quiet for
	// o.Settle or ctx ends (a deadline is a normal end: CaughtUp false).
	ReadStream(ctx context.Context, o ReadOptions, handle func(*Record)) (ReadStats, error)
}

// KinesisSource reads through the Kinesis API.
type KinesisSource struct{ API KinesisAPI }

// ReadStream is ReadStream over s.API.
func (s KinesisSource) ReadStream(ctx context.Context, o ReadOptions, handle func(*Record)) (ReadStats, error) {
	return ReadStream(ctx, s.API, o, handle)
}

// KafkaSource reads a Kafka topic (ReadOptions.Stream) partition by
// partition, outside any consumer group (it commits nothing): Record.Shard
// is the partition in decimal, Sequence the offset, Arrival the record's
// timestamp.
type KafkaSource struct {
	// Opts reach the cluster: kgo.SeedBrokers, and TLS or SASL as needed.
	Opts []kgo.Opt
}

// ReadStream reads every partition of o.Stream from its start (or from
// the first offset at or after o.From).
func (s KafkaSource) ReadStream(ctx context.Context, o ReadOptions, handle func(*Record)) (st ReadStats, err error) {
	o = o.withDefaults()
	st.Stream = o.Stream
	begin := time.Now()
	defer func() { st.Seconds = time.Since(begin).Seconds() }()
	start := kgo.NewOffset().AtStart()
	if !o.From.IsZero() {
		start = kgo.NewOffset().AfterMilli(o.From.UnixMilli())
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), s.Opts...),
		kgo.ConsumeTopics(o.Stream), kgo.ConsumeResetOffset(start), kgo.FetchMaxWait(o.Poll))...)
	if err != nil {
		return st, fmt.Errorf("verify: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	next := map[int32]int64{} // partition → offset after the last record read
	lastRecord := begin
	nextProgress := begin.Add(o.ProgressEvery)
	for {
		if ctx.Err() != nil {
			return st, ctxEnd(ctx)
		}
		pctx, cancel := context.WithTimeout(ctx, o.Poll)
		fs := cl.PollRecords(pctx, int(o.Limit))
		cancel()
		st.Calls++
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = errors.Join(ferr, fmt.Errorf("verify: fetch %s/%d: %w", t, p, err))
			}
		})
		if ferr != nil && ctx.Err() == nil {
			return st, ferr
		}
		now := time.Now()
		fs.EachRecord(func(kr *kgo.Record) {
			r := Record{Shard: strconv.Itoa(int(kr.Partition)), Sequence: strconv.FormatInt(kr.Offset, 10),
				PartitionKey: string(kr.Key), Arrival: kr.Timestamp, Read: now, Data: kr.Value}
			handle(&r)
			st.Records++
			st.Bytes += uint64(len(kr.Value))
			next[kr.Partition] = kr.Offset + 1
			lastRecord = now
		})
		if o.Progress != nil && !now.Before(nextProgress) {
			o.Progress(st)
			nextProgress = now.Add(o.ProgressEvery)
		}
		if fs.NumRecords() > 0 || now.Sub(lastRecord) < o.Settle {
			continue
		}
		// Quiet for the settle period: caught up if every partition was
		// read to its current end (or holds nothing any more).
		caughtUp, n, err := caughtUp(ctx, adm, o.Stream, o.From, next)
		if err != nil {
			if ctx.Err() != nil {
				return st, ctxEnd(ctx)
			}
			return st, err
		}
		st.Shards = n
		if caughtUp {
			st.CaughtUp = true
			return st, nil
		}
	}
}

// caughtUp reports whether every partition of topic was read up to its
// end (next: the offset after the last record read; a partition with
// nothing read counts from its log start, or its first offset at or after
// from), and how many partitions it has.
func caughtUp(ctx context.Context, adm *kadm.Client, topic string, from time.Time, next map[int32]int64) (bool, int, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	var starts kadm.ListedOffsets
	if err == nil {
		if from.IsZero() {
			starts, err = adm.ListStartOffsets(ctx, topic)
		} else {
			starts, err = adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), topic)
		}
		if err == nil {
			err = starts.Error()
		}
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return false, 0, fmt.Errorf("verify: kafka topic %q does not exist", topic)
	}
	if err != nil {
		return false, 0, fmt.Errorf("verify: list offsets of %s: %w", topic, err)
	}
	done, n := true, 0
	ends.Each(func(end kadm.ListedOffset) {
		n++
		at := next[end.Partition]
		if s, ok := starts.Lookup(topic, end.Partition); ok {
			if s.Offset < 0 { // no record at or after from
				s.Offset = end.Offset
			}
			at = max(at, s.Offset) // nothing to read before it
		}
		if at < end.Offset {
			done = false
		}
	})
	return done, n, nil
}

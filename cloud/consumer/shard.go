package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/tributary-iot/tributary/internal/backoff"
)

// start is where a shard's first iterator points.
type start struct {
	typ types.ShardIteratorType
	seq string // AFTER_SEQUENCE_NUMBER
}

// readShard reads one shard until its end, ctx's end or a fatal error,
// and reports the first and the last to the coordinator.
func (r *run) readShard(ctx context.Context, shard string, st start) {
	defer r.wg.Done()
	c := r.c
	c.m.active.Inc()
	c.mu.Lock()
	c.shardStats[shard] = &ShardStats{Shard: shard, Checkpoint: st.seq}
	c.mu.Unlock()
	log := c.log.With("shard", shard)
	log.Info("reading shard", "from", string(st.typ), "seq", st.seq)

	s := &shardReader{run: r, shard: shard, start: st, last: st.seq, log: log}
	fin, err := s.read(ctx)

	c.m.active.Dec()
	c.mu.Lock()
	delete(c.shardStats, shard)
	c.mu.Unlock()
	c.m.lag.DeleteLabelValues(shard)
	c.m.iterAge.DeleteLabelValues(shard)
	if !fin && err == nil {
		return // ctx ended
	}
	select {
	case r.events <- event{shard: shard, finished: fin, err: err}:
	case <-ctx.Done():
	}
}

type shardReader struct {
	*run
	shard string
	start start
	last  string // last sequence number processed and checkpointed
	log   *slog.Logger
}

// read returns finished=true when the shard's end has been processed and
// checkpointed (or the shard no longer exists), an error only when a
// checkpoint cannot be written.
func (s *shardReader) read(ctx context.Context) (finished bool, err error) {
	c := s.c
	bo := backoff.Backoff{Initial: max(c.cfg.PollInterval, time.Millisecond), Max: c.cfg.MaxBackoff}
	idle := c.cfg.PollInterval
	iter := ""
	for ctx.Err() == nil {
		if iter == "" {
			in := &kinesis.GetShardIteratorInput{StreamName: aws.String(c.cfg.Stream), ShardId: aws.String(s.shard)}
			if s.last != "" {
				in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
				in.StartingSequenceNumber = aws.String(s.last)
			} else {
				in.ShardIteratorType = s.start.typ
			}
			out, err := c.client.GetShardIterator(ctx, in)
			if err == nil && out.ShardIterator == nil {
				err = errors.New("GetShardIterator returned no iterator")
			}
			if err != nil {
				if gone := s.failed(ctx, "GetShardIterator", err, &bo); gone {
					return true, nil
				}
				continue
			}
			iter = *out.ShardIterator
		}
		out, err := c.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(iter), Limit: aws.Int32(int32(c.cfg.Limit))})
		if err != nil {
			if code := errorCode(err); code == "ExpiredIteratorException" || code == "InvalidArgumentException" {
				// Re-acquire from the checkpoint. Other failures keep
				// the iterator: it stays valid for five minutes.
				iter = ""
			}
			if gone := s.failed(ctx, "GetRecords", err, &bo); gone {
				return true, nil
			}
			continue
		}
		bo.Reset()
		ended := out.NextShardIterator == nil
		if len(out.Records) > 0 || ended {
			if ok, err := s.process(ctx, out, ended); !ok || err != nil {
				return false, err
			}
		}
		if ended {
			c.n.finished.Add(1)
			c.m.finished.Inc()
			s.log.Info("shard finished", "checkpoint", s.last)
			return true, nil
		}
		iter = *out.NextShardIterator
		pause := c.cfg.PollInterval
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			pause, idle = idle, min(2*idle, c.cfg.MaxPollInterval)
		} else {
			idle = c.cfg.PollInterval
		}
		if !backoff.Sleep(ctx, pause) {
			break
		}
	}
	return false, nil
}

// failed accounts for a failed call and sleeps the backoff; gone reports
// that the shard (or stream) no longer exists.
func (s *shardReader) failed(ctx context.Context, op string, err error, bo *backoff.Backoff) (gone bool) {
	c := s.c
	if ctx.Err() != nil {
		return false
	}
	switch code := errorCode(err); code {
	case "ProvisionedThroughputExceededException", "KMSThrottlingException", "LimitExceededException":
		c.n.throttles.Add(1)
		c.m.throttles.Inc()
		d := bo.Next()
		s.log.Debug("throttled; backing off", "op", op, "in", d)
		backoff.Sleep(ctx, d)
	case "ExpiredIteratorException":
		c.n.expired.Add(1)
		c.m.expired.Inc()
		s.log.Info("iterator expired; re-acquiring from the checkpoint", "checkpoint", s.last)
	case "ResourceNotFoundException":
		s.log.Warn("shard not found (expired, or the stream was deleted): counted as finished", "op", op, "err", err)
		return true
	default:
		c.n.callErrors.Add(1)
		c.m.callErr.Inc()
		d := bo.Next()
		s.log.Warn("Kinesis call failed; retrying", "op", op, "err", err, "in", d)
		backoff.Sleep(ctx, d)
	}
	return false
}

// process decodes a GetRecords result, hands it to the handler until it
// succeeds, then checkpoints it (as ended if it is the shard's end). ok is
// false when ctx ended first.
func (s *shardReader) process(ctx context.Context, out *kinesis.GetRecordsOutput, ended bool) (ok bool, err error) {
	c := s.c
	now := time.Now()
	recs := make([]Record, len(out.Records))
	for i, kr := range out.Records {
		recs[i] = Record{
			SequenceNumber: aws.ToString(kr.SequenceNumber),
			PartitionKey:   aws.ToString(kr.PartitionKey),
			Arrival:        aws.ToTime(kr.ApproximateArrivalTimestamp),
			Data:           kr.Data,
		}
	}
	b := c.decode(s.log, s.shard, recs)
	b.MillisBehindLatest = aws.ToInt64(out.MillisBehindLatest)
	var newest time.Time
	if n := len(recs); n > 0 {
		newest = recs[n-1].Arrival
	}
	s.observe(b.MillisBehindLatest, newest, now)
	if !c.deliver(ctx, s.log, b) {
		return false, nil // not committed: delivered again after a restart
	}
	seq := s.last
	if n := len(out.Records); n > 0 {
		seq = aws.ToString(out.Records[n-1].SequenceNumber)
	}
	// Written even when ctx has just ended: the handler did succeed.
	if err := s.cps.Set(c.cfg.Application, c.cfg.Stream, s.shard, Checkpoint{SequenceNumber: seq, Ended: ended, Updated: time.Now().UTC()}); err != nil {
		return false, err
	}
	s.last = seq
	c.mu.Lock()
	if st := c.shardStats[s.shard]; st != nil {
		st.Checkpoint = seq
	}
	c.mu.Unlock()
	c.committed(1, len(b.Records), len(b.Readings))
	return true, nil
}

// observe records the shard's lag and iterator age.
func (s *shardReader) observe(behindMs int64, newest, now time.Time) {
	c := s.c
	age := time.Duration(behindMs) * time.Millisecond
	if !newest.IsZero() {
		age = max(now.Sub(newest), 0)
	}
	c.observe(s.shard, behindMs, age)
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

package kafkabackend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Scan calls fn with the value of every record of topic ("" means
// Config.Topic) whose timestamp is in [from, to), partition by partition
// (ingest.Scanner). It reads each partition from the first offset at or
// after from (ListOffsets by timestamp) to the end offset it listed at its
// start, so it ends even while producers write.
func (b *Backend) Scan(ctx context.Context, topic string, from, to time.Time, fn func(data []byte) error) error {
	if topic == "" {
		topic = b.cfg.Topic
	}
	if err := checkTopic(topic); err != nil {
		return err
	}
	adm := kadm.NewClient(b.client)
	starts, err := adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("kafkabackend: scan %s: listing offsets at %v: %w", topic, from, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("kafkabackend: scan %s: listing end offsets: %w", topic, err)
	}
	todo := map[int32]kgo.Offset{}
	left := map[int32]int64{} // partition → end offset
	for p, s := range starts[topic] {
		e, ok := ends.Lookup(topic, p)
		if !ok || s.Offset < 0 || s.Offset >= e.Offset {
			continue
		}
		todo[p] = kgo.NewOffset().At(s.Offset)
		left[p] = e.Offset
	}
	if len(todo) == 0 {
		return nil
	}
	opts := append(append([]kgo.Opt(nil), b.base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: todo}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafkabackend: scan: %w", err)
	}
	defer cl.Close()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("kafkabackend: scan %s: %d partitions not read to the end: %w", topic, len(left), err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, err))
			}
		})
		if ferr != nil {
			b.log.Warn("scan: fetch error, retrying", "topic", topic, "err", ferr)
		}
		var cbErr error
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if cbErr != nil || !ok || r.Offset >= end {
				return
			}
			if !r.Timestamp.Before(from) && r.Timestamp.Before(to) {
				cbErr = fn(r.Value)
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
		if cbErr != nil {
			return cbErr
		}
	}
	return nil
}

package kafkabackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrPartitionMismatch is wrapped by EnsureTopics' error when a topic
// exists with another partition count than Config.Partitions. The topic is
// left as it is: adding partitions moves keys to other partitions and
// breaks per-device order.
var ErrPartitionMismatch = errors.New("kafkabackend: topic has another partition count than configured")

// EnsureTopics creates the topics that are missing, with
// Config.Partitions and Config.ReplicationFactor. Existing topics are not
// changed; one whose partition count differs from Config.Partitions makes
// the error wrap ErrPartitionMismatch (and only that: the caller may go on,
// the topic works as it is).
func (b *Backend) EnsureTopics(ctx context.Context, topics ...string) error {
	for _, t := range topics {
		if err := checkTopic(t); err != nil {
			return err
		}
	}
	adm := kadm.NewClient(b.client)
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kafkabackend: listing topics %v: %w", topics, err)
	}
	var missing []string
	var mismatch []error
	for _, t := range topics {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
		case d.Err != nil:
			return fmt.Errorf("kafkabackend: describing topic %s: %w", t, d.Err)
		case int32(len(d.Partitions)) != b.cfg.Partitions:
			mismatch = append(mismatch, fmt.Errorf("%w: %s has %d partitions, partitions is %d: leaving it as it is (set partitions to %d to silence this; changing a topic's partition count moves devices to other partitions)",
				ErrPartitionMismatch, t, len(d.Partitions), b.cfg.Partitions, len(d.Partitions)))
		}
	}
	if len(missing) > 0 {
		res, err := adm.CreateTopics(ctx, b.cfg.Partitions, b.cfg.ReplicationFactor, nil, missing...)
		if err != nil {
			return fmt.Errorf("kafkabackend: creating topics %v: %w", missing, err)
		}
		for _, r := range res.Sorted() {
			switch {
			case r.Err == nil:
				b.log.Info("topic created", "topic", r.Topic, "partitions", b.cfg.Partitions, "replication_factor", b.cfg.ReplicationFactor)
			case errors.Is(r.Err, kerr.TopicAlreadyExists): // created meanwhile
			default:
				return fmt.Errorf("kafkabackend: creating topic %s (%d partitions, replication factor %d): %w %s",
					r.Topic, b.cfg.Partitions, b.cfg.ReplicationFactor, r.Err, r.ErrMessage)
			}
		}
	}
	return errors.Join(mismatch...)
}

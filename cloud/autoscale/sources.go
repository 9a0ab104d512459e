package autoscale

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// StoreSource measures a stream of the embedded store
// (shardstore.Store.ShardMetrics: every write, read and throttle).
type StoreSource struct {
	Store  *shardstore.Store
	Stream string
}

var _ Source = StoreSource{}

// Snapshot returns the open shards' counters.
func (s StoreSource) Snapshot(context.Context) (Snapshot, error) {
	ms, err := s.Store.ShardMetrics(s.Stream)
	if err != nil {
		return Snapshot{}, err
	}
	var out Snapshot
	for _, m := range ms {
		if !m.Open {
			continue
		}
		out.Shards = append(out.Shards, ShardCounters{
			ShardID: m.ShardID, StartingHashKey: m.StartingHashKey.String(), EndingHashKey: m.EndingHashKey.String(),
			IncomingBytes: m.IncomingBytes, IncomingRecords: m.IncomingRecords,
			WriteThrottled: m.WriteProvisionedThroughputExceeded, ReadThrottled: m.ReadProvisionedThroughputExceeded,
			OutgoingBytes: m.OutgoingBytes,
		})
	}
	return out, nil
}

// BackendSource measures a stream on Amazon Kinesis from what this
// process's writes saw (kinesisbackend.Backend.ShardMetrics): incoming
// bytes, records and write throttles per open shard. The read side is
// only in CloudWatch, which is not consulted; a Source reading
// CloudWatch's GetMetricData can take its place.
type BackendSource struct {
	Backend *kinesisbackend.Backend
	Stream  string
}

var _ Source = BackendSource{}

// Snapshot returns the open shards' counters.
func (s BackendSource) Snapshot(ctx context.Context) (Snapshot, error) {
	ms, err := s.Backend.ShardMetrics(ctx, s.Stream)
	if err != nil {
		return Snapshot{}, err
	}
	out := Snapshot{Shards: make([]ShardCounters, len(ms))}
	for i, m := range ms {
		out.Shards[i] = ShardCounters{ShardID: m.ShardID, StartingHashKey: m.StartingHashKey, EndingHashKey: m.EndingHashKey,
			IncomingBytes: m.IncomingBytes, IncomingRecords: m.IncomingRecords, WriteThrottled: m.WriteProvisionedThroughputExceeded}
	}
	return out, nil
}

// KinesisAPI is the part of the Kinesis client a KinesisResharder calls
// (*kinesis.Client has it).
type KinesisAPI interface {
	UpdateShardCount(ctx context.Context, in *kinesis.UpdateShardCountInput, optFns ...func(*kinesis.Options)) (*kinesis.UpdateShardCountOutput, error)
	SplitShard(ctx context.Context, in *kinesis.SplitShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SplitShardOutput, error)
}

// KinesisResharder reshards through the Kinesis API: Amazon Kinesis, or
// the embedded store's own Kinesis API.
type KinesisResharder struct {
	Client KinesisAPI
	Stream string
}

var _ Resharder = KinesisResharder{}

// UpdateShardCount asks for target shards (UNIFORM_SCALING).
func (r KinesisResharder) UpdateShardCount(ctx context.Context, target int) error {
	_, err := r.Client.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
		StreamName: aws.String(r.Stream), TargetShardCount: aws.Int32(int32(target)), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		return fmt.Errorf("autoscale: UpdateShardCount %s to %d: %w", r.Stream, target, err)
	}
	return nil
}

// SplitShard splits shardID at newStartingHashKey.
func (r KinesisResharder) SplitShard(ctx context.Context, shardID, newStartingHashKey string) error {
	_, err := r.Client.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(r.Stream), ShardToSplit: aws.String(shardID), NewStartingHashKey: aws.String(newStartingHashKey)})
	if err != nil {
		return fmt.Errorf("autoscale: SplitShard %s of %s: %w", shardID, r.Stream, err)
	}
	return nil
}

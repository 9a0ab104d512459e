package consumer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/internal/backoff"
)

// KinesisAPI is the part of the Kinesis API a consumer calls;
// *kinesis.Client satisfies it.
type KinesisAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Errors.
var (
	ErrRunning   = errors.New("consumer: Run is already running")
	ErrNoHandler = errors.New("consumer: a handler is required")
)

// Consumer reads every shard of a stream and hands batches to a Handler.
type Consumer struct {
	core
	client  KinesisAPI
	running atomic.Bool
}

var _ Runner = (*Consumer)(nil)

// New checks cfg and builds a consumer; Run starts it.
func New(client KinesisAPI, cfg Config, handler Handler, opts Options) (*Consumer, error) {
	if client == nil {
		return nil, errors.New("consumer: a Kinesis client is required")
	}
	if handler == nil {
		return nil, ErrNoHandler
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CheckpointPath == "" && opts.Checkpoints == nil {
		return nil, errors.New("consumer: checkpoint_path is required (or pass Options.Checkpoints)")
	}
	c := &Consumer{client: client}
	if err := c.core.init(cfg, handler, opts, "consumer"); err != nil {
		return nil, err
	}
	return c, nil
}

// Run reads the stream until ctx is cancelled (then it returns nil, after
// every shard goroutine has stopped) or a checkpoint cannot be written.
// Failed Kinesis calls are logged and retried, never fatal. Run may be
// called again after it returned, not concurrently.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	cps := c.opts.Checkpoints
	if cps == nil {
		var err error
		if cps, err = OpenCheckpoints(c.cfg.CheckpointPath); err != nil {
			return err
		}
		defer cps.Close()
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &run{c: c, cps: cps, state: make(map[string]shardState), events: make(chan event)}
	err := r.loop(ctx)
	cancel()
	r.wg.Wait()
	c.resetShards()
	return err
}

type shardState uint8

const (
	unknown shardState = iota
	reading
	finished
)

// event is what a shard goroutine reports when it stops before ctx ends.
type event struct {
	shard    string
	finished bool  // end reached (or shard expired)
	err      error // fatal
}

// run is the state of one Run: only the coordinator goroutine (loop)
// touches state.
type run struct {
	c      *Consumer
	cps    *Checkpoints
	state  map[string]shardState
	events chan event
	wg     sync.WaitGroup
}

func (r *run) loop(ctx context.Context) error {
	c := r.c
	list := time.NewTimer(0)
	defer list.Stop()
	bo := backoff.Backoff{Initial: max(c.cfg.PollInterval, time.Millisecond), Max: c.cfg.MaxBackoff}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-r.events:
			if ev.err != nil {
				return ev.err
			}
			if ev.finished {
				r.state[ev.shard] = finished
				list.Reset(0) // its children may be ready
			} else {
				delete(r.state, ev.shard)
			}
		case <-list.C:
			shards, err := r.listShards(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				c.n.callErrors.Add(1)
				c.m.callErr.Inc()
				d := bo.Next()
				c.log.Warn("list shards failed; retrying", "err", err, "in", d)
				list.Reset(d)
				continue
			}
			bo.Reset()
			if err := r.reconcile(ctx, shards); err != nil {
				return err
			}
			list.Reset(c.cfg.ListInterval)
		}
	}
}

func (r *run) listShards(ctx context.Context) ([]types.Shard, error) {
	in := &kinesis.ListShardsInput{StreamName: aws.String(r.c.cfg.Stream)}
	var shards []types.Shard
	for {
		out, err := r.c.client.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil || *out.NextToken == "" {
			return shards, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// reconcile starts every listed shard that is not finished and whose
// parents are.
func (r *run) reconcile(ctx context.Context, shards []types.Shard) error {
	c := r.c
	listed := make(map[string]*types.Shard, len(shards))
	for i := range shards {
		if shards[i].ShardId != nil {
			listed[*shards[i].ShardId] = &shards[i]
		}
	}
	for id, st := range r.state {
		if _, ok := listed[id]; !ok && st != reading {
			delete(r.state, id) // expired: it counts as finished from now on
		}
	}
	cps, err := r.cps.All(c.cfg.Application, c.cfg.Stream)
	if err != nil {
		return err
	}
	done := func(id string) bool {
		if id == "" {
			return true
		}
		if _, ok := listed[id]; !ok {
			return true // expired (or never existed)
		}
		return r.state[id] == finished
	}
	for changed := true; changed; {
		changed = false
		for _, s := range shards {
			id := aws.ToString(s.ShardId)
			if id == "" || r.state[id] != unknown {
				continue
			}
			cp, has := cps[id]
			if has && cp.Ended {
				r.state[id] = finished
				changed = true
				continue
			}
			parent, adjacent := aws.ToString(s.ParentShardId), aws.ToString(s.AdjacentParentShardId)
			if !done(parent) || !done(adjacent) {
				continue
			}
			var st start
			switch {
			case has && cp.SequenceNumber != "":
				st = start{typ: types.ShardIteratorTypeAfterSequenceNumber, seq: cp.SequenceNumber}
			case hasKey(cps, parent) || hasKey(cps, adjacent):
				// This application read a parent: read the child whole.
				st = start{typ: types.ShardIteratorTypeTrimHorizon}
			case c.cfg.StartAt == Latest && s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil:
				// LATEST of a closed shard is its end: nothing to read.
				c.log.Info("closed shard skipped (start_at LATEST)", "shard", id)
				r.state[id] = finished
				changed = true
				continue
			default:
				st = start{typ: types.ShardIteratorType(c.cfg.StartAt)}
			}
			r.state[id] = reading
			r.wg.Add(1)
			go r.readShard(ctx, id, st)
		}
	}
	return nil
}

func hasKey(m map[string]Checkpoint, k string) bool {
	if k == "" {
		return false
	}
	_, ok := m[k]
	return ok
}

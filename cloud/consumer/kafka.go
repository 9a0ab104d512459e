package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-iot/tributary/internal/backoff"
	"github.com/tributary-iot/tributary/internal/loglimit"
)

// KafkaCommitTimeout bounds one offset commit (after a poll's batches
// were handled, on a revoke, at the end of Run).
const KafkaCommitTimeout = 10 * time.Second

// KafkaConsumer reads a Kafka topic (Config.Stream) as a member of the
// consumer group Config.Application and hands each partition's records to
// the same Handler a Kinesis Consumer calls: Batch.Shard is the partition
// number in decimal, Record.SequenceNumber the offset, Record.Arrival the
// record's timestamp.
type KafkaConsumer struct {
	core
	conn     []kgo.Opt
	running  atomic.Bool
	fetchLog loglimit.Limiter
}

var _ Runner = (*KafkaConsumer)(nil)

// NewKafka checks cfg and builds a Kafka consumer; Run starts it. conn
// says how to reach the cluster (kgo.SeedBrokers, TLS, SASL, and
// optionally group timings such as kgo.SessionTimeout); the consumer adds
// the group, the topic and its commit discipline. Config.CheckpointPath
// and Options.Checkpoints are not used: offsets are committed to the
// group. Config.StartAt applies to partitions the group has no offset
// for; Config.Limit is the most records one poll hands over (across
// partitions).
func NewKafka(conn []kgo.Opt, cfg Config, handler Handler, opts Options) (*KafkaConsumer, error) {
	if len(conn) == 0 {
		return nil, errors.New("consumer: Kafka client options are required (at least kgo.SeedBrokers with the brokers)")
	}
	if handler == nil {
		return nil, ErrNoHandler
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(conn...) // checks the options; connects to nothing yet
	if err != nil {
		return nil, fmt.Errorf("consumer: kafka client: %w", err)
	}
	cl.Close()
	c := &KafkaConsumer{conn: slices.Clip(conn), fetchLog: loglimit.Limiter{Every: 10 * time.Second}}
	if err := c.core.init(cfg, handler, opts, "kafka-consumer"); err != nil {
		return nil, err
	}
	return c, nil
}

// Run joins the group and reads its partitions until ctx is cancelled
// (then it commits what was handled, leaves the group and returns nil).
// Failed fetches and commits are logged and retried, never fatal. Run may
// be called again after it returned, not concurrently.
func (c *KafkaConsumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	r := &kafkaRun{c: c, topic: c.cfg.Stream, pending: map[int32]pendingCommit{}}
	start := kgo.NewOffset().AtStart()
	if c.cfg.StartAt == Latest {
		start = kgo.NewOffset().AtEnd()
	}
	opts := append(slices.Clone(c.conn),
		kgo.ConsumerGroup(c.cfg.Application), kgo.ConsumeTopics(c.cfg.Stream),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(), kgo.ConsumeResetOffset(start),
		kgo.OnPartitionsAssigned(r.assigned), kgo.OnPartitionsRevoked(r.revoked), kgo.OnPartitionsLost(r.lost))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("consumer: kafka client: %w", err)
	}
	r.cl = cl
	c.log.Info("joining consumer group")
	r.loop(ctx)
	r.commit(ctx) // what was handled before ctx ended
	cl.CloseAllowingRebalance()
	c.resetShards()
	return nil
}

// pendingCommit is what was handled on a partition and not committed yet.
type pendingCommit struct {
	next                       kgo.EpochOffset // the offset after the last record handled
	batches, records, readings int
}

// kafkaRun is the state of one Run. With BlockRebalanceOnPoll, the group
// callbacks (assigned, revoked, lost) never run between a poll and its
// AllowRebalance: a partition is never taken away while its records are
// being handled.
type kafkaRun struct {
	c     *KafkaConsumer
	cl    *kgo.Client
	topic string

	mu      sync.Mutex
	pending map[int32]pendingCommit
}

func (r *kafkaRun) loop(ctx context.Context) {
	c := r.c
	bo := backoff.Backoff{Initial: max(c.cfg.PollInterval, time.Millisecond), Max: c.cfg.MaxBackoff}
	for {
		fs := r.cl.PollRecords(ctx, c.cfg.Limit)
		if ctx.Err() != nil || fs.IsClientClosed() {
			r.cl.AllowRebalance() // records polled now are not handled, so not committed
			return
		}
		failed := false
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			failed = true
			c.n.callErrors.Add(1)
			c.m.callErr.Inc()
			if ok, n := c.fetchLog.Allow(); ok {
				c.log.Warn("kafka fetch failed; retrying", "topic", topic, "partition", p, "err", err, "suppressed", n)
			}
		})
		r.handle(ctx, fs)
		r.commit(ctx)
		r.cl.AllowRebalance()
		if failed && fs.NumRecords() == 0 {
			backoff.Sleep(ctx, bo.Next())
		} else {
			bo.Reset()
		}
	}
}

// handle delivers each partition's records of one poll, partitions
// concurrently, and notes what was handled for the next commit.
func (r *kafkaRun) handle(ctx context.Context, fs kgo.Fetches) {
	var wg sync.WaitGroup
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Topic != r.topic || len(p.Records) == 0 {
			return
		}
		wg.Go(func() { r.deliver(ctx, p.Partition, p.HighWatermark, p.Records) })
	})
	wg.Wait()
}

func (r *kafkaRun) deliver(ctx context.Context, partition int32, hw int64, krs []*kgo.Record) {
	c := r.c
	shard := strconv.Itoa(int(partition))
	log := c.log.With("partition", partition)
	recs := make([]Record, len(krs))
	for i, kr := range krs {
		recs[i] = Record{SequenceNumber: strconv.FormatInt(kr.Offset, 10), PartitionKey: string(kr.Key), Arrival: kr.Timestamp, Data: kr.Value}
	}
	b := c.decode(log, shard, recs)
	last := krs[len(krs)-1]
	lag := max(hw-(last.Offset+1), 0)
	age := max(time.Since(last.Timestamp), 0)
	if lag > 0 {
		b.MillisBehindLatest = age.Milliseconds()
	}
	c.observe(shard, b.MillisBehindLatest, age)
	c.m.lagRecords.WithLabelValues(shard).Set(float64(lag))
	c.mu.Lock()
	if st := c.shardStats[shard]; st != nil {
		st.Lag = lag
	}
	c.mu.Unlock()
	if !c.deliver(ctx, log, b) {
		return // not committed: delivered again to whoever reads the partition next
	}
	r.mu.Lock()
	pc := r.pending[partition]
	pc.next = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
	pc.batches++
	pc.records += len(b.Records)
	pc.readings += len(b.Readings)
	r.pending[partition] = pc
	r.mu.Unlock()
}

// commit commits every partition's handled offset, synchronously. A
// partition whose commit fails stays pending (the next commit retries it);
// its records are delivered again if the partition moves first.
func (r *kafkaRun) commit(ctx context.Context) {
	c := r.c
	r.mu.Lock()
	snap := maps.Clone(r.pending)
	r.mu.Unlock()
	if len(snap) == 0 {
		return
	}
	offsets := make(map[int32]kgo.EpochOffset, len(snap))
	for p, pc := range snap {
		offsets[p] = pc.next
	}
	// Committed even when ctx has just ended: the handler did succeed.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), KafkaCommitTimeout)
	defer cancel()
	failed := map[int32]error{}
	r.cl.CommitOffsetsSync(cctx, map[string]map[int32]kgo.EpochOffset{r.topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				for p := range offsets {
					failed[p] = err
				}
				return
			}
			answered := map[int32]bool{}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					answered[p.Partition] = true
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
						failed[p.Partition] = e
					}
				}
			}
			for p := range offsets {
				if !answered[p] {
					failed[p] = errors.New("no answer for the partition")
				}
			}
		})
	for p, pc := range snap {
		if err := failed[p]; err != nil {
			c.n.callErrors.Add(1)
			c.m.callErr.Inc()
			c.log.Warn("offset commit failed; retried with the next one", "partition", p, "offset", pc.next.Offset, "err", err)
			continue
		}
		r.mu.Lock()
		if cur := r.pending[p]; cur.next == pc.next {
			delete(r.pending, p)
		} else { // handled more meanwhile (not with BlockRebalanceOnPoll; kept safe)
			cur.batches, cur.records, cur.readings = cur.batches-pc.batches, cur.records-pc.records, cur.readings-pc.readings
			r.pending[p] = cur
		}
		r.mu.Unlock()
		c.committed(pc.batches, pc.records, pc.readings)
		c.mu.Lock()
		if st := c.shardStats[strconv.Itoa(int(p))]; st != nil {
			st.Checkpoint = strconv.FormatInt(pc.next.Offset-1, 10)
		}
		c.mu.Unlock()
	}
}

func (r *kafkaRun) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c := r.c
	ps := m[r.topic]
	c.log.Info("partitions assigned", "partitions", ps)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		shard := strconv.Itoa(int(p))
		if c.shardStats[shard] == nil {
			c.shardStats[shard] = &ShardStats{Shard: shard}
			c.m.active.Inc()
		}
	}
}

// revoked commits what was handled, then lets the partitions go.
func (r *kafkaRun) revoked(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	r.commit(ctx)
	r.c.log.Info("partitions revoked", "partitions", m[r.topic])
	r.drop(m[r.topic])
}

// lost drops the partitions without committing: the group has already
// given them to another member.
func (r *kafkaRun) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	if len(m[r.topic]) == 0 {
		return // a failed join: nothing was assigned
	}
	r.c.log.Warn("partitions lost (the group moved on without this member): what was handled and not committed is delivered again", "partitions", m[r.topic])
	r.drop(m[r.topic])
}

func (r *kafkaRun) drop(ps []int32) {
	c := r.c
	r.mu.Lock()
	for _, p := range ps {
		if pc, ok := r.pending[p]; ok {
			c.log.Warn("partition leaves with handled records not committed: they are delivered again", "partition", p, "records", pc.records)
			delete(r.pending, p)
		}
	}
	r.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		shard := strconv.Itoa(int(p))
		if c.shardStats[shard] != nil {
			delete(c.shardStats, shard)
			c.m.active.Dec()
		}
		c.m.lag.DeleteLabelValues(shard)
		c.m.iterAge.DeleteLabelValues(shard)
		c.m.lagRecords.DeleteLabelValues(shard)
	}
}

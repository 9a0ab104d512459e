package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/internal/backoff"
	"github.com/tributary-iot/tributary/protocol"
)

// Runner is a consumer on either engine — *Consumer (Kinesis shards) or
// *KafkaConsumer (Kafka partitions) — so that code running a Handler
// needs not know which one it got.
type Runner interface {
	// Run reads until ctx ends (then it returns nil) or a fatal error.
	Run(ctx context.Context) error
	// Stats returns the counters and the shards (partitions) being read.
	Stats() Stats
}

// core is what both engines share: the handler, its retries, decoding,
// counters, metrics and per-shard stats.
type core struct {
	cfg     Config
	handler Handler
	opts    Options
	log     *slog.Logger
	m       *metrics
	n       counters

	mu         sync.Mutex
	shardStats map[string]*ShardStats
}

// init sets c up for cfg (already validated), with defaults applied, and
// registers the metrics.
func (c *core) init(cfg Config, handler Handler, opts Options, component string) error {
	c.cfg = cfg.withDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c.handler, c.opts = handler, opts
	c.log = opts.Logger.With("component", component, "stream", cfg.Stream, "application", cfg.Application)
	c.m = newMetrics()
	c.shardStats = make(map[string]*ShardStats)
	if opts.Registerer != nil {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"application": cfg.Application, "stream": cfg.Stream}, opts.Registerer)
		if err := c.m.register(reg); err != nil {
			return fmt.Errorf("consumer: register metrics: %w", err)
		}
	}
	return nil
}

// decode builds the batch of one shard's records: records that do not
// decode are counted, logged, passed to Options.OnBadRecord and left out.
func (c *core) decode(log *slog.Logger, shard string, recs []Record) Batch {
	b := Batch{Stream: c.cfg.Stream, Shard: shard}
	type span struct{ from, to int }
	spans := make([]span, 0, len(recs))
	for _, rec := range recs {
		dec, derr := protocol.DecodeRecord(rec.Data)
		if derr != nil {
			c.n.decodeErrors.Add(1)
			c.m.decodeErr.Inc()
			log.Warn("record does not decode: skipped", "seq", rec.SequenceNumber, "partition_key", rec.PartitionKey, "bytes", len(rec.Data), "err", derr)
			if c.opts.OnBadRecord != nil {
				c.opts.OnBadRecord(shard, rec, derr)
			}
			continue
		}
		rec.Gateway, rec.Device = dec.Gateway, dec.Device
		from := len(b.Readings)
		b.Readings = append(b.Readings, dec.Readings...)
		spans = append(spans, span{from, len(b.Readings)})
		b.Records = append(b.Records, rec)
	}
	for i, sp := range spans {
		b.Records[i].Readings = b.Readings[sp.from:sp.to:sp.to]
	}
	return b
}

// deliver calls the handler with b until it returns nil (true) or ctx
// ends (false: b is not to be committed). An empty batch is delivered
// without a call.
func (c *core) deliver(ctx context.Context, log *slog.Logger, b Batch) bool {
	if len(b.Records) == 0 {
		return true
	}
	bo := backoff.Backoff{Initial: max(c.cfg.PollInterval, time.Millisecond), Max: c.cfg.MaxBackoff}
	for {
		herr := c.handler(ctx, b)
		if herr == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.n.handlerErrors.Add(1)
		c.m.handlerErr.Inc()
		d := bo.Next()
		log.Warn("handler failed; retrying the batch", "records", len(b.Records), "err", herr, "in", d)
		if !backoff.Sleep(ctx, d) {
			return false
		}
	}
}

// committed counts committed batches.
func (c *core) committed(batches, records, readings int) {
	if records == 0 {
		return
	}
	c.n.batches.Add(uint64(batches))
	c.m.batches.Add(float64(batches))
	c.n.records.Add(uint64(records))
	c.m.records.Add(float64(records))
	c.n.readings.Add(uint64(readings))
	c.m.readings.Add(float64(readings))
}

// observe records a shard's lag and iterator age.
func (c *core) observe(shard string, behindMs int64, age time.Duration) {
	c.m.lag.WithLabelValues(shard).Set(float64(behindMs) / 1000)
	c.m.iterAge.WithLabelValues(shard).Set(age.Seconds())
	c.mu.Lock()
	if st := c.shardStats[shard]; st != nil {
		st.MillisBehindLatest, st.IteratorAge = behindMs, age
	}
	c.mu.Unlock()
}

// resetShards forgets every shard's stats and gauges (Run ended).
func (c *core) resetShards() {
	c.mu.Lock()
	clear(c.shardStats)
	c.mu.Unlock()
	c.m.lag.Reset()
	c.m.iterAge.Reset()
	c.m.lagRecords.Reset()
	c.m.active.Set(0)
}

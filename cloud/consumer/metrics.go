package consumer

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of a consumer's counters since New.
type Stats struct {
	Records          uint64 // records handed to the handler (and committed)
	Readings         uint64 // readings in them
	Batches          uint64 // batches committed
	DecodeErrors     uint64 // records that did not decode, skipped
	Throttles        uint64 // GetRecords calls refused with ProvisionedThroughputExceeded
	HandlerErrors    uint64 // handler calls that failed (and were retried)
	ExpiredIterators uint64 // iterators re-acquired after ExpiredIteratorException
	CallErrors       uint64 // other failed Kinesis calls (retried)
	ShardsFinished   uint64 // shards read to their end during this run
	Shards           []ShardStats
}

// ShardStats describes a shard being read.
type ShardStats struct {
	Shard              string
	Checkpoint         string // last checkpointed sequence number
	MillisBehindLatest int64
	IteratorAge        time.Duration // age of the newest record read last
	// Lag is, on Kafka, the records of the partition after the last one
	// handled (its high watermark minus the next offset); 0 on Kinesis.
	Lag int64
}

type counters struct {
	records, readings, batches, decodeErrors, throttles, handlerErrors,
	expired, callErrors, finished atomic.Uint64
}

type metrics struct {
	lag, iterAge, lagRecords              *prometheus.GaugeVec
	active                                prometheus.Gauge
	records, readings, batches, decodeErr prometheus.Counter
	throttles, handlerErr, expired        prometheus.Counter
	callErr, finished                     prometheus.Counter
}

func newMetrics() *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "tributary_consumer_" + name, Help: help})
	}
	return &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_consumer_behind_latest_seconds",
			Help: "MillisBehindLatest of the shard's last GetRecords, in seconds (0: caught up).",
		}, []string{"shard"}),
		iterAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_consumer_iterator_age_seconds",
			Help: "Age of the newest record of the shard's last GetRecords (as Kinesis's IteratorAgeMilliseconds).",
		}, []string{"shard"}),
		lagRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_consumer_lag_records",
			Help: "Kafka: records of the partition not handled yet (high watermark minus the next offset).",
		}, []string{"shard"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tributary_consumer_shards_active",
			Help: "Shards being read now.",
		}),
		records:    counter("records_total", "Records handed to the handler and committed."),
		readings:   counter("readings_total", "Readings in committed records."),
		batches:    counter("batches_total", "Batches committed (handler returned nil, checkpoint written)."),
		decodeErr:  counter("decode_errors_total", "Records that did not decode as stream records (skipped)."),
		throttles:  counter("throttles_total", "GetRecords calls refused with ProvisionedThroughputExceededException."),
		handlerErr: counter("handler_errors_total", "Handler calls that returned an error (the batch is retried)."),
		expired:    counter("expired_iterators_total", "Shard iterators re-acquired after ExpiredIteratorException."),
		callErr:    counter("call_errors_total", "Other failed Kinesis calls (retried with backoff)."),
		finished:   counter("shards_finished_total", "Shards read to their end and checkpointed as ended."),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.lag, m.iterAge, m.lagRecords, m.active, m.records, m.readings, m.batches,
		m.decodeErr, m.throttles, m.handlerErr, m.expired, m.callErr, m.finished} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

// Stats returns a snapshot of the counters and the shards being read.
func (c *core) Stats() Stats {
	s := Stats{
		Records:          c.n.records.Load(),
		Readings:         c.n.readings.Load(),
		Batches:          c.n.batches.Load(),
		DecodeErrors:     c.n.decodeErrors.Load(),
		Throttles:        c.n.throttles.Load(),
		HandlerErrors:    c.n.handlerErrors.Load(),
		ExpiredIterators: c.n.expired.Load(),
		CallErrors:       c.n.callErrors.Load(),
		ShardsFinished:   c.n.finished.Load(),
	}
	c.mu.Lock()
	for _, st := range c.shardStats {
		s.Shards = append(s.Shards, *st)
	}
	c.mu.Unlock()
	slices.SortFunc(s.Shards, func(a, b ShardStats) int { return strings.Compare(a.Shard, b.Shard) })
	return s
}

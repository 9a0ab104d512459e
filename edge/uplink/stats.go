package uplink

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of the uplink's counters and state.
type Stats struct {
	BatchesSent     uint64 // batches (or parts of split batches) the cloud acknowledged
	ReadingsAcked   uint64 // readings the cloud acknowledged, deleted from the queue (refused ones included)
	Requests        uint64 // POSTs made, retries included
	Retries         uint64 // requests re-sending a range after a failure
	Splits          uint64 // ranges split in half after a 413, or bisected after a 400
	BytesRaw        uint64 // encoded batch bytes of every request
	BytesCompressed uint64 // request body bytes on the wire, every request
	Failures        Failures

	// ReadingsRefused: acknowledged readings the cloud did not store
	// because this gateway is at a per-gateway cap (deleted all the same);
	// RefusedBy splits them by reason (Refused*; nil when none), and
	// LastRefusedReason is the cloud's explanation of the last refusal.
	ReadingsRefused   uint64
	RefusedBy         map[string]uint64
	LastRefusedReason string
	LastRefusedTime   time.Time

	OldBatches   uint64 // batches taken from the backlog (oldest) end
	FreshBatches uint64 // batches taken from the fresh end
	BacklogSeqs  uint64 // sequence numbers between the backlog cursor and the fresh end: an upper bound of the backlog

	ParkedRanges   int // ranges the cloud refused (400, or a lone reading over its size limit): kept, retried every Backoff.Max
	ParkedReadings int
	InFlight       int // requests in progress
	Backoff        time.Duration
	LastSuccess    time.Time
	LastError      string
	LastErrorTime  time.Time
}

// Failures counts failed requests by cause.
type Failures struct {
	Network      uint64 // no HTTP response: refused, reset, timed out
	Malformed    uint64 // 400: the cloud says the batch is malformed (a bug somewhere)
	Unauthorized uint64 // 401, 403: token rejected
	TooLarge     uint64 // 413
	Throttled    uint64 // 429, 503 (with or without Retry-After)
	Other4xx     uint64
	Other5xx     uint64
	Ack          uint64 // the cloud acknowledged but the queue's Ack failed (retried)
	// BadAck: a 2xx whose acknowledgement does not parse, or names
	// another gateway, epoch or sequence range than the request: the
	// readings are kept and the batch retried.
	BadAck uint64
}

// counters holds what Stats reports; updated with atomics.
type counters struct {
	batches, readings, requests, retries, splits atomic.Uint64
	bytesRaw, bytesComp                          atomic.Uint64
	oldBatches, freshBatches, backlog            atomic.Uint64
	network, malformed, unauthorized, tooLarge   atomic.Uint64
	throttled, other4xx, other5xx, ackFailures   atomic.Uint64
	badAcks                                      atomic.Uint64
	refused                                      [len(refusedReasons)]atomic.Uint64
	parkedRanges, parkedReadings, inFlight       atomic.Int64
	lastSuccess                                  atomic.Int64 // unix ns

	mu          sync.Mutex
	lastErr     string
	lastErrTime time.Time
	lastRefused string
	lastRefTime time.Time
}

func (c *counters) setRefused(reason string) {
	c.mu.Lock()
	c.lastRefused, c.lastRefTime = reason, time.Now()
	c.mu.Unlock()
}

func (c *counters) setError(msg string) {
	c.mu.Lock()
	c.lastErr, c.lastErrTime = msg, time.Now()
	c.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (u *Uplink) Stats() Stats {
	c := &u.c
	s := Stats{
		BatchesSent:     c.batches.Load(),
		ReadingsAcked:   c.readings.Load(),
		Requests:        c.requests.Load(),
		Retries:         c.retries.Load(),
		Splits:          c.splits.Load(),
		BytesRaw:        c.bytesRaw.Load(),
		BytesCompressed: c.bytesComp.Load(),
		Failures: Failures{
			Network:      c.network.Load(),
			Malformed:    c.malformed.Load(),
			Unauthorized: c.unauthorized.Load(),
			TooLarge:     c.tooLarge.Load(),
			Throttled:    c.throttled.Load(),
			Other4xx:     c.other4xx.Load(),
			Other5xx:     c.other5xx.Load(),
			Ack:          c.ackFailures.Load(),
			BadAck:       c.badAcks.Load(),
		},
		OldBatches:     c.oldBatches.Load(),
		FreshBatches:   c.freshBatches.Load(),
		BacklogSeqs:    c.backlog.Load(),
		ParkedRanges:   int(c.parkedRanges.Load()),
		ParkedReadings: int(c.parkedReadings.Load()),
		InFlight:       int(c.inFlight.Load()),
		Backoff:        u.gate.current(),
	}
	if ns := c.lastSuccess.Load(); ns != 0 {
		s.LastSuccess = time.Unix(0, ns)
	}
	for i := range c.refused {
		if v := c.refused[i].Load(); v > 0 {
			if s.RefusedBy == nil {
				s.RefusedBy = map[string]uint64{}
			}
			s.RefusedBy[refusedReasons[i]] = v
			s.ReadingsRefused += v
		}
	}
	c.mu.Lock()
	s.LastError, s.LastErrorTime = c.lastErr, c.lastErrTime
	s.LastRefusedReason, s.LastRefusedTime = c.lastRefused, c.lastRefTime
	c.mu.Unlock()
	return s
}

// collector exports Stats to Prometheus, read at scrape time.
type collector struct {
	u *Uplink

	batches, readings, refused, requests, retries, splits, bytes *prometheus.Desc
	failures                                                     *prometheus.Desc
	batchesByEnd, backlog, parked, parkedReadings, inFlight      *prometheus.Desc
	backoff, lastSuccess                                         *prometheus.Desc
}

func newCollector(u *Uplink) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tributary_uplink_"+name, help, labels, nil)
	}
	return &collector{
		u:        u,
		batches:  d("batches_acked_total", "Batches (or parts of split batches) the cloud acknowledged."),
		readings: d("readings_acked_total", "Readings the cloud acknowledged and the queue deleted."),
		refused: d("readings_refused_total", "Acknowledged readings the cloud did not store because the gateway is at a per-gateway cap "+
			"(reason: devices, series, devices_and_series, unspecified); deleted from the queue, as retrying would be refused again.", "reason"),
		requests:       d("requests_total", "Ingest requests made, retries included."),
		retries:        d("retries_total", "Requests that re-sent a range after a failure."),
		splits:         d("splits_total", "Ranges split after a 413 or bisected after a 400."),
		bytes:          d("request_bytes_total", "Request bytes: the encoded batch (raw) and the body on the wire (compressed).", "stage"),
		failures:       d("failures_total", "Failed requests by cause.", "cause"),
		batchesByEnd:   d("batches_formed_total", "Batches formed, by the end of the queue they came from.", "end"),
		backlog:        d("backlog_seqs", "Sequence numbers between the backlog cursor and the fresh end (upper bound of the backlog)."),
		parked:         d("parked_ranges", "Ranges the cloud refused, kept in the queue and retried every max backoff."),
		parkedReadings: d("parked_readings", "Readings in parked ranges."),
		inFlight:       d("in_flight_requests", "Requests in progress."),
		backoff:        d("backoff_seconds", "Current retry backoff (0 when healthy)."),
		lastSuccess:    d("last_success_timestamp_seconds", "Unix time of the last acknowledged batch."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.batches, c.readings, c.refused, c.requests, c.retries, c.splits, c.bytes,
		c.failures, c.batchesByEnd, c.backlog, c.parked, c.parkedReadings, c.inFlight, c.backoff, c.lastSuccess} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.u.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.batches, s.BatchesSent)
	counter(c.readings, s.ReadingsAcked)
	for _, r := range refusedReasons {
		counter(c.refused, s.RefusedBy[r], r)
	}
	counter(c.requests, s.Requests)
	counter(c.retries, s.Retries)
	counter(c.splits, s.Splits)
	counter(c.bytes, s.BytesRaw, "raw")
	counter(c.bytes, s.BytesCompressed, "compressed")
	f := s.Failures
	for _, x := range []struct {
		cause string
		v     uint64
	}{{"network", f.Network}, {"malformed", f.Malformed}, {"unauthorized", f.Unauthorized},
		{"too_large", f.TooLarge}, {"throttled", f.Throttled}, {"other_4xx", f.Other4xx},
		{"other_5xx", f.Other5xx}, {"ack", f.Ack}, {"bad_ack", f.BadAck}} {
		counter(c.failures, x.v, x.cause)
	}
	counter(c.batchesByEnd, s.OldBatches, "old")
	counter(c.batchesByEnd, s.FreshBatches, "fresh")
	gauge(c.backlog, float64(s.BacklogSeqs))
	gauge(c.parked, float64(s.ParkedRanges))
	gauge(c.parkedReadings, float64(s.ParkedReadings))
	gauge(c.inFlight, float64(s.InFlight))
	gauge(c.backoff, s.Backoff.Seconds())
	var ls float64
	if !s.LastSuccess.IsZero() {
		ls = float64(s.LastSuccess.UnixNano()) / 1e9
	}
	gauge(c.lastSuccess, ls)
}

package ingest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests             *prometheus.CounterVec
	requestSeconds       prometheus.Histogram
	inFlight             prometheus.Gauge
	busy                 prometheus.Counter
	gatewayBusy          *prometheus.CounterVec
	slowBodies           prometheus.Counter
	capped               *prometheus.CounterVec
	trackedSeries        prometheus.GaugeFunc
	bytes                *prometheus.CounterVec
	readings             prometheus.Counter
	duplicates           prometheus.Counter
	duplicateBatches     prometheus.Counter
	putSeconds           prometheus.Histogram
	throttledEntries     prometheus.Counter
	rewritten            prometheus.Counter
	recovered            prometheus.Counter
	liveRecoveries       prometheus.Counter
	liveRecoveryFailures prometheus.Counter
	forgottenSpans       prometheus.Counter
	expired              prometheus.Counter
	uncertain            prometheus.GaugeFunc
}

func newMetrics(in *Ingest) *metrics {
	const ns, sub = "tributary", "ingest"
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Ingest requests by HTTP status code."}, []string{"code"}),
		requestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "request_seconds",
			Help: "Time to answer an ingest request.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "requests_in_flight",
			Help: "Ingest requests being handled."}),
		busy: c("busy_total", "Requests answered 503 because every slot was taken (max_in_flight)."),
		gatewayBusy: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "gateway_busy_total",
			Help: "Requests answered 429 because their gateway had max_in_flight_per_gateway requests in progress."}, []string{"gateway"}),
		slowBodies: c("slow_bodies_total", "Requests answered 408 because their body did not arrive within read_timeout."),
		capped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "capped_readings_total",
			Help: "Readings refused (and acknowledged) because their gateway was at max_devices_per_gateway (cap=devices) or max_series_per_gateway (cap=series)."},
			[]string{"gateway", "cap"}),
		trackedSeries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "tracked_series",
			Help: "Series (gateway, device, metric) counted against the per-gateway caps."},
			func() float64 { return float64(in.caps.count()) }),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "received_bytes_total",
			Help: "Batch bytes received: as sent (form=wire, compressed) and decompressed (form=raw)."}, []string{"form"}),
		readings:         c("readings_total", "Readings written to the stream and acknowledged."),
		duplicates:       c("duplicate_readings_total", "Readings in resent batches, acknowledged before and not written again."),
		duplicateBatches: c("duplicate_batches_total", "Batches that carried readings acknowledged before."),
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "backend_put_seconds",
			Help: "Latency of one stream backend Put call.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
		throttledEntries: c("throttled_records_total", "Records the stream backend throttled (shard at capacity), retries included."),
		rewritten: c("possible_duplicate_readings_total",
			"Readings written again after an earlier write of them had an unknown outcome (crash, backend failure): they may be in the stream twice."),
		recovered: c("recovered_readings_total",
			"Readings whose write had an unknown outcome, found in the stream (after a restart, or read back once the backend settled) and acknowledged without writing them again."),
		liveRecoveries: c("live_recoveries_total",
			"Resends of readings whose write had an unknown outcome that made the ingest wait for the backend to settle and read the stream back (Kafka)."),
		liveRecoveryFailures: c("live_recovery_failures_total",
			"Live recoveries answered 503: the backend did not settle within put_timeout, or the stream could not be read back."),
		forgottenSpans: c("forgotten_ranges_total", "Acknowledged seq ranges forgotten because one epoch had more than max_ranges."),
		expired:        c("expired_epochs_total", "Per-(gateway, epoch) acknowledgement states forgotten after epoch_ttl idle."),
		uncertain: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "uncertain_readings",
			Help: "Readings whose write had an unknown outcome and that were not resent yet (a resend may duplicate them)."},
			func() float64 { return float64(in.uncertain.Load()) }),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.requestSeconds, m.inFlight, m.busy, m.gatewayBusy, m.slowBodies, m.capped, m.trackedSeries, m.bytes, m.readings,
		m.duplicates, m.duplicateBatches, m.putSeconds, m.throttledEntries, m.rewritten, m.recovered, m.liveRecoveries, m.liveRecoveryFailures, m.forgottenSpans, m.expired, m.uncertain} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

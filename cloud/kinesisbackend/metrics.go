package kinesisbackend

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are always collected; New registers them when given a
// Registerer.
type metrics struct {
	records     *prometheus.CounterVec
	written     prometheus.Counter
	failed      prometheus.Counter
	retries     prometheus.Counter
	throttles   prometheus.Counter
	callSeconds prometheus.Histogram
	putSeconds  prometheus.Histogram
}

func newMetrics() *metrics {
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_kinesis_records_total",
		Help: "Entries Put finished with, by result: written (acknowledged by Kinesis) or failed.",
	}, []string{"result"})
	return &metrics{
		records: records,
		written: records.WithLabelValues("written"),
		failed:  records.WithLabelValues("failed"),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_kinesis_retries_total",
			Help: "Entries sent again after a failed attempt (only failed entries are resent).",
		}),
		throttles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_kinesis_throttles_total",
			Help: "Entries Kinesis throttled (ProvisionedThroughputExceeded, KMSThrottling, or a whole throttled call).",
		}),
		callSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tributary_kinesis_put_records_seconds",
			Help:    "Latency of one PutRecords call, SDK retries included.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tributary_kinesis_put_seconds",
			Help:    "Latency of one Put: every entry written or given up.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 16),
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.records, m.retries, m.throttles, m.callSeconds, m.putSeconds} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

package kafkabackend

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// metrics are always collected; New registers them when given a
// Registerer.
type metrics struct {
	records                             *prometheus.CounterVec
	written, throttled, unknown, failed prometheus.Counter
	joined, late                        prometheus.Counter
	putSeconds                          prometheus.Histogram
	buffered                            prometheus.GaugeFunc
}

func newMetrics(c *kgo.Client) *metrics {
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_kafka_records_total",
		Help: "Entries Put finished with, by result: written (acknowledged, acks=all), throttled (not written, retry later), unknown (sent, not acknowledged by the deadline) or failed.",
	}, []string{"result"})
	return &metrics{
		records:   records,
		written:   records.WithLabelValues("written"),
		throttled: records.WithLabelValues("throttled"),
		unknown:   records.WithLabelValues("unknown"),
		failed:    records.WithLabelValues("failed"),
		joined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_kafka_joined_total",
			Help: "Entries identical to a record still in flight, which waited for it instead of being produced again.",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_kafka_late_acks_total",
			Help: "Records reported as unknown whose write finished later (acknowledged or failed); acknowledged ones are remembered so that their resend is not written twice.",
		}),
		putSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tributary_kafka_put_seconds",
			Help:    "Latency of one Put: every entry acknowledged or given up.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		buffered: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tributary_kafka_buffered_records",
			Help: "Records in the producer not yet acknowledged (bounded by max_buffered_records).",
		}, func() float64 { return float64(c.BufferedProduceRecords()) }),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.records, m.joined, m.late, m.putSeconds, m.buffered} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

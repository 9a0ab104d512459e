// Package metricstest reads metric values back from a Prometheus
// gatherer in tests: one way for every package's tests to ask "what does
// this counter say now".
package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Value gathers g and returns the sum of the values of metric name (a
// counter's or gauge's value, a histogram's sample count) over its series
// whose labels include every pair of labels (name, value, name, value,
// ...). A metric g does not have reads as 0: a vector with no series yet
// is not gathered at all. A gathering error fails the test.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metricstest.Value(%s): labels come in name, value pairs: %q", name, labels)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("metricstest: gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				if !hasLabel(m.GetLabel(), labels[i], labels[i+1]) {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
		return sum
	}
	return 0
}

func hasLabel[L interface {
	GetName() string
	GetValue() string
}](ls []L, name, value string) bool {
	for _, l := range ls {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

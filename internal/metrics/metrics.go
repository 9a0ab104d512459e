// Package metrics makes the Prometheus registry that a tributary server
// serves on /metrics, holding the metrics every server has: the Go runtime,
// the process, and tributary_build_info.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tributary-iot/tributary/internal/buildinfo"
)

// BuildInfoName is the build information gauge: always 1, with the
// labels version, goversion and revision ("" when the build did not
// record it).
const BuildInfoName = "tributary_build_info"

// NewRegistry returns a registry with the Go and process collectors and
// the tributary_build_info gauge of bi.
func NewRegistry(bi buildinfo.Info) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        BuildInfoName,
			Help:        "Always 1; the labels say which build is running.",
			ConstLabels: prometheus.Labels{"version": bi.Version, "goversion": bi.GoVersion, "revision": bi.Revision},
		}, func() float64 { return 1 }),
	)
	return reg
}

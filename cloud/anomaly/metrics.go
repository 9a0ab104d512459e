package anomaly

import "github.com/prometheus/client_golang/prometheus"

// Register registers the registry's metrics (tributary_anomaly_*) with reg.
func (r *Registry) Register(reg prometheus.Registerer) error { return reg.Register(regCollector{r}) }

type regCollector struct{ r *Registry }

var (
	descSeries    = regDesc("series", "Series with a detector.")
	descMaxSeries = regDesc("max_series", "The bound on series with a detector (anomaly.max_series, rounded up to a multiple of 16).")
	descCreated   = regDesc("series_created_total", "Detectors made (a series forgotten and seen again counts twice).")
	descEvicted   = regDesc("series_evicted_total", "Series silent for an hour or more forgotten to make room for a new one (anomaly.max_series).")
	descUnscored  = regDesc("unscored_points_total", "Points of new series not scored because every detector was in use (anomaly.max_series).")
	descPoints    = regDesc("points_total", "Points scored.")
	descLate      = regDesc("late_points_total", "Points not after their series' last one: not scored.")
	descFuture    = regDesc("future_points_total", "Points stamped beyond the future margin after their receive time: not scored.")
	descAlerts    = regDesc("alerts_total", "Alerts raised (Sweep's missing-data alerts included).")
)

func regDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("tributary_anomaly_"+name, help, nil, nil)
}

func (regCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSeries, descMaxSeries, descCreated, descEvicted, descUnscored, descPoints, descLate, descFuture, descAlerts} {
		ch <- d
	}
}

func (c regCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Stats()
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descSeries, st.Series)
	gauge(descMaxSeries, c.r.max)
	counter(descCreated, st.Created)
	counter(descEvicted, st.Evicted)
	counter(descUnscored, st.Unscored)
	counter(descPoints, st.Points)
	counter(descLate, st.Late)
	counter(descFuture, st.Future)
	counter(descAlerts, st.Alerts)
}

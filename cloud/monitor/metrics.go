package monitor

import "github.com/prometheus/client_golang/prometheus"

// Register registers the monitor's metrics (tributary_monitor_*) with r.
func (m *Monitor) Register(r prometheus.Registerer) error {
	return r.Register(collector{m})
}

type collector struct{ m *Monitor }

var (
	descReadings   = desc("readings_total", "Readings taken in (not duplicates).")
	descDuplicates = desc("duplicate_readings_total", "Readings ignored because their series already held a point at that time (redelivery).")
	descLate       = desc("late_readings_total", "Readings older than their series' newest point, taken in (a gateway's backlog uploaded after newer data).")
	descFuture     = desc("future_readings_total", "Readings stamped more than the future margin after their gateway receive time (a device clock ahead): counted, not charted, and not allowed to advance their series' clock.")
	descBatches    = desc("batches_total", "Consumer batches handled.")
	descEvicted    = desc("points_evicted_total", "Raw points pushed out of full per-series rings (normal ageing).")
	descForgotten  = desc("devices_forgotten_total", "Devices dropped from memory after ForgetAfter without readings.")
	descAlerts     = desc("alerts_total", "Alerts added.")
	descDropped    = desc("dropped_total", "What did not fit a bound, by what: devices, gateways, metrics, series, shards (readings/records/batches refused), alerts (pushed out of the list), clients (event clients too slow), clients_refused (event connections beyond the limit).", "what")
	descDevices    = desc("devices", "Devices held.")
	descOnline     = desc("devices_online", "Devices heard from within OfflineAfter (gateways' own health devices excluded).")
	descGateways   = desc("gateways", "Gateways held.")
	descSeries     = desc("series", "Series held.")
	descClients    = desc("event_clients", "Connected /api/v1/events clients.")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("tributary_monitor_"+name, help, labels, nil)
}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReadings, descDuplicates, descLate, descFuture, descBatches, descEvicted, descForgotten,
		descAlerts, descDropped, descDevices, descOnline, descGateways, descSeries, descClients} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Stats()
	ov := c.m.Overview()
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descReadings, s.Readings)
	counter(descDuplicates, s.Duplicates)
	counter(descLate, s.Late)
	counter(descFuture, s.Future)
	counter(descBatches, s.Batches)
	counter(descEvicted, s.PointsEvicted)
	counter(descForgotten, s.DevicesForgotten)
	counter(descAlerts, s.Alerts)
	d := s.Dropped
	for _, x := range []struct {
		what string
		n    uint64
	}{{"devices", d.Devices}, {"gateways", d.Gateways}, {"metrics", d.Metrics}, {"series", d.Series},
		{"shards", d.Shards}, {"alerts", d.Alerts}, {"clients", d.Clients}, {"clients_refused", d.ClientsRefused}} {
		counter(descDropped, x.n, x.what)
	}
	gauge(descDevices, s.Devices)
	gauge(descOnline, ov.Devices.Online)
	gauge(descGateways, s.Gateways)
	gauge(descSeries, s.Series)
	gauge(descClients, s.Clients)
}

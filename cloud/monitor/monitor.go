// Package monitor keeps the live state of the fleet — devices, gateways,
// shards, recent series and alerts — from the telemetry stream, and serves
// it as a JSON API with Server-Sent Events for the dashboard.
//
// A Monitor is fed by a consumer (HandleBatch is a consumer.Handler) and by
// the anomaly detectors (AddAlert). All state is in memory and bounded by
// Options; what does not fit is dropped, counted
// (tributary_monitor_dropped_total) and logged (once a minute per bound),
// never queued. The exception is the operators' notes (notes.go):
// acknowledgements of incidents and silences of devices or metrics, kept
// in a bbolt file (Options.Notes, OpenNotes; tributary-cloud's
// dashboard.db) and bounded by MaxAcks and MaxSilences. The alerts are
// also served grouped by incident (incidents.go, Incidents).
package monitor

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/internal/loglimit"
	"github.com/tributary-iot/tributary/protocol"
)

var _ consumer.Handler = (*Monitor)(nil).HandleBatch

// maxStrValue bounds the last string value kept per series.
const maxStrValue = 256

// Monitor holds the fleet's live state. It is safe for concurrent use.
type Monitor struct {
	opt Options
	log *slog.Logger
	now func() time.Time
	hub *hub
	ov  overviewCache

	mu        sync.Mutex
	devices   map[string]*device
	gateways  map[string]*gateway
	shards    map[string]*shardObs
	nseries   int
	fleetRate rate
	alerts    ring[AlertEntry]
	alertSeq  uint64
	alertMin  [60]minuteCount // alerts per minute, for the last hour
	lastSweep time.Time
	st        Stats          // counters; the gauges are filled by Stats()
	dropLog   loglimit.Keyed // by bound (a fixed set)
}

type minuteCount struct {
	min int64 // unix minute
	n   int
}

type device struct {
	id        string
	gateway   string
	agent     bool // the gateway's own health device
	lastSeen  time.Time
	lastTime  int64 // newest device time, µs
	readings  uint64
	rate      rate
	skewUs    int64 // device time − gateway receive time, newest reading that had a device time
	hasSkew   bool
	unsynced  uint64 // readings flagged ClockUnsynced
	future    uint64 // readings stamped beyond FutureMargin after reception: not charted
	anomalies uint64
	series    map[string]*series
}

type gateway struct {
	id       string
	lastSeen time.Time
	readings uint64
	rate     rate
	health   GatewayHealth
	// arrival − receive time of its newest record: uplink delay plus the
	// gateway clock's offset.
	delayUs  int64
	hasDelay bool
}

type shardObs struct {
	id        string
	records   rate
	bytes     rate
	lagMs     int64
	lastBatch time.Time
}

// New returns a Monitor with opts (zero fields take the defaults).
func New(opts Options) *Monitor {
	opts.setDefaults()
	m := &Monitor{
		opt:      opts,
		log:      opts.Logger,
		now:      opts.Now,
		devices:  make(map[string]*device),
		gateways: make(map[string]*gateway),
		shards:   make(map[string]*shardObs),
		alerts:   ring[AlertEntry]{max: opts.MaxAlerts},
	}
	m.hub = newHub(opts.MaxClients, opts.ClientBuffer)
	return m
}

// HandleBatch takes in one consumer batch. It is a consumer.Handler: safe
// for concurrent calls from different shards, and idempotent under
// redelivery, because each series keeps the device time of its newest
// point and ignores readings that are not newer (counted as duplicates).
// It never fails.
func (m *Monitor) HandleBatch(ctx context.Context, b consumer.Batch) error {
	now := m.now()
	var sink *pointSink
	if m.hub.active() {
		sink = &pointSink{}
	}
	m.mu.Lock()
	before := m.st.Dropped
	m.st.Batches++
	var sh *shardObs
	if b.Shard != "" {
		sh = m.shard(now, b.Shard, b.MillisBehindLatest)
	}
	if len(b.Records) > 0 {
		for i := range b.Records {
			rec := &b.Records[i]
			seen := arrived(now, rec.Arrival)
			// A record counts for the shard's rate if it brought anything new.
			if m.addReadings(now, seen, rec.Gateway, rec.Arrival, rec.Readings, sink) > 0 && sh != nil {
				sh.records.add(seen, 1)
				sh.bytes.add(seen, len(rec.Data)+len(rec.PartitionKey))
			}
		}
	} else if n := m.addReadings(now, now, "", time.Time{}, b.Readings, sink); n > 0 && sh != nil {
		sh.records.add(now, n)
	}
	if now.Sub(m.lastSweep) >= time.Minute {
		m.sweep(now)
	}
	after := m.st.Dropped
	m.mu.Unlock()
	m.logDrops(before, after)
	if sink != nil {
		m.hub.publishPoints(sink)
	}
	return nil
}

// logDrops logs the readings a batch dropped at a bound, at most once a
// minute per bound, naming the setting to raise.
func (m *Monitor) logDrops(before, after Dropped) {
	for _, d := range []struct {
		what, bound string
		n           uint64
		limit       int
	}{
		{"devices", "MaxDevices", after.Devices - before.Devices, m.opt.MaxDevices},
		{"gateways", "MaxGateways", after.Gateways - before.Gateways, m.opt.MaxGateways},
		{"metrics", "MaxMetricsPerDevice", after.Metrics - before.Metrics, m.opt.MaxMetricsPerDevice},
		{"series", "MaxSeries", after.Series - before.Series, m.opt.MaxSeries},
		{"shards", "MaxShards", after.Shards - before.Shards, m.opt.MaxShards},
	} {
		if d.n == 0 {
			continue
		}
		if ok, n := m.dropLog.Allow(d.what); ok {
			m.log.Warn("monitor bound reached: not charting "+d.what+" beyond it (tributary_monitor_dropped_total)",
				"bound", d.bound, "limit", d.limit, "dropped", d.n, "suppressed", n)
		}
	}
}

// arrived is when a record reached the stream: its arrival time, or now
// if it has none or one in the future (the stream's clock is ahead).
func arrived(now, arrival time.Time) time.Time {
	if !arrival.IsZero() && arrival.Before(now) {
		return arrival
	}
	return now
}

// addReadings records readings of one record (gw and arrival may be
// zero; seen is arrived(now, arrival)) and returns how many were
// accepted. m.mu is held.
func (m *Monitor) addReadings(now, seen time.Time, gw string, arrival time.Time, rs []protocol.Reading, sink *pointSink) int {
	var g *gateway
	if gw != "" {
		g = m.gateway(gw)
	}
	accepted := 0
	for i := range rs {
		r := &rs[i]
		d := m.device(r.Device)
		if d == nil {
			m.st.Dropped.Devices++
			continue
		}
		if m.future(r) {
			m.st.Future++
			d.future++
			continue
		}
		s := d.series[r.Name]
		if s == nil {
			if len(d.series) >= m.opt.MaxMetricsPerDevice {
				m.st.Dropped.Metrics++
				continue
			}
			if m.nseries >= m.opt.MaxSeries {
				m.st.Dropped.Series++
				continue
			}
			s = newSeries(m.opt.PointsPerSeries)
			d.series[r.Name] = s
			m.nseries++
		}
		v, numeric := numericValue(r)
		if r.Time <= s.last && s.count > 0 {
			if !numeric || r.Time == s.last {
				m.st.Duplicates++
				continue
			}
			dup, ev := s.addLate(r.Time, v)
			if dup {
				m.st.Duplicates++
				continue
			}
			m.st.Late++
			m.st.PointsEvicted += uint64(ev)
			m.countReading(d, g, gw, seen, arrival, r, true)
			accepted++
			continue
		}
		s.unit = r.Unit
		if numeric {
			if r.Kind == protocol.KindBool {
				s.kind = "bool"
			} else {
				s.kind = "number"
			}
			m.st.PointsEvicted += uint64(s.add(r.Time, v))
			if sink != nil {
				sink.add(r.Device, r.Name, r.Time, v)
			}
		} else {
			s.last = r.Time
			s.count++
			s.kind = r.Kind.String()
			if r.Kind == protocol.KindData {
				s.str = ""
			} else {
				s.str = truncate(r.Str, maxStrValue)
			}
		}
		accepted++
		m.countReading(d, g, gw, seen, arrival, r, false)
	}
	return accepted
}

// future reports whether r is stamped more than Options.FutureMargin after
// its receive time: a device clock ahead, whose point must not become its
// series' newest.
func (m *Monitor) future(r *protocol.Reading) bool {
	return m.opt.FutureMargin > 0 && r.Received != 0 && r.Flags&protocol.FlagReceiverTime == 0 &&
		r.Time-r.Received > m.opt.FutureMargin.Microseconds()
}

// countReading accounts for an accepted reading. A late one (older than
// its series' newest) does not update the gateway's health. m.mu is held.
func (m *Monitor) countReading(d *device, g *gateway, gw string, seen, arrival time.Time, r *protocol.Reading, late bool) {
	m.st.Readings++
	m.fleetRate.add(seen, 1)
	d.readings++
	d.rate.add(seen, 1)
	d.lastSeen = later(d.lastSeen, seen)
	d.lastTime = max(d.lastTime, r.Time)
	if r.Flags&protocol.FlagClockUnsynced != 0 {
		d.unsynced++
	}
	if !late && r.Flags&protocol.FlagReceiverTime == 0 && r.Received != 0 {
		d.skewUs, d.hasSkew = r.Time-r.Received, true
	}
	if g == nil {
		return
	}
	d.gateway = gw
	g.readings++
	g.rate.add(seen, 1)
	g.lastSeen = later(g.lastSeen, seen)
	if r.Received != 0 && !arrival.IsZero() {
		g.delayUs, g.hasDelay = arrival.UnixMicro()-r.Received, true
	}
	if !late && r.Device == gw && strings.HasPrefix(r.Name, protocol.HealthPrefix) {
		d.agent = true
		g.health.update(r)
	}
}

func (m *Monitor) device(id string) *device {
	if d := m.devices[id]; d != nil {
		return d
	}
	if len(m.devices) >= m.opt.MaxDevices {
		return nil
	}
	d := &device{id: id, series: make(map[string]*series)}
	m.devices[id] = d
	return d
}

func (m *Monitor) gateway(id string) *gateway {
	if g := m.gateways[id]; g != nil {
		return g
	}
	if len(m.gateways) >= m.opt.MaxGateways {
		m.st.Dropped.Gateways++
		return nil
	}
	g := &gateway{id: id}
	m.gateways[id] = g
	return g
}

func (m *Monitor) shard(now time.Time, id string, lagMs int64) *shardObs {
	s := m.shards[id]
	if s == nil {
		if len(m.shards) >= m.opt.MaxShards {
			m.st.Dropped.Shards++
			return nil
		}
		s = &shardObs{id: id}
		m.shards[id] = s
	}
	s.lagMs = lagMs
	s.lastBatch = now
	return s
}

// sweep forgets devices, gateways and shards not heard from for
// ForgetAfter. m.mu is held.
func (m *Monitor) sweep(now time.Time) {
	m.lastSweep = now
	for id, d := range m.devices {
		if now.Sub(d.lastSeen) > m.opt.ForgetAfter {
			m.nseries -= len(d.series)
			delete(m.devices, id)
			m.st.DevicesForgotten++
		}
	}
	for id, g := range m.gateways {
		if now.Sub(g.lastSeen) > m.opt.ForgetAfter {
			delete(m.gateways, id)
		}
	}
	for id, s := range m.shards {
		if now.Sub(s.lastBatch) > m.opt.ForgetAfter {
			delete(m.shards, id)
		}
	}
}

// AddAlert records an anomaly alert, an event of an incident: it is
// listed by /api/v1/alerts and pushed to event clients; an open event
// (a new incident) is also counted on its device and in the last hour's
// anomalies. It reports whether a silence (Options.Notes) covers the
// alert's device and metric: the caller then does not send it to the
// webhook.
func (m *Monitor) AddAlert(a anomaly.Alert) (silenced bool) {
	now := m.now()
	silenced = m.opt.Notes != nil && m.opt.Notes.Silenced(a.Device, a.Metric)
	m.mu.Lock()
	m.alertSeq++
	e := AlertEntry{ID: m.alertSeq, Incident: a.ID, Alert: a, Received: now, Silenced: silenced}
	if m.alerts.push(e) {
		m.st.Dropped.Alerts++
	}
	m.st.Alerts++
	if a.Event != anomaly.EventOpen {
		// An incident's update or resolve: listed and pushed, but the
		// counts are of incidents.
		m.mu.Unlock()
		m.hub.publishAlert(e)
		return silenced
	}
	if d := m.devices[a.Device]; d != nil {
		d.anomalies++
	}
	min := now.Unix() / 60
	if c := &m.alertMin[min%60]; c.min != min {
		*c = minuteCount{min: min, n: 1}
	} else {
		c.n++
	}
	m.mu.Unlock()
	m.hub.publishAlert(e)
	return silenced
}

// numericValue returns the value a chart plots: the number, a bool as
// 0/1, or the sum of a reading that carries only a sum.
func numericValue(r *protocol.Reading) (float64, bool) {
	switch r.Kind {
	case protocol.KindFloat:
		return r.Value, true
	case protocol.KindBool:
		if r.Bool {
			return 1, true
		}
		return 0, true
	case protocol.KindNone:
		if r.HasSum && !math.IsNaN(r.Sum) {
			return r.Sum, true
		}
	}
	return 0, false
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

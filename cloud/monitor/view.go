package monitor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/protocol"
)

// Errors of the query methods (the API answers them with 404 or 400).
var (
	ErrUnknownDevice = errors.New("monitor: unknown device")
	ErrUnknownMetric = errors.New("monitor: unknown metric")
	ErrNotNumeric    = errors.New("monitor: metric has no numeric values to chart")
	ErrBadQuery      = errors.New("monitor: bad query")
)

// Stats counts what a Monitor took in and dropped.
type Stats struct {
	Batches          uint64  `json:"batches"`
	Readings         uint64  `json:"readings"`   // accepted
	Duplicates       uint64  `json:"duplicates"` // a point already held (redelivery): ignored
	Late             uint64  `json:"late"`       // older than their series' newest point, taken in (backlog uploads)
	Future           uint64  `json:"future"`     // stamped more than FutureMargin after their receive time: counted, not charted
	PointsEvicted    uint64  `json:"points_evicted"`
	DevicesForgotten uint64  `json:"devices_forgotten"`
	Alerts           uint64  `json:"alerts"`
	Dropped          Dropped `json:"dropped"`
	// Gauges.
	Devices  int `json:"devices"`
	Gateways int `json:"gateways"`
	Series   int `json:"series"`
	Clients  int `json:"clients"`
}

// Dropped counts what did not fit a bound.
type Dropped struct {
	Devices        uint64 `json:"devices"`         // readings of new devices beyond MaxDevices
	Gateways       uint64 `json:"gateways"`        // records of new gateways beyond MaxGateways (their readings are kept)
	Metrics        uint64 `json:"metrics"`         // readings of new metrics beyond MaxMetricsPerDevice
	Series         uint64 `json:"series"`          // readings of new series beyond MaxSeries
	Shards         uint64 `json:"shards"`          // batches of new shards beyond MaxShards
	Alerts         uint64 `json:"alerts"`          // alerts pushed out of the MaxAlerts kept
	Clients        uint64 `json:"clients"`         // event clients dropped for falling ClientBuffer events behind
	ClientsRefused uint64 `json:"clients_refused"` // event connections refused beyond MaxClients
}

// Stats returns the counters and sizes.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	s := m.st
	s.Devices, s.Gateways, s.Series = len(m.devices), len(m.gateways), m.nseries
	m.mu.Unlock()
	s.Clients = m.hub.clients()
	s.Dropped.Clients, s.Dropped.ClientsRefused = m.hub.dropped.Load(), m.hub.refused.Load()
	return s
}

// Count is a total split into online and offline.
type Count struct {
	Total   int `json:"total"`
	Online  int `json:"online"`
	Offline int `json:"offline"`
}

// Overview summarises the fleet.
type Overview struct {
	Time              time.Time `json:"time"`
	Devices           Count     `json:"devices"` // gateways' own health devices excluded
	Gateways          Count     `json:"gateways"`
	IngestRate        float64   `json:"ingest_rate"` // new readings/s by stream arrival time, last 10 s
	Readings          uint64    `json:"readings"`
	Duplicates        uint64    `json:"duplicates"`
	Series            int       `json:"series"`
	Shards            int       `json:"shards"`
	MaxLagMs          int64     `json:"max_lag_ms"`
	AnomaliesLastHour int       `json:"anomalies_last_hour"`
	Alerts            uint64    `json:"alerts"`
	Dropped           Dropped   `json:"dropped"`
}

// Overview returns the fleet summary.
func (m *Monitor) Overview() Overview {
	now := m.now()
	m.mu.Lock()
	o := Overview{Time: now, IngestRate: m.fleetRate.perSec(now), Readings: m.st.Readings,
		Duplicates: m.st.Duplicates, Series: m.nseries, Shards: len(m.shards), Alerts: m.st.Alerts,
		Dropped: m.st.Dropped}
	for _, d := range m.devices {
		if d.agent {
			continue
		}
		o.Devices.count(m.online(now, d.lastSeen))
	}
	for _, g := range m.gateways {
		o.Gateways.count(m.online(now, g.lastSeen))
	}
	for _, s := range m.shards {
		o.MaxLagMs = max(o.MaxLagMs, s.lagMs)
	}
	min := now.Unix() / 60
	for _, c := range m.alertMin {
		if c.min > min-60 && c.min <= min {
			o.AnomaliesLastHour += c.n
		}
	}
	m.mu.Unlock()
	o.Dropped.Clients, o.Dropped.ClientsRefused = m.hub.dropped.Load(), m.hub.refused.Load()
	return o
}

func (c *Count) count(online bool) {
	c.Total++
	if online {
		c.Online++
	} else {
		c.Offline++
	}
}

func (m *Monitor) online(now, seen time.Time) bool { return now.Sub(seen) < m.opt.OfflineAfter }

// GatewayHealth is what a gateway's agent last reported about itself
// (null until reported).
type GatewayHealth struct {
	QueueDepth      *float64   `json:"queue_depth"`
	QueueFileBytes  *float64   `json:"queue_file_bytes"`
	OldestUnsentAge *float64   `json:"oldest_unsent_age_s"`
	Dropped         *float64   `json:"dropped"`
	ClockSynced     *bool      `json:"clock_synced"`
	UplinkOK        *bool      `json:"uplink_ok"`
	Reported        *time.Time `json:"reported"` // device time of the newest health reading
}

func (h *GatewayHealth) update(r *protocol.Reading) {
	f := func(p **float64) {
		if r.Kind == protocol.KindFloat {
			v := r.Value
			*p = &v
		}
	}
	b := func(p **bool) {
		if r.Kind == protocol.KindBool {
			v := r.Bool
			*p = &v
		}
	}
	switch r.Name {
	case protocol.HealthQueueDepth:
		f(&h.QueueDepth)
	case protocol.HealthQueueBytes:
		f(&h.QueueFileBytes)
	case protocol.HealthOldestUnsent:
		f(&h.OldestUnsentAge)
	case protocol.HealthDropped:
		f(&h.Dropped)
	case protocol.HealthClockSynced:
		b(&h.ClockSynced)
	case protocol.HealthUplinkOK:
		b(&h.UplinkOK)
	default:
		return
	}
	if t := time.UnixMicro(r.Time).UTC(); h.Reported == nil || t.After(*h.Reported) {
		h.Reported = &t
	}
}

// Gateway describes one gateway.
type Gateway struct {
	ID            string        `json:"id"`
	Online        bool          `json:"online"`
	LastSeen      time.Time     `json:"last_seen"`
	Devices       int           `json:"devices"` // its own health device excluded
	DevicesOnline int           `json:"devices_online"`
	Readings      uint64        `json:"readings"`
	Rate          float64       `json:"rate"`            // new readings/s by stream arrival time, last 10 s
	DelayMs       *float64      `json:"uplink_delay_ms"` // stream arrival − gateway receive time, newest record
	Health        GatewayHealth `json:"health"`
}

// Gateways lists the gateways by id.
func (m *Monitor) Gateways() []Gateway {
	now := m.now()
	m.mu.Lock()
	idx := make(map[string]int, len(m.gateways))
	out := make([]Gateway, 0, len(m.gateways))
	for _, g := range m.gateways {
		idx[g.id] = len(out)
		v := Gateway{ID: g.id, Online: m.online(now, g.lastSeen), LastSeen: g.lastSeen,
			Readings: g.readings, Rate: g.rate.perSec(now), Health: g.health}
		if g.hasDelay {
			v.DelayMs = ptr(float64(g.delayUs) / 1e3)
		}
		out = append(out, v)
	}
	for _, d := range m.devices {
		if i, ok := idx[d.gateway]; ok && !d.agent {
			out[i].Devices++
			if m.online(now, d.lastSeen) {
				out[i].DevicesOnline++
			}
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Gateway) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// DeviceSummary describes one device in a list.
type DeviceSummary struct {
	ID       string    `json:"id"`
	Gateway  string    `json:"gateway"`
	Agent    bool      `json:"agent,omitempty"` // the gateway's own health readings
	Online   bool      `json:"online"`
	LastSeen time.Time `json:"last_seen"`
	LastTime time.Time `json:"last_time"` // device time of its newest reading
	Readings uint64    `json:"readings"`
	Rate     float64   `json:"rate"` // new readings/s by stream arrival time, last 10 s
	// Device time − gateway receive time of the newest reading that had a
	// device time: clock offset plus MQTT delay. Null if none had.
	ClockSkewMs      *float64 `json:"clock_skew_ms"`
	UnsyncedReadings uint64   `json:"clock_unsynced_readings"` // received while the gateway clock was unsynchronised
	FutureReadings   uint64   `json:"clock_future_readings"`   // stamped beyond FutureMargin after reception: not charted
	Anomalies        uint64   `json:"anomalies"`
	Metrics          int      `json:"metrics"`
}

func (m *Monitor) summary(now time.Time, d *device) DeviceSummary {
	s := DeviceSummary{ID: d.id, Gateway: d.gateway, Agent: d.agent, Online: m.online(now, d.lastSeen),
		LastSeen: d.lastSeen, LastTime: time.UnixMicro(d.lastTime).UTC(), Readings: d.readings,
		Rate: d.rate.perSec(now), UnsyncedReadings: d.unsynced, FutureReadings: d.future, Anomalies: d.anomalies, Metrics: len(d.series)}
	if d.hasSkew {
		s.ClockSkewMs = ptr(float64(d.skewUs) / 1e3)
	}
	return s
}

// DeviceQuery filters and pages Devices.
type DeviceQuery struct {
	Q       string // substring of the id
	Gateway string
	Status  string // "", "online" or "offline"
	Agents  bool   // include the gateways' own health devices
	Offset  int
	Limit   int // default 100, at most 1000
}

// DevicePage is one page of devices, by id.
type DevicePage struct {
	Total   int             `json:"total"` // matching the filter
	Offset  int             `json:"offset"`
	Limit   int             `json:"limit"`
	Devices []DeviceSummary `json:"devices"`
}

// Devices lists the devices matching q, by id.
func (m *Monitor) Devices(q DeviceQuery) DevicePage {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 1000)
	q.Offset = max(q.Offset, 0)
	now := m.now()
	m.mu.Lock()
	var match []*device
	for _, d := range m.devices {
		if d.agent && !q.Agents || q.Q != "" && !strings.Contains(d.id, q.Q) ||
			q.Gateway != "" && d.gateway != q.Gateway {
			continue
		}
		if q.Status != "" && m.online(now, d.lastSeen) != (q.Status == "online") {
			continue
		}
		match = append(match, d)
	}
	slices.SortFunc(match, func(a, b *device) int { return strings.Compare(a.id, b.id) })
	p := DevicePage{Total: len(match), Offset: q.Offset, Limit: q.Limit, Devices: []DeviceSummary{}}
	for _, d := range match[min(q.Offset, len(match)):min(q.Offset+q.Limit, len(match))] {
		p.Devices = append(p.Devices, m.summary(now, d))
	}
	m.mu.Unlock()
	return p
}

// Metric describes one series of a device.
type Metric struct {
	Name     string    `json:"name"`
	Unit     string    `json:"unit"`
	Kind     string    `json:"kind"`            // number, bool, string, data
	Value    *float64  `json:"value,omitempty"` // last value (number, bool as 0/1)
	Str      *string   `json:"str,omitempty"`   // last value (string)
	LastTime time.Time `json:"last_time"`
	Count    uint64    `json:"count"`
}

// Device is one device with its metrics.
type Device struct {
	DeviceSummary
	Series []Metric `json:"series"`
}

// Device returns one device, or ErrUnknownDevice.
func (m *Monitor) Device(id string) (Device, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.devices[id]
	if d == nil {
		return Device{}, fmt.Errorf("%w %q", ErrUnknownDevice, id)
	}
	out := Device{DeviceSummary: m.summary(now, d), Series: make([]Metric, 0, len(d.series))}
	for name, s := range d.series {
		mt := Metric{Name: name, Unit: s.unit, Kind: s.kind, LastTime: time.UnixMicro(s.last).UTC(), Count: s.count}
		switch s.kind {
		case "number", "bool":
			mt.Value = ptr(s.value)
		case "string":
			mt.Str = ptr(s.str)
		}
		out.Series = append(out.Series, mt)
	}
	slices.SortFunc(out.Series, func(a, b Metric) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Windows the series API serves, and the rollup each is served from.
var windows = map[string]struct {
	d    time.Duration
	tier int
}{
	"5m":  {5 * time.Minute, 0},
	"1h":  {time.Hour, 1},
	"24h": {24 * time.Hour, 2},
}

// Series returns a window ("5m", "1h" or "24h") of one series ending at
// end (zero: at the series' newest point).
func (m *Monitor) Series(device, metric, window string, end time.Time) (SeriesData, error) {
	w, ok := windows[window]
	if !ok {
		return SeriesData{}, fmt.Errorf("%w: window %q: use 5m, 1h or 24h", ErrBadQuery, window)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.devices[device]
	if d == nil {
		return SeriesData{}, fmt.Errorf("%w %q", ErrUnknownDevice, device)
	}
	s := d.series[metric]
	if s == nil {
		return SeriesData{}, fmt.Errorf("%w %q of device %q", ErrUnknownMetric, metric, device)
	}
	if s.kind != "number" && s.kind != "bool" {
		return SeriesData{}, fmt.Errorf("%w: %q of device %q is %s", ErrNotNumeric, metric, device, s.kind)
	}
	e := s.last
	if !end.IsZero() {
		e = end.UnixMicro()
	}
	st := e - w.d.Microseconds()
	out := SeriesData{Device: device, Metric: metric, Unit: s.unit, Kind: s.kind, Window: window,
		Start: time.UnixMicro(st).UTC(), End: time.UnixMicro(e).UTC()}
	s.window(&out, st, e, w.tier)
	return out, nil
}

// Stream describes the stream's shards.
type Stream struct {
	Time   time.Time   `json:"time"`
	Shards []ShardView `json:"shards"`
	Error  string      `json:"error,omitempty"` // Options.Shards failed: only shards seen in batches are listed
}

// ShardView is one shard: as the backend lists it, with the rates and lag
// the monitor saw in its batches. Rates count only records with new
// readings, so redelivery does not inflate them.
type ShardView struct {
	ID                     string     `json:"id"`
	StartingHashKey        string     `json:"starting_hash_key"`
	EndingHashKey          string     `json:"ending_hash_key"`
	KeyspaceFraction       float64    `json:"keyspace_fraction"` // share of the 128-bit hash space (0 if unknown)
	Parent                 string     `json:"parent"`
	AdjacentParent         string     `json:"adjacent_parent"`
	Open                   bool       `json:"open"`
	Listed                 bool       `json:"listed"` // reported by Options.Shards (else only seen in batches)
	StartingSequenceNumber string     `json:"starting_sequence_number"`
	EndingSequenceNumber   string     `json:"ending_sequence_number"`
	RecordsPerSec          float64    `json:"records_per_sec"`
	BytesPerSec            float64    `json:"bytes_per_sec"`
	LimitRecordsPerSec     float64    `json:"limit_records_per_sec"`
	LimitBytesPerSec       float64    `json:"limit_bytes_per_sec"`
	Utilization            float64    `json:"utilization"` // the larger of the two rate/limit ratios
	LagMs                  *int64     `json:"lag_ms"`      // MillisBehindLatest of its last batch
	LastBatch              *time.Time `json:"last_batch"`
}

// Stream lists the shards (Options.Shards, merged with those seen).
func (m *Monitor) Stream(ctx context.Context) Stream {
	var listed []Shard
	var err error
	if m.opt.Shards != nil {
		listed, err = m.opt.Shards(ctx)
	}
	now := m.now()
	out := Stream{Time: now, Shards: []ShardView{}}
	if err != nil {
		out.Error = err.Error()
		listed = nil
	}
	byID := map[string]int{}
	for _, s := range listed {
		byID[s.ID] = len(out.Shards)
		out.Shards = append(out.Shards, ShardView{ID: s.ID, StartingHashKey: s.StartingHashKey,
			EndingHashKey: s.EndingHashKey, KeyspaceFraction: keyspaceFraction(s.StartingHashKey, s.EndingHashKey),
			Parent: s.Parent, AdjacentParent: s.AdjacentParent, Open: s.Open, Listed: true,
			StartingSequenceNumber: s.StartingSequenceNumber, EndingSequenceNumber: s.EndingSequenceNumber,
			LimitRecordsPerSec: cmp.Or(s.LimitRecordsPerSec, DefaultShardRecordsPerSec),
			LimitBytesPerSec:   cmp.Or(s.LimitBytesPerSec, DefaultShardBytesPerSec)})
	}
	m.mu.Lock()
	for _, o := range m.shards {
		i, ok := byID[o.id]
		if !ok {
			i = len(out.Shards)
			out.Shards = append(out.Shards, ShardView{ID: o.id, Open: true,
				LimitRecordsPerSec: DefaultShardRecordsPerSec, LimitBytesPerSec: DefaultShardBytesPerSec})
		}
		v := &out.Shards[i]
		v.RecordsPerSec, v.BytesPerSec = o.records.perSec(now), o.bytes.perSec(now)
		v.Utilization = max(v.RecordsPerSec/v.LimitRecordsPerSec, v.BytesPerSec/v.LimitBytesPerSec)
		v.LagMs, v.LastBatch = ptr(o.lagMs), ptr(o.lastBatch)
	}
	m.mu.Unlock()
	slices.SortFunc(out.Shards, func(a, b ShardView) int {
		return cmp.Or(cmp.Compare(len(a.ID), len(b.ID)), strings.Compare(a.ID, b.ID))
	})
	return out
}

var keyspace = new(big.Float).SetInt(new(big.Int).Lsh(big.NewInt(1), 128))

// keyspaceFraction is (end − start + 1) / 2^128 for decimal hash keys.
func keyspaceFraction(start, end string) float64 {
	s, ok1 := new(big.Int).SetString(start, 10)
	e, ok2 := new(big.Int).SetString(end, 10)
	if !ok1 || !ok2 || e.Cmp(s) < 0 {
		return 0
	}
	n := new(big.Int).Sub(e, s)
	n.Add(n, big.NewInt(1))
	f, _ := new(big.Float).Quo(new(big.Float).SetInt(n), keyspace).Float64()
	return f
}

// AlertEntry is an alert as the monitor keeps it.
type AlertEntry struct {
	ID uint64 `json:"id"` // rises by one per alert added
	// Incident is the alert's incident id (anomaly.Alert.ID, which this
	// entry's id hides in JSON).
	Incident string `json:"incident"`
	anomaly.Alert
	Received time.Time `json:"received"` // when AddAlert was called
	// Silenced: a silence (Options.Notes) covered its device and metric
	// when it was added; it was not sent to the webhook.
	Silenced bool `json:"silenced,omitempty"`
}

// AlertQuery filters Alerts.
type AlertQuery struct {
	Device, Metric string
	Since          time.Time // alerts with Time at or after it
	Limit          int       // default 100, at most MaxAlerts
}

// Alerts returns the kept alerts matching q, newest first.
func (m *Monitor) Alerts(q AlertQuery) []AlertEntry {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	out := []AlertEntry{}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := m.alerts.len() - 1; i >= 0 && len(out) < q.Limit; i-- {
		a := m.alerts.at(i)
		if q.Device != "" && a.Device != q.Device || q.Metric != "" && a.Metric != q.Metric ||
			!q.Since.IsZero() && a.Time.Before(q.Since) {
			continue
		}
		out = append(out, *a)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// overviewCache keeps the last Overview for a short while, so many event
// clients polling it cost one computation.
type overviewCache struct {
	mu sync.Mutex
	at time.Time
	ov Overview
}

func (m *Monitor) cachedOverview() Overview {
	now := m.now()
	m.ov.mu.Lock()
	defer m.ov.mu.Unlock()
	if m.ov.at.IsZero() || now.Sub(m.ov.at) >= m.opt.OverviewEvery/2 || now.Before(m.ov.at) {
		m.ov.ov, m.ov.at = m.Overview(), now
	}
	return m.ov.ov
}

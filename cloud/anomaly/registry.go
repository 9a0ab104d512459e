package anomaly

import (
	"container/list"
	"hash/maphash"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/internal/loglimit"
)

// Key names a series: one metric of one device.
type Key struct {
	Device string
	Metric string
}

// Alert is one event of an incident: a series (or a silent device) that
// became anomalous (EventOpen), still is (EventUpdate), or returned to
// normal (EventResolve). Its JSON is the record of the alerts stream and
// the body of the webhook (see the package documentation).
type Alert struct {
	ID     string    `json:"id"`    // the incident's, the same in all its events
	Event  Event     `json:"event"` // open, update or resolve
	Device string    `json:"device"`
	Metric string    `json:"metric"` // "" for a device-wide missing-data incident
	Time   time.Time `json:"time"`   // of the point (or sweep) that caused this event
	Score  float64   `json:"score"`  // that point's score (0 for a resolve)
	Kind   Kind      `json:"kind"`   // the incident's kind
	Value  float64   `json:"value"`  // that point's value (missing data: the last value)
	Peak   float64   `json:"peak"`   // the highest score of the incident so far
	Start  time.Time `json:"start"`  // when the incident opened
	// End is when it resolved (resolve events only).
	End time.Time `json:"end,omitzero"`
	// Expected is the range of values the detector expected when the
	// incident opened (absent for missing data).
	Expected Range `json:"expected,omitzero"`
	// Reason says why it resolved (resolve events only): ReasonNormal,
	// ReasonSettled, ReasonResumed or ReasonForgotten.
	Reason string `json:"reason,omitempty"`
}

// RegistryStats counts what a Registry did.
type RegistryStats struct {
	Series  int    // series held now
	Created uint64 // detectors made (a series evicted and seen again counts twice)
	Evicted uint64 // idle series forgotten to make room for new ones
	// Unscored counts the points of new series that found the registry
	// full of series active within EvictIdle: not scored, no detector
	// made.
	Unscored uint64
	Points   uint64 // points scored
	Late     uint64 // points not after their series' last one: not scored
	Future   uint64 // points stamped beyond Config.FutureMargin after their receive time: not scored
	Alerts   uint64 // incidents opened (open events)
	Updates  uint64 // update events
	Resolved uint64 // incidents resolved (resolve events)
}

// Registry holds one Detector per series for a live consumer, at most
// maxSeries of them. When a new series finds it full, the least recently
// updated series is forgotten (counted in Evicted) if its last point is at
// least EvictIdle (1h) older than the new one's; otherwise the new series
// gets no detector and its points are not scored (counted in Unscored)
// until a place frees. So the series being scored keep their detectors: a
// flood of new series (a misbehaving gateway, a fleet larger than the
// bound) cannot evict them, nor make the registry build and drop a
// detector at every point. Both are logged, at most once a minute each. It
// is safe for concurrent use; series are spread over independently locked
// shards, and the bound is kept per shard.
type Registry struct {
	cfg    Config
	seed   maphash.Seed
	max    int
	log    *slog.Logger
	full   loglimit.Limiter // "no room" lines
	evict  loglimit.Limiter // "evicted" lines
	shards [regShards]regShard

	mu      sync.Mutex                  // after a shard's
	missing map[string]*missingIncident // open missing-data incidents by device
}

// EvictIdle is how long a series must have been silent (in device time,
// against the new series' point) before a full Registry forgets it for a
// new one.
const EvictIdle = time.Hour

const regShards = 16

type regShard struct {
	mu       sync.Mutex
	max      int
	series   map[Key]*list.Element // of *regEntry
	lru      list.List             // front: most recent
	created  uint64
	evicted  uint64
	unscored uint64
	points   uint64
	late     uint64
	future   uint64
	alerts   uint64
	updates  uint64
	resolve  uint64
}

type regEntry struct {
	key    Key
	det    *Detector
	inc    incident         // the open incident of the series' points
	silent *missingIncident // the missing-data incident of the current silence (Sweep)
	// An alert held back until the series shows whether a jump was a
	// spike (it comes back) or the start of a level shift (it stays).
	held    Alert
	heldExp Range
	holds   bool
	base    float64 // the level before the jump
	jump    float64
	waited  int
}

// settleMax is how many points a spike alert waits for the series to come
// back before it is called a level shift.
const settleMax = 8

// Memory. A series costs its Detector plus the registry's entry: about
// 82 KB while the detector learns (its first ~620 points), about 50 KB
// after (TestRegistryMemory measures both; SeriesBytes, 84,000 bytes, is
// the figure with a margin). The bound must hold the worst case, every
// series learning (a fleet just started, or a flood of new series):
// DefaultMaxSeries, 6,000 series, is at most 481 MiB of live heap, so it
// fits a 512 MiB budget (about 285 MiB once learnt). Size
// anomaly.max_series from SeriesBytes per series.
const (
	DefaultMaxSeries = 6000
	SeriesBytes      = 84_000
)

// RegistryOption configures a Registry.
type RegistryOption func(*Registry)

// WithLogger logs the registry's evictions and the series it has no
// room for (at most one line a minute each); the default discards them.
func WithLogger(l *slog.Logger) RegistryOption { return func(r *Registry) { r.log = l } }

// NewRegistry returns a registry of at most maxSeries series (rounded up
// to a multiple of 16; DefaultMaxSeries if maxSeries <= 0), whose
// detectors use cfg.
func NewRegistry(cfg Config, maxSeries int, opts ...RegistryOption) *Registry {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	r := &Registry{cfg: cfg.withDefaults(), seed: maphash.MakeSeed(), log: slog.New(slog.DiscardHandler),
		missing: map[string]*missingIncident{}}
	for _, o := range opts {
		o(r)
	}
	per := (maxSeries + regShards - 1) / regShards
	r.max = per * regShards
	for i := range r.shards {
		r.shards[i].max = per
		r.shards[i].series = make(map[Key]*list.Element)
	}
	return r
}

func (r *Registry) shard(k Key) *regShard {
	return &r.shards[maphash.Comparable(r.seed, k)%regShards]
}

// Observe scores the next point of a series (making its detector on first
// sight) and returns the detector's Result and the events of the
// series' incidents that this point caused, usually none (see the package
// documentation). A point whose time is not after the series' last one (a
// redelivery, or a late upload) is not scored and counted in Stats.Late.
//
// An incident opens at a point scored at least Config.AlertThreshold
// when the series has none open (and, for a KindPattern score, once the
// slowest pattern memory has learnt and adapted its vigilance once: 936
// points with the default Scales); its open event carries the time,
// value and score of that point, and the range of values expected before
// it.
// The open event of a sudden jump is held until the series shows what the
// jump was (up to 8 more points): a spike if the series comes back at
// least half way, else a level shift; it is then returned with the point
// that settled it. While the incident is open, a new alarm gives an
// update event (when it raises the peak, else at most once per
// Config.AlertHoldoff points). The incident resolves once
// Config.AlertHoldoff points in a row score below half the threshold and
// lie in the expected range (ReasonNormal), or after ten times as many
// such points outside that range (ReasonSettled: a new normal), so the
// return of a level shift or a drift is part of its incident. The first
// point of a series that Sweep found silent resolves the missing-data
// incident (ReasonResumed). A series forgotten to keep the registry's
// bound resolves its open incidents (ReasonForgotten); their events come
// with the point that made the registry forget it.
func (r *Registry) Observe(device, metric string, t time.Time, v float64) (Result, []Alert) {
	return r.ObserveReceived(device, metric, t, time.Time{}, v)
}

// ObserveReceived is Observe for a point received at received (the zero
// time: unknown, as with Observe). A point stamped more than
// Config.FutureMargin after received is not scored and does not advance
// its series' clock (so the series' later points are still scored); it is
// counted in Stats.Future.
func (r *Registry) ObserveReceived(device, metric string, t, received time.Time, v float64) (Result, []Alert) {
	k := Key{device, metric}
	s := r.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.cfg.FutureMargin > 0 && !received.IsZero() && t.Sub(received) > r.cfg.FutureMargin {
		s.future++
		return Result{}, nil
	}
	e, out := r.get(s, k, t)
	if e == nil {
		return Result{}, nil
	}
	if e.det.n > 0 && !t.After(e.det.prevT) {
		// A redelivered point, or one uploaded late (a gateway's backlog
		// after an outage travels beside its live data): a streaming
		// detector has moved on, so it is not scored.
		s.late++
		return Result{}, s.count(out)
	}
	exp := e.det.expected()
	res := e.det.Update(t, v)
	s.points++
	swept := e.silent != nil
	if swept {
		if a, ok := r.resume(e, t, v); ok {
			out = append(out, a)
		}
	}
	if e.holds {
		e.waited++
		switch {
		case math.Abs(v-e.base) <= math.Abs(e.jump)/2:
		case e.waited >= settleMax:
			e.held.Kind = KindLevelShift
		default:
			return res, s.count(out)
		}
		e.holds = false
		out = append(out, e.openIncident(e.held, e.heldExp))
	}
	if e.inc.open {
		if a, ok := r.follow(e, res, t, v); ok {
			out = append(out, a)
		}
		return res, s.count(out)
	}
	switch {
	case res.Score < r.cfg.AlertThreshold:
		return res, s.count(out)
	case res.Kind == KindPattern && e.det.learning():
		return res, s.count(out) // the pattern memory is not calibrated yet
	case swept && res.Kind == KindMissing:
		return res, s.count(out) // Sweep reported this gap
	}
	a := Alert{Device: device, Metric: metric, Time: t, Score: res.Score, Kind: res.Kind, Value: v}
	if res.Kind == KindSpike && e.det.jump != 0 {
		e.held, e.heldExp, e.holds, e.waited = a, exp, true, 0
		e.jump = e.det.jump
		e.base = v - e.jump
		return res, s.count(out)
	}
	out = append(out, e.openIncident(a, exp))
	return res, s.count(out)
}

// count counts the events of out and returns it.
func (s *regShard) count(out []Alert) []Alert {
	for i := range out {
		switch out[i].Event {
		case EventOpen:
			s.alerts++
		case EventUpdate:
			s.updates++
		case EventResolve:
			s.resolve++
		}
	}
	return out
}

// resume ends the silence of series e: the series follows the
// missing-data incident until its scores are back to normal (so the jump
// of a series that moved while it was silent is part of the incident),
// unless the missing-data incident is already resolved or the series has
// an incident of its own open (or held): then it lets go of the missing-data
// incident, and returns its resolve event if it was the last series to
// hold it.
func (r *Registry) resume(e *regEntry, t time.Time, v float64) (Alert, bool) {
	m := e.silent
	e.silent = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.inc.open || e.holds {
		// The series follows its own incident: it no longer holds the
		// missing-data one open.
		a, ok := r.releaseMissing(m, t, v)
		a.Reason = ReasonResumed
		return a, ok
	}
	m.series--
	if m.resolved {
		return Alert{}, false
	}
	m.resuming++
	e.inc = incident{open: true, id: m.alert.ID, start: m.alert.Start, kind: KindMissing, peak: m.alert.Peak, missing: m}
	if r.missing[m.alert.Device] == m {
		delete(r.missing, m.alert.Device) // a new silence is a new incident
	}
	return Alert{}, false
}

// follow advances e's open incident by one point; a missing-data
// incident's events are made under r.mu.
func (r *Registry) follow(e *regEntry, res Result, t time.Time, v float64) (Alert, bool) {
	if e.inc.missing == nil {
		return e.followIncident(&r.cfg, res, t, v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return e.followIncident(&r.cfg, res, t, v)
}

// releaseMissing drops a series' hold on m (forgotten, or resumed into
// an incident of its own); it returns m's resolve event (ReasonForgotten)
// if that was the last series holding it open. r.mu is held.
func (r *Registry) releaseMissing(m *missingIncident, t time.Time, v float64) (Alert, bool) {
	m.series--
	if m.resolved || m.series > 0 || m.resuming > 0 {
		return Alert{}, false
	}
	m.resolved = true
	if r.missing[m.alert.Device] == m {
		delete(r.missing, m.alert.Device)
	}
	a := m.alert
	a.Event, a.Time, a.Value, a.Score, a.End, a.Reason = EventResolve, t, v, 0, t, ReasonForgotten
	return a, true
}

// get returns the entry of k, made if there is room for a series whose
// point is at t (see Registry), or nil; and the resolve events of the
// series forgotten to make room for it. s.mu is held.
func (r *Registry) get(s *regShard, k Key, t time.Time) (*regEntry, []Alert) {
	if el, ok := s.series[k]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*regEntry), nil
	}
	var out []Alert
	if s.lru.Len() >= s.max {
		old := s.lru.Back()
		oe := old.Value.(*regEntry)
		if oe.det.n > 0 && t.Sub(oe.det.prevT) < EvictIdle {
			s.unscored++
			if ok, n := r.full.Allow(); ok {
				r.log.Warn("anomaly detectors full: points of new series are not scored until a series has been silent for an hour; raise anomaly.max_series (84 KB of memory per series)",
					"max_series", r.max, "device", k.Device, "metric", k.Metric, "suppressed", n)
			}
			return nil, nil
		}
		out = r.drop(oe, out)
		delete(s.series, oe.key)
		s.lru.Remove(old)
		s.evicted++
		if ok, n := r.evict.Allow(); ok {
			r.log.Info("anomaly detectors full: forgot a silent series for a new one", "max_series", r.max,
				"forgotten_device", oe.key.Device, "forgotten_metric", oe.key.Metric, "device", k.Device, "metric", k.Metric, "suppressed", n)
		}
	}
	e := &regEntry{key: k, det: NewDetector(r.cfg)}
	s.series[k] = s.lru.PushFront(e)
	s.created++
	return e, out
}

// drop resolves the incidents of a series being forgotten, appending
// their events to out. Its shard's lock is held.
func (r *Registry) drop(e *regEntry, out []Alert) []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := e.inc.missing; m != nil {
		// Following a missing-data incident: this series no longer
		// holds it open.
		m.series++ // releaseMissing takes it back
		m.resuming--
		e.inc = incident{}
		if a, ok := r.releaseMissing(m, e.det.prevT, e.det.prevV); ok {
			out = append(out, a)
		}
	}
	if a, ok := e.forgetIncident(); ok {
		out = append(out, a)
	}
	if m := e.silent; m != nil {
		e.silent = nil
		if a, ok := r.releaseMissing(m, e.det.prevT, e.det.prevV); ok {
			out = append(out, a)
		}
	}
	return out
}

// Sweep opens a missing-data incident (KindMissing) for the series that
// have gone silent: their detector has warmed up (Config.Warmup points)
// and their last point is at least Config.Silence learnt cadences (and
// Config.MinSilence) older than now. The series of one device that go
// silent in one sweep share one incident: device-wide (Metric "" and
// Value 0) when there are several, else the series' own. A series that
// goes silent while its device has a missing-data incident open joins
// it. Each open event carries now, as its score the share of the
// expected points that did not arrive, 1 - cadence/silence (0.8 at 5
// cadences; the highest of the series'), and, for one series, its last
// value. The first of the silent series to send a point again resolves
// the incident (Observe). Call Sweep periodically, for example every
// ten seconds, from one goroutine; its cost is linear in the number of
// series held, and it holds every shard's lock while it runs.
func (r *Registry) Sweep(now time.Time) []Alert {
	for i := range r.shards {
		r.shards[i].mu.Lock()
	}
	defer func() {
		for i := range r.shards {
			r.shards[i].mu.Unlock()
		}
	}()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Alert
	opened := map[string]int{} // device → index in out
	for i := range r.shards {
		s := &r.shards[i]
		for el := s.lru.Front(); el != nil; el = el.Next() {
			e := el.Value.(*regEntry)
			d := e.det
			if e.silent != nil || d.n <= r.cfg.Warmup || d.cadence <= 0 {
				continue
			}
			gap := now.Sub(d.prevT).Seconds()
			if gap < r.cfg.Silence*d.cadence || gap < r.cfg.MinSilence.Seconds() {
				continue
			}
			dev := e.key.Device
			m := r.missing[dev]
			if m == nil {
				a := Alert{ID: incidentID(dev, e.key.Metric, now), Event: EventOpen, Device: dev, Metric: e.key.Metric,
					Time: now, Score: 1 - d.cadence/gap, Kind: KindMissing, Value: d.prevV, Start: now}
				a.Peak = a.Score
				m = &missingIncident{alert: a}
				r.missing[dev] = m
				opened[dev] = len(out)
				out = append(out, a)
				s.alerts++
			} else if j, ok := opened[dev]; ok {
				// Another series of the device in this sweep: the
				// incident is the device's.
				if m.alert.Metric != "" {
					m.alert.Metric, m.alert.Value = "", 0
					m.alert.ID = incidentID(dev, "", now)
				}
				m.alert.Score = max(m.alert.Score, 1-d.cadence/gap)
				m.alert.Peak = m.alert.Score
				out[j] = m.alert
			}
			m.series++
			e.silent = m
		}
	}
	return out
}

// Forget drops a series (for example a decommissioned device); it
// reports whether the registry held it, and returns the resolve events
// (ReasonForgotten) of its open incidents.
func (r *Registry) Forget(device, metric string) ([]Alert, bool) {
	k := Key{device, metric}
	s := r.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.series[k]
	if !ok {
		return nil, false
	}
	out := r.drop(el.Value.(*regEntry), nil)
	delete(s.series, k)
	s.lru.Remove(el)
	return s.count(out), true
}

// Stats returns the registry's counters.
func (r *Registry) Stats() RegistryStats {
	var st RegistryStats
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		st.Series += s.lru.Len()
		st.Created += s.created
		st.Evicted += s.evicted
		st.Unscored += s.unscored
		st.Points += s.points
		st.Late += s.late
		st.Future += s.future
		st.Alerts += s.alerts
		st.Updates += s.updates
		st.Resolved += s.resolve
		s.mu.Unlock()
	}
	return st
}

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

// Alert is one anomaly event of one series, raised by a Registry when the
// series' score reaches Config.AlertThreshold.
type Alert struct {
	Device string    `json:"device"`
	Metric string    `json:"metric"`
	Time   time.Time `json:"time"`
	Score  float64   `json:"score"`
	Kind   Kind      `json:"kind"`
	Value  float64   `json:"value"`
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
	Alerts   uint64 // alerts raised
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
}

type regEntry struct {
	key      Key
	det      *Detector
	sinceAlr int  // points since the last alert
	silent   bool // Sweep has raised a KindMissing alert for the current silence
	// An alert held back until the series shows whether a jump was a
	// spike (it comes back) or the start of a level shift (it stays).
	held   Alert
	holds  bool
	base   float64 // the level before the jump
	jump   float64
	waited int
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
	r := &Registry{cfg: cfg.withDefaults(), seed: maphash.MakeSeed(), log: slog.New(slog.DiscardHandler)}
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
// sight). A point whose time is not after the series' last one (a
// redelivery, or a late upload) is not scored and counted in Stats.Late. It returns the detector's Result and, when there is one, an
// Alert: a point scored at least Config.AlertThreshold and the series had
// not alerted in the Config.AlertHoldoff points before. The detector
// withholds repeated scores of one event, so one event gives one alert.
//
// An alert carries the time, value and score of the point that raised it.
// Most are returned with that point; an alert for a sudden jump is held
// until the series shows what the jump was (up to 8 more points): a spike
// if the series comes back at least half way, else a level shift. It is
// then returned with the point that settled it. A held alert is dropped
// if its series is forgotten.
func (r *Registry) Observe(device, metric string, t time.Time, v float64) (Result, Alert, bool) {
	return r.ObserveReceived(device, metric, t, time.Time{}, v)
}

// ObserveReceived is Observe for a point received at received (the zero
// time: unknown, as with Observe). A point stamped more than
// Config.FutureMargin after received is not scored and does not advance
// its series' clock (so the series' later points are still scored); it is
// counted in Stats.Future.
func (r *Registry) ObserveReceived(device, metric string, t, received time.Time, v float64) (Result, Alert, bool) {
	k := Key{device, metric}
	s := r.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.cfg.FutureMargin > 0 && !received.IsZero() && t.Sub(received) > r.cfg.FutureMargin {
		s.future++
		return Result{}, Alert{}, false
	}
	e := r.get(s, k, t)
	if e == nil {
		return Result{}, Alert{}, false
	}
	if e.det.n > 0 && !t.After(e.det.prevT) {
		// A redelivered point, or one uploaded late (a gateway's backlog
		// after an outage travels beside its live data): a streaming
		// detector has moved on, so it is not scored.
		s.late++
		return Result{}, Alert{}, false
	}
	res := e.det.Update(t, v)
	s.points++
	e.sinceAlr++
	swept := e.silent
	e.silent = false
	if e.holds {
		e.waited++
		switch {
		case math.Abs(v-e.base) <= math.Abs(e.jump)/2:
		case e.waited >= settleMax:
			e.held.Kind = KindLevelShift
		default:
			return res, Alert{}, false
		}
		e.holds = false
		s.alerts++
		return res, e.held, true
	}
	if res.Score < r.cfg.AlertThreshold || e.sinceAlr <= r.cfg.AlertHoldoff {
		return res, Alert{}, false
	}
	if swept && res.Kind == KindMissing {
		return res, Alert{}, false // Sweep reported this gap already
	}
	e.sinceAlr = 0
	a := Alert{Device: device, Metric: metric, Time: t, Score: res.Score, Kind: res.Kind, Value: v}
	if res.Kind == KindSpike && e.det.jump != 0 {
		e.held, e.holds, e.waited = a, true, 0
		e.jump = e.det.jump
		e.base = v - e.jump
		return res, Alert{}, false
	}
	s.alerts++
	return res, a, true
}

// get returns k's entry, making it if there is room for a series whose
// point is at t (see Registry), or nil. s.mu is held.
func (r *Registry) get(s *regShard, k Key, t time.Time) *regEntry {
	if el, ok := s.series[k]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*regEntry)
	}
	if s.lru.Len() >= s.max {
		old := s.lru.Back()
		oe := old.Value.(*regEntry)
		if oe.det.n > 0 && t.Sub(oe.det.prevT) < EvictIdle {
			s.unscored++
			if ok, n := r.full.Allow(); ok {
				r.log.Warn("anomaly detectors full: points of new series are not scored until a series has been silent for an hour; raise anomaly.max_series (84 KB of memory per series)",
					"max_series", r.max, "device", k.Device, "metric", k.Metric, "suppressed", n)
			}
			return nil
		}
		delete(s.series, oe.key)
		s.lru.Remove(old)
		s.evicted++
		if ok, n := r.evict.Allow(); ok {
			r.log.Info("anomaly detectors full: forgot a silent series for a new one", "max_series", r.max,
				"forgotten_device", oe.key.Device, "forgotten_metric", oe.key.Metric, "device", k.Device, "metric", k.Metric, "suppressed", n)
		}
	}
	e := &regEntry{key: k, det: NewDetector(r.cfg), sinceAlr: r.cfg.AlertHoldoff}
	s.series[k] = s.lru.PushFront(e)
	s.created++
	return e
}

// Sweep raises a KindMissing alert for every series that has gone
// silent: its detector has warmed up (Config.Warmup points) and its last
// point is at least Config.Silence learnt cadences older than now. It
// raises one alert per silence; the series' next point ends the silence
// (and raises no second KindMissing alert for the same gap). The alert
// carries now, the series' last value, and as its score the share of the
// expected points that did not arrive, 1 - cadence/silence (0.8 at 5
// cadences). Call it periodically, for example every minute, from one
// goroutine; its cost is linear in the number of series held.
func (r *Registry) Sweep(now time.Time) []Alert {
	var out []Alert
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for el := s.lru.Front(); el != nil; el = el.Next() {
			e := el.Value.(*regEntry)
			d := e.det
			if e.silent || d.n <= r.cfg.Warmup || d.cadence <= 0 {
				continue
			}
			gap := now.Sub(d.prevT).Seconds()
			if gap < r.cfg.Silence*d.cadence || gap < r.cfg.MinSilence.Seconds() {
				continue
			}
			e.silent = true
			s.alerts++
			out = append(out, Alert{Device: e.key.Device, Metric: e.key.Metric, Time: now,
				Score: 1 - d.cadence/gap, Kind: KindMissing, Value: d.prevV})
		}
		s.mu.Unlock()
	}
	return out
}

// Forget drops a series (for example a decommissioned device); it
// reports whether the registry held it.
func (r *Registry) Forget(device, metric string) bool {
	k := Key{device, metric}
	s := r.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.series[k]
	if ok {
		delete(s.series, k)
		s.lru.Remove(el)
	}
	return ok
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
		s.mu.Unlock()
	}
	return st
}

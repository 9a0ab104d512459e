// Package model is the simulator's ground truth: deterministic sensor values
// for every device and metric of a fleet, anomalies injected into them, and
// the truth file that records those anomalies (and the fleet's faults) so
// that detectors can be scored.
//
// Everything is a pure function of the seed: the value of a metric at a time
// mixes hashes of (seed, device, metric, time step), so two runs with the
// same seed, devices and events give the same values, whatever the order
// and concurrency of the calls. Value does not allocate.
package model

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultNoiseStep is how long one noise draw lasts unless WithNoiseStep
// says otherwise: values asked for within one step share their noise.
const DefaultNoiseStep = 10 * time.Millisecond

const dayNs = int64(24 * time.Hour)

// Option configures a Fleet.
type Option func(*config)

type config struct {
	profiles  map[string]Profile
	noiseStep time.Duration
}

// WithProfile sets the profile of metric (and of every metric it prefixes,
// unless a longer name has its own), replacing a default one. For example
// WithProfile(model.Voltage, p) with p.Max = 5 for a 5 V reference.
func WithProfile(metric string, p Profile) Option {
	return func(c *config) { c.profiles[metric] = p }
}

// WithNoiseStep sets how long one noise draw lasts (default
// DefaultNoiseStep). Use a step no longer than the sampling interval, or
// consecutive samples share their noise.
func WithNoiseStep(d time.Duration) Option {
	return func(c *config) { c.noiseStep = d }
}

// Fleet is the ground truth of a fleet of devices. It is safe for
// concurrent use.
type Fleet struct {
	seed     int64
	key      uint64
	start    time.Time
	startNs  int64
	stepNs   int64
	profiles map[string]Profile // read-only after NewFleet

	mu      sync.Mutex
	devices map[string]*Device
}

// NewFleet returns the model of a fleet whose random choices all derive
// from seed. start is when the fleet starts: per-device drifts are zero then.
func NewFleet(seed int64, start time.Time, opts ...Option) (*Fleet, error) {
	c := config{profiles: DefaultProfiles(), noiseStep: DefaultNoiseStep}
	for _, o := range opts {
		o(&c)
	}
	if c.noiseStep <= 0 {
		return nil, fmt.Errorf("model: noise step %s must be positive", c.noiseStep)
	}
	for name, p := range c.profiles {
		if name == "" {
			return nil, fmt.Errorf("model: profile with an empty metric name")
		}
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("model: profile %q: %w", name, err)
		}
	}
	return &Fleet{
		seed:     seed,
		key:      splitmix64(uint64(seed)),
		start:    start,
		startNs:  start.UnixNano(),
		stepNs:   int64(c.noiseStep),
		profiles: c.profiles,
		devices:  make(map[string]*Device),
	}, nil
}

// Seed returns the fleet's seed.
func (f *Fleet) Seed() int64 { return f.seed }

// Start returns the fleet's start time.
func (f *Fleet) Start() time.Time { return f.start }

// Profile returns the profile that metric uses: the profile of that exact
// name, else the one of the longest name that prefixes metric ("voltage3"
// uses "voltage"). ok is false when no profile matches; such a metric's
// values are NaN.
func (f *Fleet) Profile(metric string) (p Profile, ok bool) {
	_, p, ok = lookupProfile(f.profiles, metric)
	return p, ok
}

// Device returns the device with this id, creating it on first use. Hold on
// to the result rather than calling Device per sample.
func (f *Fleet) Device(id string) *Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[id]
	if !ok {
		key := mix(f.key, hashString(id))
		d = &Device{
			fleet:  f,
			id:     id,
			key:    key,
			jitter: 2*uniform(mix(key, hashString("phase"))) - 1,
		}
		f.devices[id] = d
	}
	return d
}

// Inject injects events into their devices (Event.Device). It checks every
// event first and injects none if one is invalid.
func (f *Fleet) Inject(events ...Event) error {
	for i, e := range events {
		if err := checkInject(e); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	for _, e := range events {
		if err := f.Device(e.Device).Inject(e); err != nil {
			return err // cannot happen: checked above
		}
	}
	return nil
}

// Device is one device of a fleet: the truth of its metrics and the events
// injected into it. It is safe for concurrent use.
type Device struct {
	fleet  *Fleet
	id     string
	key    uint64
	jitter float64 // in [-1, 1): share of PhaseJitter, common to all metrics

	mu     sync.Mutex                         // serialises writers of series and events
	series atomic.Pointer[map[string]*series] // copy on write
	events atomic.Pointer[eventList]          // every injected event
}

// ID returns the device's id.
func (d *Device) ID() string { return d.id }

// Value returns the true value of metric at t, anomalies included, clamped
// to the metric's physical limits. It is NaN for a metric without a profile
// (see Fleet.Profile). It does not allocate once the metric has been seen.
func (d *Device) Value(metric string, t time.Time) float64 {
	return d.seriesFor(metric).value(t.UnixNano())
}

// Dropout reports whether a dropout event silences the device at t.
func (d *Device) Dropout(t time.Time) bool {
	_, ok := d.Active(t, KindDropout)
	return ok
}

// Active returns an event of this kind injected into the device that is
// active at t (any metric), if there is one.
func (d *Device) Active(t time.Time, kind string) (Event, bool) {
	l := d.events.Load()
	if l == nil {
		return Event{}, false
	}
	ns := t.UnixNano()
	for i := l.first(ns); i < len(l.evs) && l.evs[i].start <= ns; i++ {
		if e := &l.evs[i]; ns < e.end && e.Kind == kind {
			return e.Event, true
		}
	}
	return Event{}, false
}

// Events returns the events injected into the device, by start time.
func (d *Device) Events() []Event {
	l := d.events.Load()
	if l == nil {
		return nil
	}
	out := make([]Event, len(l.evs))
	for i := range l.evs {
		out[i] = l.evs[i].Event
	}
	return out
}

// Inject adds an event to the device. e.Device may be empty (it is set to
// the device's id) and must otherwise be the id. The kind must be one of
// Kinds, End must be after Start; spike, level_shift, drift, stuck and
// noise_burst need a Metric, dropout must have none; noise_burst needs a
// Magnitude >= 0. A stuck metric keeps the value it has at Start given the
// events injected so far.
func (d *Device) Inject(e Event) error {
	if e.Device == "" {
		e.Device = d.id
	}
	if e.Device != d.id {
		return fmt.Errorf("%w: event for device %q injected into %q", ErrInvalidEvent, e.Device, d.id)
	}
	if err := checkInject(e); err != nil {
		return err
	}
	ie := event{Event: e, start: e.Start.UnixNano(), end: e.End.UnixNano(), op: opOf(e.Kind)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if metricKind(e.Kind) {
		s := d.seriesLocked(e.Metric)
		if ie.op == opStuck {
			ie.frozen = s.value(ie.start)
		}
		s.events.Store(s.events.Load().with(ie))
	}
	d.events.Store(d.events.Load().with(ie))
	return nil
}

// checkInject checks what Inject needs beyond Event.Validate.
func checkInject(e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	switch {
	case !knownKind(e.Kind):
		return fmt.Errorf("%w: unknown kind %q (want one of %v)", ErrInvalidEvent, e.Kind, Kinds())
	case !e.End.After(e.Start):
		return fmt.Errorf("%w: %s on %q is empty: End must be after Start", ErrInvalidEvent, e.Kind, e.Device)
	case metricKind(e.Kind) && e.Metric == "":
		return fmt.Errorf("%w: %s on %q needs a metric", ErrInvalidEvent, e.Kind, e.Device)
	case e.Kind == KindDropout && e.Metric != "":
		return fmt.Errorf("%w: dropout silences the whole device %q: leave Metric (%q) empty", ErrInvalidEvent, e.Device, e.Metric)
	case e.Kind == KindNoiseBurst && e.Magnitude < 0:
		return fmt.Errorf("%w: noise_burst on %q has negative factor %g", ErrInvalidEvent, e.Device, e.Magnitude)
	}
	return nil
}

func (d *Device) seriesFor(metric string) *series {
	if m := d.series.Load(); m != nil {
		if s, ok := (*m)[metric]; ok {
			return s
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seriesLocked(metric)
}

// seriesLocked returns the series of metric, creating it; d.mu is held.
func (d *Device) seriesLocked(metric string) *series {
	old := d.series.Load()
	if old != nil {
		if s, ok := (*old)[metric]; ok {
			return s
		}
	}
	s := d.newSeries(metric)
	m := make(map[string]*series, 1+len(ptrMap(old)))
	for k, v := range ptrMap(old) {
		m[k] = v
	}
	m[metric] = s
	d.series.Store(&m)
	return s
}

func ptrMap(m *map[string]*series) map[string]*series {
	if m == nil {
		return nil
	}
	return *m
}

func (d *Device) newSeries(metric string) *series {
	f := d.fleet
	name, p, ok := lookupProfile(f.profiles, metric)
	s := &series{p: p, ok: ok, startNs: f.startNs, stepNs: f.stepNs}
	if !ok {
		return s
	}
	s.key = mix(d.key, hashString(metric))
	s.offset = p.Spread * normal(mix(s.key, hashString("offset")))
	s.driftPerNs = p.Drift * normal(mix(s.key, hashString("drift"))) / float64(dayNs)
	s.peakNs = int64(p.Peak) + int64(d.jitter*float64(p.PhaseJitter))
	if p.Weather != 0 {
		// The weather is the fleet's: it depends on the seed and the
		// profile, not on the device.
		wk := mix(f.key, hashString(name))
		s.wPeriod1 = int64(p.WeatherPeriod)
		s.wPeriod2 = max(int64(float64(p.WeatherPeriod)*0.37), 1)
		s.wPhase1 = 2 * math.Pi * uniform(mix(wk, 1))
		s.wPhase2 = 2 * math.Pi * uniform(mix(wk, 2))
	}
	return s
}

// series is the truth of one metric of one device.
type series struct {
	p                  Profile
	ok                 bool
	key                uint64
	startNs, stepNs    int64
	offset, driftPerNs float64
	peakNs             int64
	wPeriod1, wPeriod2 int64
	wPhase1, wPhase2   float64
	events             atomic.Pointer[eventList] // anomalies of this metric
}

func (s *series) value(ns int64) float64 {
	if !s.ok {
		return math.NaN()
	}
	noise, add := 1.0, 0.0
	if l := s.events.Load(); l != nil {
		for i := l.first(ns); i < len(l.evs) && l.evs[i].start <= ns; i++ {
			e := &l.evs[i]
			if ns >= e.end {
				continue
			}
			switch e.op {
			case opAdd:
				add += e.Magnitude
			case opRamp:
				add += e.Magnitude * float64(ns-e.start) / float64(e.end-e.start)
			case opNoise:
				noise *= e.Magnitude
			case opStuck:
				return e.frozen
			}
		}
	}
	return s.clamp(s.raw(ns, noise) + add)
}

// raw is the value before anomalies and clamping, with the noise scaled.
func (s *series) raw(ns int64, noise float64) float64 {
	p := &s.p
	v := p.Base + s.offset
	if p.Diurnal != 0 {
		v += p.Diurnal * math.Cos(2*math.Pi*float64(floorMod(ns-s.peakNs, dayNs))/float64(dayNs))
	}
	if p.Weather != 0 {
		a1 := 2*math.Pi*float64(floorMod(ns, s.wPeriod1))/float64(s.wPeriod1) + s.wPhase1
		a2 := 2*math.Pi*float64(floorMod(ns, s.wPeriod2))/float64(s.wPeriod2) + s.wPhase2
		v += p.Weather * (0.7*math.Sin(a1) + 0.3*math.Sin(a2))
	}
	v += s.driftPerNs * float64(ns-s.startNs)
	if p.Noise != 0 && noise != 0 {
		step := floorDiv(ns, s.stepNs)
		v += p.Noise * noise * normal(mix(s.key, uint64(step)))
	}
	return v
}

func (s *series) clamp(v float64) float64 {
	return min(max(v, s.p.Min), s.p.Max)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// What an event does to a value.
const (
	opNone  = iota // device-wide or fleet fault: no effect on values
	opAdd          // spike, level_shift
	opRamp         // drift
	opNoise        // noise_burst
	opStuck        // stuck
)

func opOf(kind string) int {
	switch kind {
	case KindSpike, KindLevelShift:
		return opAdd
	case KindDrift:
		return opRamp
	case KindNoiseBurst:
		return opNoise
	case KindStuck:
		return opStuck
	}
	return opNone
}

type event struct {
	Event
	start, end int64 // Unix ns
	op         int
	frozen     float64 // stuck value
}

// eventList is an immutable list of events sorted by start.
type eventList struct {
	evs    []event
	maxDur int64 // longest end-start, to bound the search
}

// first returns the index of the first event that may be active at ns.
func (l *eventList) first(ns int64) int {
	lo, hi := 0, len(l.evs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if l.evs[mid].start <= ns-l.maxDur {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// with returns a new list holding l's events and e, sorted by start.
func (l *eventList) with(e event) *eventList {
	var old []event
	var maxDur int64
	if l != nil {
		old, maxDur = l.evs, l.maxDur
	}
	i := len(old)
	for i > 0 && old[i-1].start > e.start {
		i--
	}
	evs := make([]event, 0, len(old)+1)
	evs = append(evs, old[:i]...)
	evs = append(evs, e)
	evs = append(evs, old[i:]...)
	return &eventList{evs: evs, maxDur: max(maxDur, e.end-e.start)}
}

// Package local samples sensors on the gateway's own buses (I²C, SPI,
// GPIO, through firmware/sensor) and appends their readings to the
// gateway's store, as if the gateway were one more device.
//
// Each sensor runs on its own goroutine and schedule: ticks fall where the
// wall clock shows a multiple of the sensor's interval and stay on that
// grid (next = previous + interval, measured on the monotonic clock), so
// the schedule does not drift with the time sampling takes. Ticks that
// pass while a sample or a blocked Append runs are skipped and counted
// (Stats.MissedTicks). A sample's readings share one time, the Clock's
// when Sense returned (Time = Received), with the Clock's flags.
//
// Nothing is fatal once running: a sensor that fails to open (not plugged
// in yet, a bus that is not there) is retried with exponential backoff; a
// sensor whose Sense fails ReopenAfter times in a row is closed and opened
// again the same way (hot-plug); store errors are counted. Errors are
// logged at most once per LogEvery per sensor and kind.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/edge/clock"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/backoff"
	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/loglimit"
	"github.com/tributary-iot/tributary/protocol"
)

// Store is where the readings go. Append returns once they are durable.
type Store interface {
	Append(ctx context.Context, rs []protocol.Reading) error
}

// Clock gives the readings' time (µs since the epoch) and
// protocol.FlagClockUnsynced when the clock is not trusted.
// *clock.Clock implements it.
type Clock interface {
	Now() (us int64, flags protocol.Flags)
}

var _ Clock = (*clock.Clock)(nil)

// Limits and defaults.
const (
	DefaultInterval       = time.Second // a Spec without an interval
	MinInterval           = 10 * time.Millisecond
	MaxInterval           = 24 * time.Hour
	DefaultOpenBackoff    = time.Second
	DefaultMaxOpenBackoff = time.Minute
	DefaultReopenAfter    = 5
	DefaultLogEvery       = time.Minute
)

// Option tunes a Sampler.
type Option func(*options)

type options struct {
	openBackoff, maxOpenBackoff time.Duration
	reopenAfter                 int
	logEvery                    time.Duration
	reg                         prometheus.Registerer
}

// WithOpenBackoff sets the wait after a failed open (doubling up to max,
// jittered); defaults DefaultOpenBackoff and DefaultMaxOpenBackoff.
func WithOpenBackoff(first, max time.Duration) Option {
	return func(o *options) { o.openBackoff, o.maxOpenBackoff = first, max }
}

// WithReopenAfter sets how many consecutive Sense failures close and
// reopen a sensor; default DefaultReopenAfter.
func WithReopenAfter(n int) Option { return func(o *options) { o.reopenAfter = n } }

// WithLogEvery sets the least time between two log lines about the same
// sensor and kind of error; default DefaultLogEvery.
func WithLogEvery(d time.Duration) Option { return func(o *options) { o.logEvery = d } }

// WithRegisterer registers the sampler's Prometheus collectors.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// Stats are the sampler's counters since New.
type Stats struct {
	Samples      uint64 // successful Sense calls
	Readings     uint64 // readings appended (durable)
	SenseErrors  uint64
	OpenErrors   uint64
	AppendErrors uint64 // samples lost because Append failed
	Rejected     uint64 // measurements that are not valid SenML (name, unit, NaN)
	MissedTicks  uint64
	SensorsOpen  int // sensors open now, of Sensors
	Sensors      int
}

// Sampler samples the configured sensors. Create it with New.
type Sampler struct {
	sources []*source
	buses   sensor.Buses
	device  string
	store   Store
	clock   Clock
	log     *slog.Logger
	o       options
	ran     atomic.Bool

	samples, readings, senseErrs, openErrs atomic.Uint64
	appendErrs, rejected, missed           atomic.Uint64
	open                                   atomic.Int64
}

// source is one configured sensor.
type source struct {
	spec     sensor.Spec
	id       string // how logs name it: "sensor 2 (bme280 \"room\")"
	interval time.Duration
	logs     loglimit.Keyed // log lines per kind
}

// New checks the specs (kinds, addresses, intervals in
// MinInterval..MaxInterval; zero means DefaultInterval) and returns a
// Sampler whose readings carry device as their device id (the gateway id).
// clk nil means clock.New with defaults; log nil means slog.Default().
func New(specs []sensor.Spec, buses sensor.Buses, device string, store Store, clk Clock, log *slog.Logger, opts ...Option) (*Sampler, error) {
	o := options{
		openBackoff:    DefaultOpenBackoff,
		maxOpenBackoff: DefaultMaxOpenBackoff,
		reopenAfter:    DefaultReopenAfter,
		logEvery:       DefaultLogEvery,
	}
	for _, f := range opts {
		f(&o)
	}
	var errs []error
	if err := protocol.CheckDeviceID(device); err != nil {
		errs = append(errs, fmt.Errorf("local: device id: %w", err))
	}
	if buses == nil {
		errs = append(errs, errors.New("local: buses is nil"))
	}
	if store == nil {
		errs = append(errs, errors.New("local: store is nil"))
	}
	if o.openBackoff <= 0 || o.maxOpenBackoff < o.openBackoff {
		errs = append(errs, fmt.Errorf("local: open backoff %s must be positive and at most its maximum %s", o.openBackoff, o.maxOpenBackoff))
	}
	if o.reopenAfter < 1 {
		errs = append(errs, fmt.Errorf("local: reopen after %d failures: must be at least 1", o.reopenAfter))
	}
	if err := sensor.ValidateAll(specs); err != nil {
		errs = append(errs, err)
	}
	s := &Sampler{buses: buses, device: device, store: store, clock: clk, log: log, o: o}
	for i, sp := range specs {
		defaults.Set(&sp.Interval, DefaultInterval)
		if sp.Interval < MinInterval || sp.Interval > MaxInterval {
			errs = append(errs, &sensor.SpecError{Index: i + 1, Kind: sp.Kind, Name: sp.Name,
				Err: fmt.Errorf("interval %s is outside %s..%s", sp.Interval, MinInterval, MaxInterval)})
		}
		id := fmt.Sprintf("sensor %d (%s)", i+1, sp.Kind)
		if sp.Name != "" {
			id = fmt.Sprintf("sensor %d (%s %q)", i+1, sp.Kind, sp.Name)
		}
		s.sources = append(s.sources, &source{spec: sp, id: id, interval: sp.Interval,
			logs: loglimit.Keyed{Every: s.o.logEvery}})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = clock.New(clock.Options{Logger: s.log})
	}
	s.log = s.log.With("component", "local", "device", device)
	if o.reg != nil {
		if err := o.reg.Register(s); err != nil {
			return nil, fmt.Errorf("local: register metrics: %w", err)
		}
	}
	return s, nil
}

// Stats returns the sampler's counters.
func (s *Sampler) Stats() Stats {
	return Stats{
		Samples:      s.samples.Load(),
		Readings:     s.readings.Load(),
		SenseErrors:  s.senseErrs.Load(),
		OpenErrors:   s.openErrs.Load(),
		AppendErrors: s.appendErrs.Load(),
		Rejected:     s.rejected.Load(),
		MissedTicks:  s.missed.Load(),
		SensorsOpen:  int(s.open.Load()),
		Sensors:      len(s.sources),
	}
}

// Run samples every sensor until ctx ends, then closes them and returns
// nil. With no sensors it returns at once. It may be called once.
func (s *Sampler) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("local: Run called twice")
	}
	var wg sync.WaitGroup
	for _, src := range s.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, src)
		}()
	}
	wg.Wait()
	return nil
}

// run is one sensor's loop: open (with backoff), then sample on schedule.
func (s *Sampler) run(ctx context.Context, src *source) {
	var sen sensor.Sensor
	defer func() {
		if sen != nil {
			sen.Close()
			s.open.Add(-1)
		}
	}()
	retry := backoff.Backoff{Initial: s.o.openBackoff, Max: s.o.maxOpenBackoff}
	var next time.Time
	fails := 0
	for ctx.Err() == nil {
		if sen == nil {
			var err error
			sen, err = sensor.Open(ctx, s.buses, src.spec)
			if err != nil {
				sen = nil
				if ctx.Err() != nil {
					return
				}
				s.openErrs.Add(1)
				wait := retry.Next()
				s.logf(src, "open", slog.LevelWarn, "sensor did not open; retrying", "err", err, "retry_in", wait)
				backoff.Sleep(ctx, wait)
				continue
			}
			s.open.Add(1)
			retry.Reset()
			fails = 0
			s.log.Info("sensor open", "sensor", src.id, "desc", sen.String(), "interval", src.interval)
			now := time.Now()
			next = sensor.FirstTick(now, now, src.interval, 0)
		}
		if !backoff.Sleep(ctx, time.Until(next)) {
			return
		}
		if s.sample(ctx, src, sen) {
			fails = 0
		} else if ctx.Err() == nil {
			if fails++; fails >= s.o.reopenAfter {
				s.logf(src, "reopen", slog.LevelWarn, "sensor keeps failing: closing it and opening it again", "failures", fails)
				sen.Close()
				sen = nil
				s.open.Add(-1)
				continue
			}
		}
		var missed int
		next, missed = sensor.NextTick(next, time.Now(), src.interval)
		s.missed.Add(uint64(missed))
	}
}

// sample takes one sample and appends its readings; false when Sense
// failed.
func (s *Sampler) sample(ctx context.Context, src *source, sen sensor.Sensor) bool {
	ms, err := sen.Sense(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return true
		}
		s.senseErrs.Add(1)
		s.logf(src, "sense", slog.LevelWarn, "sense failed", "err", err)
		return false
	}
	s.samples.Add(1)
	us, flags := s.clock.Now()
	rs := make([]protocol.Reading, 0, len(ms))
	for i := range ms {
		m := &ms[i]
		if !valid(m) {
			s.rejected.Add(1)
			s.logf(src, "invalid", slog.LevelWarn, "measurement is not valid SenML (name, unit or value): dropped",
				"name", m.Name, "unit", m.Unit, "value", m.Value)
			continue
		}
		r := protocol.Reading{Device: s.device, Name: m.Name, Unit: m.Unit,
			Kind: protocol.KindFloat, Value: m.Value, Time: us, Received: us, Flags: flags}
		if m.Sum != nil {
			r.HasSum, r.Sum = true, *m.Sum
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return true
	}
	if err := s.store.Append(ctx, rs); err != nil {
		if ctx.Err() == nil {
			s.appendErrs.Add(1)
			s.logf(src, "append", slog.LevelError, "store append failed: sample lost", "readings", len(rs), "err", err)
		}
		return true
	}
	s.readings.Add(uint64(len(rs)))
	return true
}

func valid(m *sensor.Measurement) bool {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	return protocol.ValidName(m.Name) && len(m.Unit) <= protocol.MaxUnitBytes &&
		finite(m.Value) && (m.Sum == nil || finite(*m.Sum))
}

// logf logs at most once per LogEvery per sensor and kind, with the count
// of lines suppressed since. Called from the sensor's goroutine only.
func (s *Sampler) logf(src *source, kind string, level slog.Level, msg string, args ...any) {
	ok, suppressed := src.logs.Allow(kind)
	if !ok {
		return
	}
	args = append(args, "sensor", src.id, "suppressed", suppressed)
	s.log.Log(context.Background(), level, msg, args...)
}

// Prometheus.

var (
	descSamples   = prometheus.NewDesc("tributary_local_samples_total", "Successful samples of local sensors.", nil, nil)
	descReadings  = prometheus.NewDesc("tributary_local_readings_total", "Readings from local sensors appended to the store.", nil, nil)
	descSenseErr  = prometheus.NewDesc("tributary_local_sense_errors_total", "Failed samples of local sensors.", nil, nil)
	descOpenErr   = prometheus.NewDesc("tributary_local_open_errors_total", "Failed attempts to open local sensors.", nil, nil)
	descAppendErr = prometheus.NewDesc("tributary_local_append_errors_total", "Samples lost because the store refused them.", nil, nil)
	descRejected  = prometheus.NewDesc("tributary_local_rejected_total", "Measurements dropped as not valid SenML.", nil, nil)
	descMissed    = prometheus.NewDesc("tributary_local_missed_ticks_total", "Sampling ticks skipped because sampling fell behind.", nil, nil)
	descOpen      = prometheus.NewDesc("tributary_local_sensors_open", "Local sensors open now.", nil, nil)
	descSensors   = prometheus.NewDesc("tributary_local_sensors", "Local sensors configured.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Sampler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSamples, descReadings, descSenseErr, descOpenErr, descAppendErr,
		descRejected, descMissed, descOpen, descSensors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Sampler) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	for _, c := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descSamples, st.Samples}, {descReadings, st.Readings}, {descSenseErr, st.SenseErrors},
		{descOpenErr, st.OpenErrors}, {descAppendErr, st.AppendErrors}, {descRejected, st.Rejected},
		{descMissed, st.MissedTicks}} {
		ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v))
	}
	ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(st.SensorsOpen))
	ch <- prometheus.MustNewConstMetric(descSensors, prometheus.GaugeValue, float64(st.Sensors))
}

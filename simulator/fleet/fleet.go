// Package fleet runs a fleet of simulated sensor nodes: the real firmware
// runtime (firmware/node) on simulated chips (simulator/chips) fed by the
// ground truth (simulator/model), with anomalies and faults injected and
// recorded in a truth file.
//
// Each device is one node.Node with its own MQTT connection, a chips.Board
// (sensors per Config.Sensors) whose chips read the device's model values
// at the true time, and a node Clock that is the true time unless the
// device's clock is skewed. Devices sample at Config.Rate with their ticks
// spread evenly over one interval (Config.Phase), and start at
// Config.ConnectRate so that a large fleet does not hit the broker at
// once; the same rate paces every reconnection.
//
// Anomalies (spike, level_shift, drift, stuck, noise_burst) are planned
// with model.Fleet.Plan from the seed and injected into the model, so the
// chips report them; during a dropout the device's sensors return nothing
// and the node publishes nothing. Faults: disconnect storms sever the TCP
// connections of a share of the devices through the node's Dial hook (the
// node buffers and reconnects), skewed devices get an offset Clock, and
// malformed payloads are published on devices' telemetry topics through
// one extra MQTT client. Every anomaly and fault is one line of the truth
// file (model.TruthWriter).
package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/simulator/model"
)

// stormTail is the end of a timed run in which no storm starts, so that
// every severed device can reconnect and flush before the run ends.
const stormTail = 3 * node.DefaultReconnectBackoff

// Salts of the random streams derived from the seed.
const (
	saltSkew uint64 = iota + 0x5eed0000
	saltStorm
	saltMalformed
)

// device is one simulated device.
type device struct {
	index   int
	id      string
	layout  layout
	truth   *model.Device
	skew    time.Duration
	hw      *hardware
	sensors []sensor.Sensor
	node    *node.Node
	link    link
	quiet   atomic.Uint64 // samples that published nothing because of a dropout
}

// clock is the device's wall clock as its node sees it.
func (d *device) clock() time.Time { return time.Now().Add(d.skew) }

// dropoutSensor silences a sensor during its device's dropouts: Sense
// returns no measurement, so the node publishes nothing for the sample.
type dropoutSensor struct {
	sensor.Sensor
	dev *device
}

func (s dropoutSensor) Sense(ctx context.Context) ([]sensor.Measurement, error) {
	if s.dev.truth.Dropout(time.Now()) {
		s.dev.quiet.Add(1)
		return nil, ctx.Err()
	}
	return s.Sensor.Sense(ctx)
}

// runner is one run of the fleet.
type runner struct {
	cfg      Config
	log      *slog.Logger
	model    *model.Fleet
	truth    *truth
	devices  []*device
	dialer   net.Dialer
	connects *limiter
	start    time.Time
	end      time.Time // zero when the run has no set end

	malformed    malformedStats
	maxConnected int // written by progress, read after it ends
}

// Run runs the fleet until cfg.Duration has passed (counted from the
// start, before the connection ramp) or ctx ends, then stops every node
// cleanly (each flushes and publishes its offline status) and returns the
// run's summary, also written to cfg.Summary and cfg.Truth's file closed.
// The summary is returned with an error too when the run got far enough
// to have one.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	r := &runner{
		cfg:      cfg,
		log:      log,
		connects: newLimiter(cfg.ConnectRate, max(1, int(cfg.ConnectRate/20))),
		dialer:   net.Dialer{KeepAlive: -1},
	}
	r.start = time.Now().UTC().Truncate(time.Millisecond)
	if cfg.Duration > 0 {
		r.end = r.start.Add(cfg.Duration)
	}
	var err error
	if r.model, err = model.NewFleet(cfg.Seed, r.start); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	var tw *model.TruthWriter
	if cfg.Truth != "" {
		if tw, err = model.CreateTruth(cfg.Truth); err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
	}
	r.truth = newTruth(tw)
	if err := r.build(ctx); err != nil {
		r.closeDevices()
		r.truth.close()
		return nil, err
	}
	sum, err := r.run(ctx)
	r.closeDevices()
	if terr := r.truth.close(); terr != nil && err == nil {
		err = fmt.Errorf("fleet: truth file: %w", terr)
	}
	sum.Truth = r.truth.snapshot()
	if cfg.Summary != "" {
		if werr := sum.writeFile(cfg.Summary); werr != nil && err == nil {
			err = werr
		}
	}
	return sum, err
}

// build creates the devices: model, board, sensors and node each.
func (r *runner) build(ctx context.Context) error {
	cfg := &r.cfg
	interval := cfg.interval()
	skewed := r.pick(saltSkew, 0, cfg.SkewFraction)
	qos := cfg.QoS
	buffer := max(100, int(math.Ceil(cfg.Rate*4*bufferSeconds)))
	nodeLog := slog.New(levelHandler{h: r.log.Handler(), min: slog.LevelError})
	r.devices = make([]*device, cfg.Devices)
	for i := range r.devices {
		d := &device{index: i, id: cfg.DeviceID(i), layout: layoutOf(cfg.Sensors, i)}
		r.devices[i] = d
		d.truth = r.model.Device(d.id)
		if skewed[i] {
			d.skew = cfg.Skew
		}
		hw, err := newHardware(d.layout, d.truth)
		if err != nil {
			return fmt.Errorf("fleet: device %s: %w", d.id, err)
		}
		d.hw = hw
		for _, spec := range hw.specs {
			sen, err := sensor.Open(ctx, hw.board, spec)
			if err != nil {
				return fmt.Errorf("fleet: device %s: %w", d.id, err)
			}
			d.sensors = append(d.sensors, dropoutSensor{Sensor: sen, dev: d})
		}
		nc := node.Config{
			Device:         d.id,
			Broker:         cfg.Broker,
			QoS:            &qos,
			Interval:       interval,
			Phase:          time.Duration(int64(i) * int64(interval) / int64(cfg.Devices)),
			BufferReadings: buffer,
			Sensors:        hw.specs,
		}
		n, err := node.New(nc, node.Options{
			Sensors:  d.sensors,
			Clock:    d.clock,
			Logger:   nodeLog,
			Dial:     r.dial(d),
			Firmware: "tributary-sim",
		})
		if err != nil {
			return fmt.Errorf("fleet: device %s: %w", d.id, err)
		}
		d.node = n
	}
	return nil
}

// bufferSeconds is how long a disconnected device can buffer its readings
// (at up to 4 readings per sample) before it drops the oldest.
const bufferSeconds = 300

// pick chooses round(fraction·N) devices at random from the seed and salt
// (a storm's index in sub); the result is indexed by device.
func (r *runner) pick(salt, sub uint64, fraction float64) []bool {
	out := make([]bool, r.cfg.Devices)
	k := int(math.Round(fraction * float64(r.cfg.Devices)))
	if k == 0 {
		return out
	}
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), salt^sub*0x9e3779b97f4a7c15))
	for _, i := range rng.Perm(r.cfg.Devices)[:k] {
		out[i] = true
	}
	return out
}

// dial is a device's Dial hook: it waits for a slot of the fleet-wide
// connection rate, dials, and records the connection so that a storm can
// sever it. The first connection after a storm closes that device's
// disconnect event.
func (r *runner) dial(d *device) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := r.connects.Wait(ctx); err != nil {
			return nil, err
		}
		c, err := r.dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := newTrackedConn(c, &d.link)
		if severed := d.link.set(tc); !severed.IsZero() {
			r.truth.write(model.Event{Device: d.id, Kind: model.KindDisconnect, Start: severed, End: time.Now().UTC()})
		}
		return tc, nil
	}
}

// run starts the nodes and the injectors, waits for the end and stops
// everything.
func (r *runner) run(ctx context.Context) (*Summary, error) {
	cfg := &r.cfg
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !r.end.IsZero() {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithDeadline(runCtx, r.end)
		defer c2()
	}

	// Anomalies: the whole run at once, or hour by hour.
	planned := min(cfg.Duration, planChunk)
	if cfg.Duration == 0 {
		planned = planChunk
	}
	if err := r.plan(0, planned); err != nil {
		return &Summary{}, err
	}
	for _, d := range r.devices {
		if d.skew != 0 && !r.end.IsZero() {
			r.truth.write(r.skewEvent(d, r.end))
		}
	}

	var wg sync.WaitGroup
	// Nodes, started at the connection rate.
	nodesDone := make(chan struct{})
	var nodes sync.WaitGroup
	wg.Go(func() {
		defer close(nodesDone)
		ramp := time.Duration(float64(time.Second) / cfg.ConnectRate)
		t := time.NewTimer(0)
		defer t.Stop()
		for i, d := range r.devices {
			if i > 0 {
				t.Reset(time.Until(r.start.Add(time.Duration(i) * ramp)))
				select {
				case <-runCtx.Done():
				case <-t.C:
				}
			}
			if runCtx.Err() != nil {
				break
			}
			nodes.Go(func() { d.node.Run(runCtx) })
		}
		nodes.Wait()
	})
	if cfg.StormEvery > 0 {
		wg.Go(func() { r.storms(runCtx) })
	}
	if cfg.MalformedRate > 0 {
		wg.Go(func() {
			if err := r.malformedLoop(runCtx); err != nil {
				r.log.Error("malformed payloads stopped", "err", err)
			}
		})
	}
	wg.Go(func() { r.release(runCtx, planned) })
	r.log.Info("fleet starting", "devices", cfg.Devices, "rate", cfg.Rate, "duration", cfg.Duration,
		"broker", cfg.Broker, "sensors", cfg.Sensors, "seed", cfg.Seed)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.progress(runCtx, nodesDone)
	}()

	<-runCtx.Done()
	stop := time.Now().UTC()
	r.log.Info("fleet stopping: nodes flush and disconnect", "devices", cfg.Devices)
	<-nodesDone
	wg.Wait()
	<-progressDone
	r.truth.finish(stop)
	for _, d := range r.devices {
		if t := d.link.pending(); !t.IsZero() {
			// A storm racing a signal may sever just after the stop.
			r.truth.write(model.Event{Device: d.id, Kind: model.KindDisconnect, Start: t, End: maxTime(t, stop)})
		}
		if d.skew != 0 && r.end.IsZero() {
			r.truth.write(r.skewEvent(d, stop))
		}
	}
	r.writePublished()
	return r.summary(stop), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// writePublished writes each device's published tally (model.KindPublished)
// once every node has stopped, so the counts are final: the readings the
// device published and the span of their device times, [the run's start,
// now) on the device's clock, End rounded up to the truth file's
// milliseconds.
func (r *runner) writePublished() {
	now := time.Now().UTC()
	for _, d := range r.devices {
		end := now.Add(d.skew).Truncate(time.Millisecond).Add(time.Millisecond)
		r.truth.write(model.Event{Device: d.id, Kind: model.KindPublished,
			Start: r.start.Add(d.skew), End: end, Readings: d.node.Stats().ReadingsPublished})
	}
}

// skewEvent is the truth line of a skewed device's clock.
func (r *runner) skewEvent(d *device, end time.Time) model.Event {
	return model.Event{Device: d.id, Kind: model.KindClockSkew, Start: r.start, End: end,
		Magnitude: d.skew.Seconds()}
}

// plan plans and injects the anomalies of the part [from, to) of the run.
func (r *runner) plan(from, to time.Duration) error {
	evs, err := planAnomalies(r.model, &r.cfg, r.devices, r.start, from, to)
	if err != nil {
		return err
	}
	if err := r.model.Inject(evs...); err != nil {
		return fmt.Errorf("fleet: inject anomalies: %w", err)
	}
	r.truth.plan(evs)
	return nil
}

// release writes planned anomalies to the truth file as they start, and
// plans the next hour half an hour ahead when the run is longer than
// planned so far.
func (r *runner) release(ctx context.Context, planned time.Duration) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			r.truth.release(now)
			more := r.cfg.Duration == 0 || planned < r.cfg.Duration
			if more && now.Sub(r.start) > planned-planChunk/2 {
				next := planned + planChunk
				if r.cfg.Duration > 0 {
					next = min(next, r.cfg.Duration)
				}
				if err := r.plan(planned, next); err != nil {
					r.log.Error("cannot plan anomalies", "err", err)
					return
				}
				planned = next
			}
		}
	}
}

// storms severs the connections of StormFraction of the devices every
// StormEvery.
func (r *runner) storms(ctx context.Context) {
	tick := time.NewTicker(r.cfg.StormEvery)
	defer tick.Stop()
	for k := uint64(1); ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now().UTC()
		if !r.end.IsZero() && now.After(r.end.Add(-stormTail)) {
			return
		}
		hit := r.pick(saltStorm, k, r.cfg.StormFraction)
		n := 0
		for i, d := range r.devices {
			if hit[i] && d.link.sever(now) {
				n++
			}
		}
		r.log.Info("disconnect storm", "storm", k, "severed", n)
	}
}

// closeDevices closes every node and sensor; safe on a partly built fleet.
func (r *runner) closeDevices() {
	for _, d := range r.devices {
		if d == nil {
			continue
		}
		if d.node != nil {
			d.node.Close()
		}
		for _, s := range d.sensors {
			s.Close()
		}
		d.sensors = nil
	}
}

// levelHandler drops records below min: the nodes log only errors, as
// the faults the fleet injects on purpose would otherwise flood the log.
type levelHandler struct {
	h   slog.Handler
	min slog.Level
}

func (l levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.h.Enabled(ctx, lv)
}
func (l levelHandler) Handle(ctx context.Context, rec slog.Record) error { return l.h.Handle(ctx, rec) }
func (l levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return levelHandler{h: l.h.WithAttrs(as), min: l.min}
}
func (l levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{h: l.h.WithGroup(name), min: l.min}
}

package node

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/loglimit"
	"github.com/tributary-iot/tributary/protocol"
)

// source is one sensor as the sampler schedules it.
type source struct {
	sen      sensor.Sensor
	id       string       // how commands and status name it
	desc     string       // sen.String()
	spec     *sensor.Spec // nil for an injected sensor without a spec
	interval atomic.Int64 // wanted interval (ns); commands change it
	cur      time.Duration
	next     time.Time // monotonic
	errLog   loglimit.Limiter
	badLog   loglimit.Limiter
}

// sampler samples every source on its own schedule from one goroutine and
// one timer, turns samples into readings and pushes SenML-CBOR packs onto
// the queue. A slow Sense delays the other sensors' ticks (their samples
// are late, never lost); ticks that pass while sampling are counted as
// missed.
type sampler struct {
	n        *Node
	sources  []*source
	wake     chan struct{} // an interval changed
	pend     []protocol.Reading
	samples  int       // samples in pend
	pendFrom time.Time // monotonic time of the first sample in pend
}

func (s *sampler) run(ctx context.Context) {
	defer s.flush()
	cfg := &s.n.cfg
	now, wall := time.Now(), s.n.clock()
	for _, src := range s.sources {
		src.cur = time.Duration(src.interval.Load())
		src.next = sensor.FirstTick(now, wall, src.cur, cfg.Phase)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wakeAt := s.sources[0].next
		for _, src := range s.sources[1:] {
			if src.next.Before(wakeAt) {
				wakeAt = src.next
			}
		}
		if s.samples > 0 {
			if d := s.pendFrom.Add(cfg.BatchDelay); d.Before(wakeAt) {
				wakeAt = d
			}
		}
		timer.Reset(time.Until(wakeAt))
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			s.reschedule()
			continue
		case <-timer.C:
		}
		s.tick(ctx)
	}
}

// reschedule applies interval changes: a changed sensor restarts on the
// new interval's grid.
func (s *sampler) reschedule() {
	now, wall := time.Now(), s.n.clock()
	for _, src := range s.sources {
		if d := time.Duration(src.interval.Load()); d != src.cur {
			src.cur = d
			src.next = sensor.FirstTick(now, wall, d, s.n.cfg.Phase)
		}
	}
}

// tick serves every due sensor, earliest first, then flushes a pack that
// waited BatchDelay.
func (s *sampler) tick(ctx context.Context) {
	for ctx.Err() == nil {
		var due *source
		now := time.Now()
		for _, src := range s.sources {
			if !src.next.After(now) && (due == nil || src.next.Before(due.next)) {
				due = src
			}
		}
		if due == nil {
			break
		}
		s.sample(ctx, due)
		if ctx.Err() != nil {
			return // stopping: the ticks that pass now are not missed
		}
		next, missed := sensor.NextTick(due.next, time.Now(), due.cur)
		due.next = next
		if missed > 0 {
			s.n.stats.missedTicks.Add(uint64(missed))
		}
	}
	if s.samples > 0 && !time.Now().Before(s.pendFrom.Add(s.n.cfg.BatchDelay)) {
		s.flush()
	}
}

// sample takes one sample of src and adds its readings to the pending pack.
func (s *sampler) sample(ctx context.Context, src *source) {
	ms, err := src.sen.Sense(ctx)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return // stopping
		}
		s.n.stats.senseErrors.Add(1)
		if ok, suppressed := src.errLog.Allow(); ok {
			s.n.log.Warn("sense failed", "sensor", src.id, "err", err, "suppressed", suppressed)
		}
		return
	}
	if len(s.pend)+len(ms) > protocol.MaxPackRecords {
		s.flush()
	}
	t := s.n.clock().UnixMicro()
	added := 0
	for i := range ms {
		m := &ms[i]
		if !validMeasurement(m) {
			s.n.stats.rejected.Add(1)
			if ok, suppressed := src.badLog.Allow(); ok {
				s.n.log.Warn("measurement rejected: name, unit or value is not valid SenML",
					"sensor", src.id, "name", m.Name, "unit", m.Unit, "value", m.Value, "suppressed", suppressed)
			}
			continue
		}
		r := protocol.Reading{Device: s.n.cfg.Device, Name: m.Name, Unit: m.Unit,
			Kind: protocol.KindFloat, Value: m.Value, Time: t}
		if m.Sum != nil {
			r.HasSum, r.Sum = true, *m.Sum
		}
		s.pend = append(s.pend, r)
		added++
	}
	if added > 0 {
		if s.samples == 0 {
			s.pendFrom = time.Now()
		}
		s.samples++
		if s.samples >= s.n.cfg.BatchSamples {
			s.flush()
		}
	}
	s.n.stats.samples.Add(1)
}

func validMeasurement(m *sensor.Measurement) bool {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	return protocol.ValidName(m.Name) && len(m.Unit) <= protocol.MaxUnitBytes &&
		finite(m.Value) && (m.Sum == nil || finite(*m.Sum))
}

// flush encodes the pending readings as one pack and queues it.
func (s *sampler) flush() {
	if len(s.pend) == 0 {
		s.samples = 0
		return
	}
	p := newPack()
	p.data = protocol.AppendSenMLCBOR(p.data[:0], s.pend, nil)
	p.readings, p.first = len(s.pend), s.pend[0].Time
	clear(s.pend) // drop references to the drivers' strings
	s.pend, s.samples = s.pend[:0], 0
	s.n.queue.push(p)
	s.n.poke()
}

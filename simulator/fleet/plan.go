package fleet

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/simulator/model"
)

// planChunk is the window anomalies are planned for at a time when the
// run has no end, and the longest window planned in one go.
const planChunk = time.Hour

// planEpoch is where anomalies are planned before they are moved to the
// run's start, so that a seed gives the same anomalies (relative to the
// start) whenever the run starts: model.Fleet.Plan draws from the window's
// absolute start.
var planEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// planAnomalies plans the anomalies of devs from the fleet's seed for the
// part [from, to) of a run that started at start: AnomalyRate per
// device-hour, split evenly over the enabled kinds and, for metric kinds,
// over the device's metrics. Kind durations are the model's defaults,
// shortened to fit a quarter of the window when the window is short (so
// that a 10 s run still sees whole anomalies).
func planAnomalies(f *model.Fleet, c *Config, devs []*device, start time.Time, from, to time.Duration) ([]model.Event, error) {
	if c.AnomalyRate == 0 || len(devs) == 0 {
		return nil, nil
	}
	window := to - from
	gap := min(model.DefaultGap, window/10)
	kinds := c.anomalyKinds()
	perKind := c.AnomalyRate / float64(len(kinds))

	// Devices with the same metrics are planned together.
	groups := map[layout][]string{}
	var order []layout
	for _, d := range devs {
		if _, ok := groups[d.layout]; !ok {
			order = append(order, d.layout)
		}
		groups[d.layout] = append(groups[d.layout], d.id)
	}
	var out []model.Event
	for _, l := range order {
		metrics := l.metrics()
		spec := model.PlanSpec{Devices: groups[l], Metrics: metrics,
			Start: planEpoch.Add(from), End: planEpoch.Add(to), Gap: gap}
		for _, k := range kinds {
			r := model.DefaultRate(k)
			r.PerHour = perKind
			if k != model.KindDropout {
				r.PerHour /= float64(len(metrics))
			}
			r.MaxDuration = max(min(r.MaxDuration, window/4), time.Millisecond)
			r.MinDuration = max(min(r.MinDuration, r.MaxDuration/2), time.Millisecond)
			spec.Rates = append(spec.Rates, r)
		}
		evs, err := f.Plan(spec)
		if err != nil {
			return nil, fmt.Errorf("fleet: plan anomalies: %w", err)
		}
		shift := start.Sub(planEpoch)
		for _, e := range evs {
			e.Start, e.End = e.Start.Add(shift), e.End.Add(shift)
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b model.Event) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// truth records what was injected: planned anomalies are written once
// their start has passed (so a run stopped early lists only what
// happened), faults as they happen. A nil writer records counts only.
type truth struct {
	tw *model.TruthWriter

	mu      sync.Mutex
	pending []model.Event // planned anomalies not written yet, by start
	counts  map[string]int64
	err     error // first write error
}

func newTruth(tw *model.TruthWriter) *truth {
	return &truth{tw: tw, counts: map[string]int64{}}
}

// plan adds planned anomalies (sorted by start, after those added before).
func (t *truth) plan(evs []model.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, evs...)
}

// write records one event now.
func (t *truth) write(e model.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writeLocked(e)
}

func (t *truth) writeLocked(e model.Event) {
	t.counts[e.Kind]++
	if t.tw == nil || t.err != nil {
		return
	}
	t.err = t.tw.Write(e)
}

// release writes the planned anomalies that started at or before now.
func (t *truth) release(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for n < len(t.pending) && !t.pending[n].Start.After(now) {
		t.writeLocked(t.pending[n])
		n++
	}
	t.pending = t.pending[n:]
	if t.tw != nil && t.err == nil && n > 0 {
		t.err = t.tw.Flush()
	}
}

// finish writes the planned anomalies that started before stop, ending
// those cut short at stop, and drops the rest.
func (t *truth) finish(stop time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.pending {
		if !e.Start.Before(stop) {
			break
		}
		if e.End.After(stop) {
			e.End = stop
		}
		t.writeLocked(e)
	}
	t.pending = nil
}

// close flushes and closes the writer; it returns the first error.
func (t *truth) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tw != nil {
		if err := t.tw.Close(); err != nil && t.err == nil {
			t.err = err
		}
	}
	return t.err
}

// snapshot returns the events recorded so far by kind.
func (t *truth) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[string]int64, len(t.counts))
	for k, v := range t.counts {
		m[k] = v
	}
	return m
}

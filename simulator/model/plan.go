package model

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// DefaultGap is the quiet time the planner leaves between two events of one
// (device, metric) unless PlanSpec.Gap says otherwise.
const DefaultGap = 30 * time.Second

// Rate asks the planner for events of one kind.
type Rate struct {
	Kind string
	// PerHour is the expected number of events per hour for each (device,
	// metric) pair, or for each device for the device-wide kinds (dropout,
	// disconnect, clock_skew, malformed).
	PerHour float64
	// Fraction is the share of devices that get this kind at all, in
	// [0, 1]; 0 means every device. Which devices is decided by the seed.
	Fraction float64
	// MinDuration and MaxDuration bound each event's duration (uniform in
	// between). Zero means the kind's default (see DefaultRate).
	MinDuration, MaxDuration time.Duration
	// Magnitude sets the strength; zero means the kind's default. For
	// spike, level_shift and drift it is a multiple of the metric's
	// Profile.Scale (each event draws 1 to 2 times it, with a random sign);
	// for noise_burst the noise factor; for clock_skew seconds (1 to 2
	// times, random sign); the other kinds have none.
	Magnitude float64
}

// DefaultRate returns the defaults of a kind: durations and magnitude, with
// PerHour 1 and Fraction 0 (every device).
func DefaultRate(kind string) Rate {
	r := Rate{Kind: kind, PerHour: 1}
	set := func(lo, hi time.Duration, m float64) { r.MinDuration, r.MaxDuration, r.Magnitude = lo, hi, m }
	switch kind {
	case KindSpike:
		set(2*time.Second, 6*time.Second, 5)
	case KindLevelShift:
		set(10*time.Minute, time.Hour, 2)
	case KindDrift:
		set(10*time.Minute, time.Hour, 3)
	case KindStuck:
		set(5*time.Minute, 30*time.Minute, 0)
	case KindNoiseBurst:
		set(2*time.Minute, 10*time.Minute, 10)
	case KindDropout:
		set(time.Minute, 10*time.Minute, 0)
	case KindDisconnect:
		set(10*time.Second, 2*time.Minute, 0)
	case KindClockSkew:
		set(5*time.Minute, 30*time.Minute, 30)
	case KindMalformed:
		set(5*time.Second, 30*time.Second, 0)
	}
	return r
}

// PlanSpec says what Fleet.Plan plans.
type PlanSpec struct {
	Devices    []string  // devices that may get events; each once
	Metrics    []string  // metrics that spike, level_shift, drift, stuck and noise_burst may hit
	Start, End time.Time // the run window: every event lies inside it
	Rates      []Rate    // one per kind at most
	// Gap is the quiet time left between two events of one (device,
	// metric), and between a metric's event and a device-wide event of the
	// same device. Zero means DefaultGap.
	Gap time.Duration
}

// Plan draws events from the fleet's seed: for each device a Poisson
// process per (device, metric) with the requested rates, events placed one
// after the other so that no two events of one (device, metric) overlap,
// and no metric event overlaps a device-wide event (dropout or fault) of
// its device. Times are whole milliseconds, so the plan survives the truth
// file unchanged. The result is sorted by start, device, metric and kind,
// and is the same for the same seed and spec (a device's events do not
// depend on the other devices listed). Consecutive windows (End of one the
// Start of the next) get different events but the same devices for a
// Fraction, and do not overlap. Inject the anomalies with
// Fleet.Inject; the fleet applies the faults itself.
func (f *Fleet) Plan(spec PlanSpec) ([]Event, error) {
	rates, err := f.checkPlan(spec)
	if err != nil {
		return nil, err
	}
	gap := int64(spec.Gap)
	if gap == 0 {
		gap = int64(DefaultGap)
	}
	w := window{start: spec.Start.UnixNano(), end: spec.End.UnixNano(), gap: gap}
	planKey := mix(f.key, hashString("plan"))
	windowKey := mix(planKey, uint64(w.start))
	var out []Event
	var wideRates, metricRates []Rate
	for _, dev := range spec.Devices {
		// Which devices get a kind depends on the seed only, so that
		// windows planned one after the other pick the same devices; the
		// events themselves depend on the window's start too.
		fracKey := mix(planKey, hashString(dev))
		devKey := mix(windowKey, hashString(dev))
		wideRates, metricRates = wideRates[:0], metricRates[:0]
		for _, r := range rates {
			if r.Fraction != 0 && uniform(mix(fracKey, hashString("fraction:"+r.Kind))) >= r.Fraction {
				continue
			}
			if metricKind(r.Kind) {
				metricRates = append(metricRates, r)
			} else {
				wideRates = append(wideRates, r)
			}
		}
		wide := f.planLine(&rng{state: devKey}, w, wideRates, dev, "", nil)
		out = append(out, wide...)
		if len(metricRates) == 0 {
			continue
		}
		for _, m := range spec.Metrics {
			out = append(out, f.planLine(&rng{state: mix(devKey, hashString(m))}, w, metricRates, dev, m, wide)...)
		}
	}
	slices.SortFunc(out, func(a, b Event) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Device, b.Device),
			cmp.Compare(a.Metric, b.Metric), cmp.Compare(a.Kind, b.Kind))
	})
	return out, nil
}

type window struct{ start, end, gap int64 }

// checkPlan validates spec and returns its rates with defaults filled in.
func (f *Fleet) checkPlan(spec PlanSpec) ([]Rate, error) {
	if !spec.End.After(spec.Start) {
		return nil, fmt.Errorf("model: plan: End (%s) must be after Start (%s)", spec.End.Format(timeFormat), spec.Start.Format(timeFormat))
	}
	if spec.Gap < 0 {
		return nil, fmt.Errorf("model: plan: negative Gap %s", spec.Gap)
	}
	seen := make(map[string]bool)
	for _, d := range spec.Devices {
		if d == "" || seen["d:"+d] {
			return nil, fmt.Errorf("model: plan: device %q is empty or listed twice", d)
		}
		seen["d:"+d] = true
	}
	for _, m := range spec.Metrics {
		if m == "" || seen["m:"+m] {
			return nil, fmt.Errorf("model: plan: metric %q is empty or listed twice", m)
		}
		seen["m:"+m] = true
	}
	rates := make([]Rate, 0, len(spec.Rates))
	for _, r := range spec.Rates {
		if !knownKind(r.Kind) {
			return nil, fmt.Errorf("model: plan: unknown kind %q (want one of %v)", r.Kind, Kinds())
		}
		if seen["k:"+r.Kind] {
			return nil, fmt.Errorf("model: plan: kind %q has two rates", r.Kind)
		}
		seen["k:"+r.Kind] = true
		def := DefaultRate(r.Kind)
		if r.MinDuration == 0 {
			r.MinDuration = def.MinDuration
			if r.MaxDuration != 0 {
				r.MinDuration = min(r.MinDuration, r.MaxDuration)
			}
		}
		if r.MaxDuration == 0 {
			r.MaxDuration = max(def.MaxDuration, r.MinDuration)
		}
		if r.Magnitude == 0 {
			r.Magnitude = def.Magnitude
		}
		switch {
		case math.IsNaN(r.PerHour) || math.IsInf(r.PerHour, 0) || r.PerHour < 0:
			return nil, fmt.Errorf("model: plan: %s: PerHour %v must be a finite number >= 0", r.Kind, r.PerHour)
		case !(r.Fraction >= 0 && r.Fraction <= 1):
			return nil, fmt.Errorf("model: plan: %s: Fraction %v must be in [0, 1]", r.Kind, r.Fraction)
		case r.MinDuration < time.Millisecond || r.MaxDuration < r.MinDuration:
			return nil, fmt.Errorf("model: plan: %s: durations %s..%s: want 1ms <= MinDuration <= MaxDuration", r.Kind, r.MinDuration, r.MaxDuration)
		case math.IsNaN(r.Magnitude) || math.IsInf(r.Magnitude, 0):
			return nil, fmt.Errorf("model: plan: %s: Magnitude %v is not finite", r.Kind, r.Magnitude)
		case r.Kind == KindNoiseBurst && r.Magnitude < 0:
			return nil, fmt.Errorf("model: plan: noise_burst: negative factor %g", r.Magnitude)
		}
		if metricKind(r.Kind) && r.PerHour > 0 {
			if len(spec.Metrics) == 0 {
				return nil, fmt.Errorf("model: plan: %s needs Metrics", r.Kind)
			}
			for _, m := range spec.Metrics {
				if _, ok := f.Profile(m); !ok {
					return nil, fmt.Errorf("model: plan: metric %q has no profile (add one with WithProfile)", m)
				}
			}
		}
		if r.PerHour > 0 {
			rates = append(rates, r)
		}
	}
	return rates, nil
}

// planLine places events on one (device, metric) timeline, avoiding the
// blockers (sorted by start) with the gap.
func (f *Fleet) planLine(r *rng, w window, rates []Rate, dev, metric string, blockers []Event) []Event {
	if len(rates) == 0 {
		return nil
	}
	total := 0.0
	for _, rt := range rates {
		total += rt.PerHour
	}
	perNs := total / float64(time.Hour)
	var scale float64
	if metric != "" {
		p, _ := f.Profile(metric)
		scale = p.Scale
	}
	var out []Event
	t := w.start
	for {
		step := r.exp() / perNs
		if step >= float64(w.end-t) {
			break
		}
		t += int64(step)
		pick := r.float() * total
		rt := rates[len(rates)-1]
		for _, c := range rates {
			if pick < c.PerHour {
				rt = c
				break
			}
			pick -= c.PerHour
		}
		dur := int64(rt.MinDuration) + int64(r.float()*float64(rt.MaxDuration-rt.MinDuration))
		dur = max(dur-dur%int64(time.Millisecond), int64(time.Millisecond))
		s := t - floorMod(t, int64(time.Millisecond))
		for _, b := range blockers {
			bs, be := b.Start.UnixNano(), b.End.UnixNano()
			if s < be+w.gap && s+dur+w.gap > bs {
				s = be + w.gap
				s -= floorMod(s, int64(time.Millisecond))
			}
		}
		if s+dur > w.end {
			break
		}
		e := Event{
			Device: dev, Metric: metric, Kind: rt.Kind,
			Start: time.Unix(0, s).UTC(), End: time.Unix(0, s+dur).UTC(),
		}
		sign := 1.0
		if r.next()&1 == 1 {
			sign = -1
		}
		size := 1 + r.float()
		switch rt.Kind {
		case KindSpike, KindLevelShift, KindDrift:
			e.Magnitude = sign * size * rt.Magnitude * scale
		case KindClockSkew:
			e.Magnitude = math.Round(sign*size*rt.Magnitude*1000) / 1000
		case KindNoiseBurst:
			e.Magnitude = rt.Magnitude
		}
		out = append(out, e)
		t = s + dur + w.gap
	}
	return out
}

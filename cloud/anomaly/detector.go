package anomaly

import (
	"math"
	"time"
)

// Result is what a detector says about one point.
type Result struct {
	// Score is the combined anomaly score in [0, 1]. 0 is nothing
	// unusual; a single-kind score of 0.5 is about a one-in-10^10 event
	// (see the package documentation). Scores are withheld (0) during
	// warm-up and after an alarm while the event lasts.
	Score float64
	// Kind names the detector that explains the point best (KindNone
	// when Score is 0).
	Kind Kind
	// Scores holds each detector's own score in [0, 1], indexed by Kind,
	// before suppression. Scores[KindNone] is always 0.
	Scores [numKinds]float64
}

// Detector scores one series (one device's metric). Its memory is fixed
// when it is made (and shrinks once the pattern memory has learnt, after
// about 620 points); Update allocates nothing. A Detector is not safe for
// concurrent use.
type Detector struct {
	cfg Config
	n   int

	prevV float64 // previous value
	prevT time.Time
	lo    float64 // running range
	hi    float64

	sigma float64 // mean |Δx|: the noise scale
	fast  float64 // mean of the last few values: spike baseline
	jump  float64 // the last point's distance from fast before it (see Registry)
	ring  [ringN]float64
	rsum  float64
	ref   float64 // slow mean of the values older than the ring
	e16   float64 // exponential means over 16 and 128 points
	e128  float64
	d2    [ringN]float64 // Δx² of the last ringN points
	d2sum float64
	d2avg float64 // long-run mean of Δx²

	run    int     // repeats of the current value
	maxRun float64 // longest usual run, slowly forgotten
	prep   float64 // probability that a value repeats the previous one

	cadence float64 // typical seconds between points

	vmean, vvar   float64
	daily, weekly profile

	cal    [numKinds]tail
	offset [numKinds]float64 // surprisal each kind ignores
	pat    []pattern

	lastAlarm float64
	sinceAlrm int
	armed     bool
}

// ringN is the short window of the level-shift and noise detectors.
const ringN = 16

// NewDetector returns a detector for one series. Fields of cfg left zero
// take their defaults (see Config).
func NewDetector(cfg Config) *Detector {
	cfg = cfg.withDefaults()
	d := &Detector{cfg: cfg, prep: 0.01, sinceAlrm: math.MaxInt32}
	d.offset[KindNoise] = noiseOffset
	d.daily.init(24, time.Hour)
	d.weekly.init(7*24, time.Hour)
	d.pat = make([]pattern, len(cfg.Scales))
	for i, s := range cfg.Scales {
		d.pat[i] = newPattern(s, cfg.Categories)
	}
	return d
}

// Update feeds the series' next point and scores it. Points are taken in
// the order given: a repeated or earlier timestamp is scored like any
// other (it only counts for nothing in the cadence). A NaN or infinite v
// is ignored and gets the zero Result.
func (d *Detector) Update(t time.Time, v float64) Result {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Result{}
	}
	d.n++
	if d.n == 1 {
		d.first(t, v)
		return Result{}
	}
	var res Result
	s := &res.Scores
	dx := v - d.prevV
	floor := 1e-9 * max(max(math.Abs(v), d.hi-d.lo), 1e-6)
	sig := d.sigma + floor

	full := d.cfg.Constants.Full
	// Single-kind statistics, each calibrated against its own history.
	var stat [numKinds]float64
	var have [numKinds]bool
	// spike: a jump away from the last few values. Whether it was a spike
	// or the start of a level shift shows on the next point (see settle).
	stat[KindSpike], have[KindSpike] = math.Abs(v-d.fast)/sig, true
	mean := (d.rsum - d.ring[d.n%ringN] + v) / ringN
	d2sum := max(0, d.d2sum-d.d2[d.n%ringN]+dx*dx)
	if d.n > ringN {
		stat[KindLevelShift], have[KindLevelShift] = math.Abs(mean-d.ref)/sig, true
		eps := floor * floor
		stat[KindNoise], have[KindNoise] = math.Abs(math.Log((d2sum/ringN+eps)/(d.d2avg+eps))), true
	}
	if d.n > 64 {
		stat[KindDrift], have[KindDrift] = math.Abs(d.e16-d.e128)/sig, true
	}
	if dt := t.Sub(d.prevT).Seconds(); dt > 0 {
		if d.cadence == 0 {
			d.cadence = dt
		}
		stat[KindMissing], have[KindMissing] = dt/d.cadence, true
		// A running median: up 5% when above, down 5% when below.
		if dt > d.cadence {
			d.cadence *= 1.05
		} else if dt < d.cadence {
			d.cadence = max(dt, d.cadence/1.05)
		}
	}
	for k := range numKinds {
		if !have[k] {
			continue
		}
		if d.n <= calStart {
			continue // the scales are still settling
		}
		x := min(stat[k], maxStat)
		if math.IsNaN(x) {
			continue // values so large that their differences overflow
		}
		if k == KindSpike {
			// Spikes that recur (daily jobs, bursty traffic) would each
			// be a far tail event; scoring against the recent record
			// keeps only the spikes that beat every recent one.
			s[k] = kindWeight[k] * min(clamp01(d.cal[k].record(x)/recordFull), clamp01(d.cal[k].surprisal(x)/full))
		} else {
			s[k] = kindWeight[k] * clamp01((d.cal[k].surprisal(x)-d.offset[k])/full)
		}
		d.cal[k].add(x)
	}
	if stat[KindMissing] < minGap {
		s[KindMissing] = 0
	}
	s[KindStuck] = clamp01(d.stuck(dx, v) / full)

	// Seasonal profiles, a new extreme, and the pattern memory.
	dv := v - d.vmean
	a := rate(float64(d.n), 1.0/500)
	d.vmean += a * dv
	d.vvar += a * (dv*dv - d.vvar)
	seas := max(d.daily.update(t, v, floor, d.vvar), d.weekly.update(t, v, floor, d.vvar))
	// A new extreme is evidence too.
	var beyond float64
	if r := d.hi - d.lo; r > 0 {
		beyond = max(v-d.hi, d.lo-v) / r
	}
	d.lo, d.hi = min(d.lo, v), max(d.hi, v)
	// The scales vote: the most confident one counts for half, their
	// mean for the other half, so a new pattern that every scale sees
	// scores higher than one that a single scale sees.
	var conf, csum float64
	for i := range d.pat {
		c := d.pat[i].add(v, d.lo, d.hi)
		conf = max(conf, c)
		csum += c
	}
	conf = (conf + csum/float64(len(d.pat))) / 2
	s[KindPattern] = kindWeight[KindPattern] * (1 - (1-conf)*(1-clamp01(seas/full)))

	d.learn(t, v, dx, sig, mean, d2sum)
	if d.n <= d.cfg.Warmup {
		return Result{Scores: res.Scores}
	}
	res.Score, res.Kind = combine(s, beyond, d.cfg.Constants.Extreme)
	return d.suppress(res)
}

// Calibration of the single-kind scores: score = weight·(surprisal -
// offset)/kindFull, clamped to [0, 1], where the surprisal is -log10 of
// the tail probability; the spike score is weight·log2(x/record)/recordFull
// instead (see tail.record). The offset and weights keep the noise and
// missing detectors, which fire on much of what NAB does not call an
// anomaly, to their clearest cases. Set on NAB (see the package
// documentation), one set for every series.
var (
	kindWeight = [numKinds]float64{KindSpike: 1, KindLevelShift: 1, KindDrift: 1, KindStuck: 1, KindNoise: 1, KindMissing: 0.5, KindPattern: 1}
)

const (
	recordFull = 2   // doublings of the recent record that make a spike score 1
	minGap     = 2.5 // gaps shorter than this many cadences are not missing data
	maxStat    = 1e9 // statistics are clipped here
	calStart   = 30  // points before the statistics are calibrated
	// runForget halves the longest usual run of repeats in about 7,000
	// points.
	runForget = 0.9999
	// Combination and suppression.
	beyondSlope    = 0.5 // ... plus this times the excess, as a share of the range
	alarmLevel     = 0.3 // a score that starts an event
	refractoryGain = 1.2 // within an event, a score must beat the alarm by this factor
	rearm          = 0.1 // an event ends when the score falls below this share of its alarm
	noiseOffset    = 5   // surprisal the noise detector ignores: variance changes are common
)

// rate is the learning rate of a running mean over n values that
// forgets at least at rate least: max(1/n, least), without a division
// once n is past 1/least.
func rate(n, least float64) float64 {
	if n*least >= 1 {
		return least
	}
	return max(1/n, least)
}

// clamp01 is max(0, min(1, x)), NaN and -0 included, with branches that
// the processor predicts instead of min's and max's NaN handling.
func clamp01(x float64) float64 {
	switch {
	case x > 0:
		if x < 1 {
			return x
		}
		return 1
	case x <= 0:
		return 0
	}
	return x // NaN
}

func (d *Detector) first(t time.Time, v float64) {
	d.prevV, d.prevT = v, t
	d.lo, d.hi = v, v
	d.fast, d.ref, d.e16, d.e128 = v, v, v, v
	d.ring[d.n%ringN] = v
	d.rsum = v
	d.vmean = v
	d.daily.update(t, v, 0, 0)
	d.weekly.update(t, v, 0, 0)
	for i := range d.pat {
		d.pat[i].add(v, v, v)
	}
}

// stuck scores a run of repeated values: each repeat beyond the longest
// usual run costs the learned probability of a repeat, so a series that
// often repeats itself (quantised, or idle) needs a much longer run than
// a noisy one. It returns a surprisal.
func (d *Detector) stuck(dx, v float64) float64 {
	var s float64
	if math.Abs(dx) <= 1e-12*max(1, math.Abs(v)) {
		d.run++
		s = max(0, float64(d.run)-d.maxRun) * -math.Log10(max(d.prep, 0.01))
		d.prep += (1 - d.prep) / 256
	} else {
		d.maxRun = max(d.maxRun, float64(d.run))
		d.run = 0
		d.prep -= d.prep / 256
	}
	d.maxRun *= runForget
	return s
}

// learn updates the baselines after scoring.
func (d *Detector) learn(t time.Time, v, dx, sig, mean, d2sum float64) {
	ad := math.Abs(dx)
	if d.n > 20 {
		ad = min(ad, 6*sig) // a spike must not inflate the scale
	}
	d.sigma += rate(float64(d.n), 0.02) * (ad - d.sigma)
	d.jump = v - d.fast
	d.fast += 0.3 * (max(d.fast-6*sig, min(d.fast+6*sig, v)) - d.fast)
	i := d.n % ringN
	if d.n > ringN {
		d.ref += (d.ring[i] - d.ref) / 64
	} else {
		d.ref = mean
	}
	d.ring[i] = v
	d.rsum = mean * ringN
	d.d2[i] = dx * dx
	d.d2sum = d2sum
	if i == 0 {
		// Running sums drift by rounding: recompute them now and then.
		d.rsum, d.d2sum = 0, 0
		for j := range ringN {
			d.rsum += d.ring[j]
			d.d2sum += d.d2[j]
		}
	}
	d.e16 += (v - d.e16) / 16
	d.e128 += (v - d.e128) / 128
	d.d2avg += rate(float64(d.n), 1.0/256) * (dx*dx - d.d2avg)
	d.prevV, d.prevT = v, t
}

// combine merges the detectors' scores by probabilistic OR (agreeing
// detectors reinforce each other), with a new extreme as one more piece
// of evidence, and names the kind.
func combine(s *[numKinds]float64, beyond, extreme float64) (float64, Kind) {
	none := 1.0
	best, kind := 0.0, KindNone
	for k := KindSpike; k < numKinds; k++ {
		x := s[k]
		none *= 1 - x
		if x > best {
			best, kind = x, k
		}
	}
	if beyond > 0 && extreme > 0 {
		none *= 1 - clamp01(extreme+beyondSlope*beyond)
		if kind == KindNone || kind == KindPattern {
			kind = KindSpike
		}
	}
	score := 1 - none
	if score <= 0 {
		return 0, KindNone
	}
	if kind == KindPattern {
		// Name a single-kind detector that clearly agrees, if any.
		b := 0.0
		for k := KindSpike; k < KindPattern; k++ {
			if s[k] >= 0.2 && s[k] > b {
				b, kind = s[k], k
			}
		}
	}
	return score, kind
}

// suppress keeps one alarm per event. An alarm (a score of alarmLevel or
// more) starts an event; until the score falls below rearm times the
// alarm, and for at least Config.Refractory points, scores that do not
// beat the alarm by refractoryGain are withheld.
func (d *Detector) suppress(r Result) Result {
	if d.sinceAlrm < math.MaxInt32 {
		d.sinceAlrm++
	}
	if r.Score < d.lastAlarm*rearm {
		d.armed = true
	}
	if (!d.armed || d.sinceAlrm <= d.cfg.Refractory) && r.Score <= d.lastAlarm*refractoryGain {
		r.Score, r.Kind = 0, KindNone
		return r
	}
	if r.Score >= alarmLevel {
		d.lastAlarm, d.sinceAlrm, d.armed = r.Score, 0, false
	}
	return r
}

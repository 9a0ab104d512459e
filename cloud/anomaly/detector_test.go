package anomaly_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

// threshold is the default Config.AlertThreshold.
const threshold = 0.6

// inject is where the test series change: day 4, well after every
// detector has learnt.
const inject = 4 * day

// learnt is when the slowest pattern memory of the default Config (scale
// 6) has learnt (104 steps) and adapted its vigilance once after (52
// steps): 6·156 points. Before, its scores are not yet calibrated: the
// end of learning can raise a false alarm, and a Registry opens no
// incident then.
const learnt = 6 * (104 + 52)

// kindCases inject one kind of anomaly each into a clean series.
var kindCases = []struct {
	name   string
	inject func(s *series)
	within int            // the alarm must come this many points after inject
	kinds  []anomaly.Kind // the first alarm's kind must be one of these
}{
	{"spike", func(s *series) { s.v[inject] += 5 }, 1, []anomaly.Kind{anomaly.KindSpike}},
	{"level shift", func(s *series) {
		for i := inject; i < len(s.v); i++ {
			s.v[i] += 3
		}
	}, 1, []anomaly.Kind{anomaly.KindSpike}}, // the Detector sees a jump; the Registry tells it from a spike (TestRegistryLevelShift)
	{"stuck", func(s *series) {
		for i := inject; i < inject+300; i++ {
			s.v[i] = s.v[inject]
		}
	}, 10, []anomaly.Kind{anomaly.KindStuck}},
	// Drift and noise are caught, but on a diurnal series the drift and
	// noise statistics stay below their calibrated tails: the pattern
	// memory and the level detector raise the alarm and name it.
	{"drift", func(s *series) {
		for i := inject; i < len(s.v); i++ {
			s.v[i] += 0.05 * float64(i-inject)
		}
	}, 400, []anomaly.Kind{anomaly.KindDrift, anomaly.KindLevelShift, anomaly.KindPattern, anomaly.KindSpike}},
	{"noise", func(s *series) {
		r := rand.New(rand.NewPCG(9, 9))
		for i := inject; i < len(s.v); i++ {
			s.v[i] += 8 * noise * r.NormFloat64()
		}
	}, 30, []anomaly.Kind{anomaly.KindNoise, anomaly.KindSpike, anomaly.KindPattern}},
}

func TestDetectorKinds(t *testing.T) {
	for _, c := range kindCases {
		for seed := uint64(1); seed <= 3; seed++ {
			s := clean(5, seed)
			c.inject(&s)
			d := anomaly.NewDetector(anomaly.Config{})
			alarm := -1
			var kind anomaly.Kind
			for i := range s.v {
				r := d.Update(s.t[i], s.v[i])
				if r.Score >= threshold && i > learnt {
					if i < inject {
						t.Fatalf("%s seed %d: false alarm %.2f (%s) at point %d of the clean series", c.name, seed, r.Score, r.Kind, i)
					}
					alarm, kind = i, r.Kind
					break
				}
			}
			if alarm < 0 || alarm > inject+c.within {
				t.Errorf("%s seed %d: first alarm at %d, want within %d points of %d", c.name, seed, alarm, c.within, inject)
				continue
			}
			ok := false
			for _, k := range c.kinds {
				ok = ok || k == kind
			}
			if !ok {
				t.Errorf("%s seed %d: alarm of kind %s, want one of %v", c.name, seed, kind, c.kinds)
			}
		}
	}
}

// TestDetectorGap: a gap of 30 cadences is scored as missing data at the
// point after it. On its own a gap scores at most 0.5, below the default
// threshold (gaps are common in real telemetry); Registry.Sweep raises
// the alert for a live series (TestRegistrySweep).
func TestDetectorGap(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		s := clean(5, seed)
		for i := inject; i < len(s.t); i++ {
			s.t[i] = s.t[i].Add(30 * time.Minute)
		}
		d := anomaly.NewDetector(anomaly.Config{})
		for i := range s.v {
			r := d.Update(s.t[i], s.v[i])
			if i < inject && r.Scores[anomaly.KindMissing] > 0 {
				t.Fatalf("seed %d: missing score %.2f at point %d of a regular series", seed, r.Scores[anomaly.KindMissing], i)
			}
			if i == inject {
				if r.Kind != anomaly.KindMissing || r.Score < 0.5 {
					t.Errorf("seed %d: after the gap: score %.2f kind %s, want >= 0.5 missing", seed, r.Score, r.Kind)
				}
				break
			}
		}
	}
}

func TestDetectorWarmup(t *testing.T) {
	d := anomaly.NewDetector(anomaly.Config{Warmup: 50})
	s := clean(1, 1)
	for i := range 50 {
		if r := d.Update(s.t[i], s.v[i]+float64(i%7)*100); r.Score != 0 {
			t.Fatalf("point %d in warm-up scored %v", i, r.Score)
		}
	}
}

func TestDetectorIgnoresNaN(t *testing.T) {
	d := anomaly.NewDetector(anomaly.Config{})
	s := clean(1, 1)
	for i := range s.v {
		v := s.v[i]
		if i%100 == 50 {
			v = math.NaN()
		} else if i%100 == 70 {
			v = math.Inf(1)
		}
		r := d.Update(s.t[i], v)
		if math.IsNaN(r.Score) || r.Score < 0 || r.Score > 1 {
			t.Fatalf("point %d: score %v", i, r.Score)
		}
		if v != s.v[i] && r != (anomaly.Result{}) {
			t.Fatalf("point %d: non-finite value scored %+v", i, r)
		}
	}
}

// TestDetectorNoAllocs: Update allocates nothing, from the first point.
func TestDetectorNoAllocs(t *testing.T) {
	s := clean(3, 1)
	d := anomaly.NewDetector(anomaly.Config{})
	i := 0
	allocs := testing.AllocsPerRun(len(s.v)-1, func() {
		d.Update(s.t[i], s.v[i])
		i++
	})
	if allocs != 0 {
		t.Errorf("Update: %v allocs per point, want 0", allocs)
	}
}

// TestDetectorScoresInRange feeds awkward series: constant, huge, tiny,
// alternating, backwards and repeated time.
func TestDetectorScoresInRange(t *testing.T) {
	gens := map[string]func(i int) (time.Duration, float64){
		"constant":    func(i int) (time.Duration, float64) { return time.Duration(i) * time.Minute, 7 },
		"huge":        func(i int) (time.Duration, float64) { return time.Duration(i) * time.Minute, 1e300 * float64(i%3) },
		"tiny":        func(i int) (time.Duration, float64) { return time.Duration(i) * time.Minute, 1e-300 * float64(i%5) },
		"alternating": func(i int) (time.Duration, float64) { return time.Duration(i) * time.Minute, float64(i % 2) },
		"same time":   func(i int) (time.Duration, float64) { return 0, float64(i % 13) },
		"backwards":   func(i int) (time.Duration, float64) { return -time.Duration(i) * time.Minute, float64(i % 13) },
	}
	for name, g := range gens {
		d := anomaly.NewDetector(anomaly.Config{})
		for i := range 3000 {
			dt, v := g(i)
			r := d.Update(t0.Add(dt), v)
			if !(r.Score >= 0 && r.Score <= 1) {
				t.Fatalf("%s: point %d: score %v", name, i, r.Score)
			}
			for k, x := range r.Scores {
				if !(x >= 0 && x <= 1) {
					t.Fatalf("%s: point %d: Scores[%d] = %v", name, i, k, x)
				}
			}
		}
	}
}

package anomaly_test

import (
	"math"
	"math/rand/v2"
	"time"
)

// series is a synthetic test series: a diurnal wave with noise, one point
// a minute, from a fixed seed.
type series struct {
	t []time.Time
	v []float64
}

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const (
	day   = 1440 // points
	noise = 0.2
)

func clean(days int, seed uint64) series {
	r := rand.New(rand.NewPCG(seed, 7))
	n := days * day
	s := series{t: make([]time.Time, n), v: make([]float64, n)}
	for i := range n {
		s.t[i] = t0.Add(time.Duration(i) * time.Minute)
		s.v[i] = 20 + 5*math.Sin(2*math.Pi*float64(i)/day) + noise*r.NormFloat64()
	}
	return s
}

package anomaly

import (
	"math"
	"time"
)

// profile is a seasonal profile: the mean value per time bin of a period
// (hour of the day, hour of the week), learnt online. Once every bin has
// a few values, it scores how far the last few points stray from their
// bins, calibrated against the history of that statistic.
type profile struct {
	bins   []profBin // fixed length, allocated once
	width  int64     // bin width, ns
	ready  bool
	recent [6]float64 // last residuals
	sum    float64
	i      int
	scale  float64 // mean |residual|
	rvar   float64 // residual variance
	n      int
	cal    tail
	first  int64 // ns of the first value
	total  int   // values seen

	// The bin of the last value and the span of time [binLo, binHi)
	// that maps to it, so that most values need no division.
	bi, binLo, binHi int64
}

type profBin struct {
	n    int32
	mean float64
}

const (
	profMin = 3  // values per bin before the profile scores
	profMem = 10 // periods a bin's mean remembers
)

func (p *profile) init(nbins int, width time.Duration) {
	p.bins = make([]profBin, nbins)
	p.width = int64(width)
}

// update learns v at t and returns the surprisal of the recent residuals
// (0 until every bin is ready, and while the profile explains less than
// half of the variance vvar of the values).
func (p *profile) update(t time.Time, v, floor, vvar float64) float64 {
	ns := t.UnixNano()
	if p.total == 0 {
		p.first = ns
	}
	p.total++
	if ns < p.binLo || ns >= p.binHi || p.total == 1 {
		q := floorDiv(ns, p.width)
		p.bi = q % int64(len(p.bins))
		if p.bi < 0 {
			p.bi += int64(len(p.bins))
		}
		p.binLo, p.binHi = q*p.width, q*p.width+p.width
	}
	b := &p.bins[p.bi]
	var s float64
	if !p.ready {
		p.ready = true
		for i := range p.bins {
			if p.bins[i].n < profMin {
				p.ready = false
				break
			}
		}
	}
	if p.ready {
		r := v - b.mean
		i := p.i % len(p.recent)
		p.sum += r - p.recent[i]
		p.recent[i] = r
		p.i++
		if i == 0 {
			p.sum = 0 // against rounding drift
			for _, x := range p.recent {
				p.sum += x
			}
		}
		m := p.sum / float64(len(p.recent))
		p.n++
		a := rate(float64(p.n), 1.0/100)
		p.scale += a * (math.Abs(r) - p.scale)
		p.rvar += max(a, 1.0/500) * (r*r - p.rvar)
		if p.n > len(p.recent)*4 {
			st := min(math.Abs(m)/(p.scale+floor), maxStat)
			if p.rvar < vvar/2 {
				s = p.cal.surprisal(st)
			}
			p.cal.add(st)
		}
	}
	if b.n < math.MaxInt32 {
		b.n++
	}
	// A bin's mean remembers about profMem periods, whatever the rate.
	period := float64(p.width) * float64(len(p.bins))
	cycles := max(1, float64(ns-p.first)/period)
	perBin := float64(p.total) / cycles / float64(len(p.bins))
	b.mean += rate(float64(b.n), 1/(profMem*max(perBin, 1))) * (v - b.mean)
	return s
}

// floorDiv is a/b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

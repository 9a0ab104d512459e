package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The previous pattern memory (before 2026-11-26, commit c573d1c) matched
// a window against one category at a time: it read each category's
// similarity bound from the latest level alone, and gave up on a category
// as soon as the bound, then the match over the level dimensions, showed
// it could neither win nor learn. oneAtATime is that matcher, recovered
// from the history and kept here as the baseline of BenchmarkMatch (the
// blocks that train matches now are faster) and as a
// check that train chooses what it chose.
type oneAtATime struct {
	cats     []oldCategory
	en       []oldEnergy
	learners []int
	lastBest int
}

// oldCategory is a box as the previous memory kept it.
type oldCategory struct {
	c, w  [patD]float64
	den   float64 // Σ (1 - 2w)
	empty bool
}

// oldEnergy is the latest-level dimension of a category.
type oldEnergy struct {
	c, w float64
	inv  float64 // 1/(1-2w), or 0
	base float64 // 1, or 0.5 for the uncommitted category
}

// load copies the boxes of p's categories.
func (o *oneAtATime) load(p *pattern) {
	o.cats, o.en = o.cats[:0], o.en[:0]
	for j, pc := range p.cats {
		c := oldCategory{empty: pc.empty}
		for d := range patD {
			c.c[d], c.w[d] = p.box.v[at(2*d, j)], p.box.v[at(2*d+1, j)]
		}
		c.den = p.box.v[at(rowDen2, j)] / 2
		e := oldEnergy{base: 0.5}
		if !c.empty {
			e = oldEnergy{c: c.c[patD-1], w: c.w[patD-1], inv: p.box.v[at(rowInv, j)], base: 1}
		}
		o.cats, o.en = append(o.cats, c), append(o.en, e)
	}
	o.lastBest = p.lastBest
}

// match is the similarity of x to the box, or a bound below floor once it
// cannot reach floor.
func (c *oldCategory) match(x *[patD]float64, es, floor float64) float64 {
	if c.empty {
		return emptyMatch
	}
	var e float64
	for d := patW; d < patD; d++ {
		e += boxDist(x[d], c.c[d], c.w[d])
	}
	den := 2 * c.den
	if fs := 1 - e/den; fs*fs*fs*es*es < floor {
		return fs * fs * fs * es * es
	}
	for d := range patW {
		e += boxDist(x[d], c.c[d], c.w[d])
	}
	fs := 1 - e/den
	return fs * fs * fs * es * es
}

func (e *oldEnergy) sim(x float64) float64 {
	return e.base - max(math.Abs(x-e.c)-e.w, 0)*e.inv
}

// match is the matching part of the previous train: the best category,
// its similarity and energy similarity, and the categories at or above
// the upper vigilance ub (the last best first).
func (o *oneAtATime) match(x *[patD]float64, ub float64) (int, float64, float64) {
	learners := o.learners[:0]
	xe := x[patD-1]
	j0 := min(o.lastBest, len(o.cats)-1)
	es := o.en[j0].sim(xe)
	bestM := o.cats[j0].match(x, es, -1)
	best, bestE := j0, es
	if bestM >= ub {
		learners = append(learners, j0)
	}
	for j := range o.en {
		if j == j0 {
			continue
		}
		es := o.en[j].sim(xe)
		floor := min(bestM, ub)
		if es*es < floor {
			continue
		}
		m := o.cats[j].match(x, es, floor)
		if m > bestM {
			best, bestM, bestE = j, m, es
		}
		if m >= ub {
			learners = append(learners, j)
		}
	}
	o.learners = learners
	o.lastBest = best
	return best, bestM, bestE
}

// learnt returns the scale-2 pattern memory of a detector that has seen
// points of the noisy benchmark series, and windows of the same series
// later on, in the memory's coordinates, to match against it.
func learnt(t testing.TB, points int) (*pattern, [][patD]float64) {
	ts, vs := noisySeries(points + 4*patT)
	d := NewDetector(Config{})
	for i := range points {
		d.Update(ts[i], vs[i])
	}
	p := &d.pat[0]
	// A fresh memory keeps the raw features of its first windows until it
	// learns from them: windows of the series after points.
	var xs [][patD]float64
	for off := points; off+2*patT < len(vs); off += patT {
		q := newPattern(p.step, p.cap)
		for _, v := range vs[off : off+p.step*(patT-1)] {
			q.add(v, d.lo, d.hi)
		}
		for i := patW - 1; i < patT-1; i++ {
			xs = append(xs, p.normalise(&q.warm.feats[i]))
		}
	}
	if len(p.cats) < 16 || len(xs) < 100 {
		t.Fatalf("%d categories, %d windows: the memory has not learnt", len(p.cats), len(xs))
	}
	return p, xs
}

// TestMatchOneAtATime: train, matching all categories a block at a time,
// chooses the category, similarities and learners that the previous
// matcher chose, to the bit.
func TestMatchOneAtATime(t *testing.T) {
	for _, points := range []int{1000, 5000, 20000} {
		p, xs := learnt(t, points)
		var o oneAtATime
		for i := range xs {
			o.load(p)
			best, m, e := o.match(&xs[i], p.rhoUB)
			gotM, gotE, _ := p.train(&xs[i], false)
			if p.lastBest != best || math.Float64bits(gotM) != math.Float64bits(m) ||
				math.Float64bits(gotE) != math.Float64bits(e) || !slices.Equal(p.learners, o.learners) {
				t.Fatalf("after %d points, window %d: best %d (%v, %v) learners %v; one at a time: %d (%v, %v) %v",
					points, i, p.lastBest, gotM, gotE, p.learners, best, m, e, o.learners)
			}
		}
	}
}

// BenchmarkMatch matches windows of the noisy benchmark series against a
// learnt memory (64 categories), a block at a time as train does (AVX2
// where the processor has it) and one category at a time as the previous
// detector did. The two alternate every 256 windows, so that both see the
// same load on a shared machine, and each reports its median time per
// window over those chunks (a chunk that the scheduler preempted does not
// count for more than one), and their ratio (x-faster).
func BenchmarkMatch(b *testing.B) {
	p, xs := learnt(b, 20000)
	var o oneAtATime
	o.load(p)
	const chunk = 256
	var blocks, old []time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		for k := range chunk {
			p.train(&xs[(n+k)%len(xs)], false)
		}
		t1 := time.Now()
		for k := range chunk {
			o.match(&xs[(n+k)%len(xs)], p.rhoUB)
		}
		blocks, old = append(blocks, t1.Sub(t0)), append(old, time.Since(t1))
		n += chunk
	}
	mb, mo := median(blocks)/chunk, median(old)/chunk
	b.ReportMetric(float64(mb.Nanoseconds()), "ns/window-blocks")
	b.ReportMetric(float64(mo.Nanoseconds()), "ns/window-one-at-a-time")
	b.ReportMetric(mo.Seconds()/mb.Seconds(), "x-faster")
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// noisySeries is the benchmarks' series, one point a minute: a diurnal
// wave with noise, a spike every 1,777 points and a level shift every
// 5,000.
func noisySeries(n int) ([]time.Time, []float64) {
	const day = 1440
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ts := make([]time.Time, n)
	vs := make([]float64, n)
	r := rand.New(rand.NewPCG(1, 2))
	level := 20.0
	for i := range n {
		ts[i] = t0.Add(time.Duration(i) * time.Minute)
		if i%5000 == 4999 {
			level += 3
		}
		vs[i] = level + 5*math.Sin(2*math.Pi*float64(i)/day) + r.NormFloat64()
		if i%1777 == 0 {
			vs[i] += 10
		}
	}
	return ts, vs
}

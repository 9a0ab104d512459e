package anomaly

import (
	"cmp"
	"math"
	"slices"
)

// Constants of the pattern memory, from ARTime (Hampton 2021), which tuned
// them on NAB; see the package documentation.
const (
	patW      = 8        // window: downsampled values per pattern
	patD      = 2 * patW // features: Haar shape of the window, then its levels
	patT      = 104      // learning period and trend window, in downsampled steps
	patMask   = 12       // steps during which a new anomaly must be clearly worse
	patLevels = 80       // discretisation: levels across the (lagged) range
	patLag    = 50       // lag of that range, in downsampled steps
	patChomp  = 0.075    // values this close (share of range) to the median are the median
	patRho0   = 0.80     // vigilance of the initial ordering pass
	patUBCap  = 0.97     // highest upper vigilance
	patSimWin = patT/2 + 1
	patDifWin = patT + 1
)

// pattern is one time scale of the pattern memory: a bounded, streaming
// variant of ARTime's dual-vigilance fuzzy ART over windows of downsampled
// values. Update cost is O(categories·16) once every step points.
type pattern struct {
	step int
	cap  int

	// downsampling
	cnt              int
	dsum, dmax, dmin float64
	avg              float64
	dsi              int // downsampled steps so far
	med              float64
	rc               float64       // lagged range
	win              [patW]float64 // raw (discretised) levels

	// normalisation of the stored categories
	lo, rng float64

	cats      []category // len ≤ cap, allocated once
	box       boxes      // the categories' boxes, in the same slots
	learners  []int      // scratch: categories above the upper vigilance
	lastBest  int
	nclusters int32
	tick      uint32
	rhoLB     float64
	rhoUB     float64

	warm *learnBuf // the learning period; nil after it

	lastAnomI    int
	lastAnomSim  float64
	lastRhoI     int
	maskAfterCat bool
	noNewCat     int
	simSum       float64 // running mean of all best similarities
	simN         float64
	simWin       [patSimWin]float64 // ring
	simDiff      [patDifWin]float64 // ring
	anomSum      float64            // mean of the anomalies' similarities
	anomN        int
	anomLast     float64
}

// learnBuf holds what the learning period needs: allocated with the
// pattern memory, so that its memory is fixed when it is made, and let go
// when the period ends.
type learnBuf struct {
	feats [patT][patD]float64
	sum   [patT]float64
	order [patT]int
}

func newPattern(step, capacity int) pattern {
	p := pattern{step: step, cap: capacity, cats: make([]category, 0, capacity),
		box: newBoxes(capacity), learners: make([]int, 0, capacity), warm: new(learnBuf)}
	for i := range p.simWin {
		p.simWin[i] = 1
	}
	return p
}

// add feeds one raw value with the series' running range [lo, hi]. It
// returns a confidence in (0,1] when the window it completes is a new
// cluster that the masking rules let through, else 0.
func (p *pattern) add(x, lo, hi float64) float64 {
	if p.cnt == 0 {
		p.dsum, p.dmax, p.dmin = 0, x, x
	}
	p.cnt++
	p.dsum += x
	p.dmax = max(p.dmax, x)
	p.dmin = min(p.dmin, x)
	if p.cnt < p.step {
		return 0
	}
	mean := p.dsum / float64(p.cnt)
	p.cnt = 0
	p.dsi++
	if p.dsi == 1 {
		p.avg = mean
	}
	p.avg = (p.avg + mean) / 2
	// Keep the extreme that is farther from the moving average, so that
	// downsampling keeps spikes.
	ds := p.dmax
	if math.Abs(p.dmax-p.avg) < math.Abs(p.dmin-p.avg) {
		ds = p.dmin
	}
	if math.Abs(ds-mean) < 0.1*math.Abs(mean) {
		ds = mean
	}
	r := hi - lo
	p.renormalise(lo, r)
	// Discretise to 1/80 of the range, and flatten what is near the
	// running median: noise suppression.
	// The noise floor (levels, chomp) follows the range with a lag, so
	// that one extreme does not change at once how every window looks.
	p.rc += rate(float64(p.dsi), 1.0/patLag) * (r - p.rc)
	q := p.rc / patLevels
	if q > 0 {
		ds = lo + math.Round((ds-lo)/q)*q
	}
	switch {
	case p.dsi == 1:
		p.med = ds
	case ds > p.med:
		p.med += q
	case ds < p.med:
		p.med -= q
	}
	chomp := patChomp * p.rc
	if math.Abs(ds-p.med) < chomp {
		ds = p.med
	}
	copy(p.win[:], p.win[1:])
	p.win[patW-1] = ds

	var f [patD]float64
	for i := patW; i < patD; i++ {
		f[i] = lo
	}
	if p.dsi >= patW {
		p.features(&f)
	}
	if p.dsi <= patT {
		p.warm.feats[p.dsi-1] = f
		if p.dsi == patT {
			p.learn()
		}
		return 0
	}
	return p.detect(p.normalise(&f), p.dsi)
}

// features fills f with the window's shape (Haar transform of the window
// scaled to [0,1], then scaled to [0,1]) and its raw levels.
func (p *pattern) features(f *[patD]float64) {
	var w [patW]float64
	mn, mx := p.win[0], p.win[0]
	for _, v := range p.win {
		mn, mx = min(mn, v), max(mx, v)
	}
	for i, v := range p.win {
		w[i] = v - mn
		if mx > mn {
			w[i] /= mx - mn
		}
	}
	h := haar8(w)
	mn, mx = h[0], h[0]
	for _, v := range h {
		mn, mx = min(mn, v), max(mx, v)
	}
	for i, v := range h {
		f[i] = v - mn
		if mx > mn {
			f[i] /= mx - mn
		}
	}
	copy(f[patW:], p.win[:])
}

// haar8 is the full orthonormal Haar transform of 8 values, ordered as
// Wavelets.jl orders it: approximation, then details coarse to fine.
func haar8(a [patW]float64) [patW]float64 {
	const s = math.Sqrt2 / 2
	var out [patW]float64
	for n := patW; n > 1; n /= 2 {
		h := n / 2
		var t [patW]float64
		for i := range h {
			t[i] = (a[2*i] + a[2*i+1]) * s
			out[h+i] = (a[2*i] - a[2*i+1]) * s
		}
		copy(a[:h], t[:h])
	}
	out[0] = a[0]
	return out
}

// normalise maps raw features to the categories' coordinates.
func (p *pattern) normalise(f *[patD]float64) [patD]float64 {
	var x [patD]float64
	copy(x[:patW], f[:patW])
	for i := patW; i < patD; i++ {
		if p.rng > 0 {
			x[i] = (f[i] - p.lo) / p.rng
		}
	}
	return x
}

// renormalise remaps the level dimensions of every category when the
// running range changes (only at new extremes).
func (p *pattern) renormalise(lo, rng float64) {
	if lo == p.lo && rng == p.rng {
		return
	}
	if p.rng > 0 && rng > 0 {
		a := p.rng / rng
		b := (p.lo - lo) / rng
		for j := range p.cats {
			if !p.cats[j].empty {
				p.box.remap(j, a, b)
				p.box.changed(j)
			}
		}
	}
	p.lo, p.rng = lo, rng
}

// learn ends the learning period as ARTime does: it orders the period's
// windows from least to most typical, runs them through a throw-away memory
// at vigilance 0.8 to set the initial vigilance, then replays them.
func (p *pattern) learn() {
	b := p.warm
	p.warm = nil
	feats := b.feats[:]
	for i := range feats {
		feats[i] = p.normalise(&feats[i])
	}
	rho := p.initRho(feats[patW-1:], b)
	p.rhoLB, p.rhoUB = rho, rho
	for i := range feats {
		p.detect(feats[i], i+1)
	}
}

func cosine(a, b *[patD]float64) float64 {
	var na, nb, dot float64
	for i := range a {
		x, y := a[i], b[i]
		na += x * x
		nb += y * y
		dot += x * y
	}
	na, nb = math.Sqrt(na), math.Sqrt(nb)
	switch {
	case na == 0:
		return 1 - nb
	case nb == 0:
		return 1 - na
	}
	return dot / (na * nb)
}

func (p *pattern) initRho(x [][patD]float64, b *learnBuf) float64 {
	n := len(x)
	sum := b.sum[:n]
	for i := range n {
		sum[i]++ // self-similarity
		for j := range i {
			s := cosine(&x[i], &x[j])
			sum[i] += s
			sum[j] += s
		}
	}
	order := b.order[:n]
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sum[a], sum[b]) })
	p.rhoLB, p.rhoUB = patRho0, patRho0
	var s float64
	var c int
	for k, o := range order {
		a, _, _ := p.train(&x[o], true)
		// ARTime averages art.A[trend_window÷2:end]; A[1] is the 0 of
		// the initialisation.
		if k >= patT/2-1 {
			s += a
			c++
		}
	}
	p.cats = p.cats[:0]
	p.nclusters = 0
	if c == 0 {
		return patRho0
	}
	return s / float64(c)
}

// train runs one dual-vigilance fuzzy ART step on x. It returns the best
// match, its energy similarity (the match of the latest level alone) and
// the cluster label, -1 for a new cluster.
//
// It computes the similarity of x to every category (similarities: that
// is cheaper, a block at a time, than bounding and pruning them one at a
// time) and takes the last best category first, then the others in
// order: the first of equal matches wins.
func (p *pattern) train(x *[patD]float64, learning bool) (float64, float64, int32) {
	if len(p.cats) == 0 {
		p.cats = append(p.cats, category{label: 1, empty: true})
		p.box.setEmpty(0)
		p.nclusters = 1
		return 0, 0, 1
	}
	p.tick++
	ub := p.rhoUB
	n := len(p.cats)
	top := p.box.similarities(x, n)
	es, sim := p.box.es[:n], p.box.sim[:n]
	if p.cats[0].empty {
		// Only the first category can be uncommitted (see above).
		sim[0] = emptyMatch
		if emptyMatch > top {
			top = emptyMatch
		}
	}
	// The best is the first category, in that order, whose similarity is
	// the largest, top (a NaN similarity never wins, unless j0's).
	j0 := min(p.lastBest, n-1)
	best := j0
	if sim[j0] != top && !math.IsNaN(sim[j0]) {
		for j, m := range sim {
			if m == top {
				best = j
				break
			}
		}
	}
	bestM, bestE := sim[best], es[best]
	learners := p.learners[:0]
	if top >= ub {
		if sim[j0] >= ub {
			learners = append(learners, j0)
		}
		for j, m := range sim {
			if m >= ub && j != j0 {
				learners = append(learners, j)
			}
		}
	}
	p.learners = learners
	p.lastBest = best
	if !learning {
		return bestM, bestE, -1
	}
	p.cats[best].used = p.tick
	label := p.cats[best].label
	switch {
	case len(learners) > 0:
		// Resonance: every category above the upper vigilance learns.
		for _, j := range learners {
			if p.box.grow(j, x) || p.cats[j].empty {
				p.box.changed(j)
			}
			p.cats[j].empty = false
		}
	case bestM >= p.rhoLB:
		// A new category in the same cluster: no anomaly.
		p.add1(x, label)
	default:
		p.nclusters++
		label = -1
		p.add1(x, p.nclusters)
	}
	return bestM, bestE, label
}

// add1 adds a category at x, replacing the least recently used one when
// the memory is full.
func (p *pattern) add1(x *[patD]float64, label int32) {
	c := category{label: label, used: p.tick}
	j := len(p.cats)
	if j < p.cap {
		p.cats = append(p.cats, c)
	} else {
		j = 0
		lru := p.cats[0].used
		for k, c := range p.cats {
			if c.used < lru {
				j, lru = k, c.used
			}
		}
		p.cats[j] = c
	}
	p.box.set(j, x)
}

// detect is ARTime's detect!: classify, mask, adapt the vigilance.
func (p *pattern) detect(x [patD]float64, i int) float64 {
	updAfterAnom := i-p.lastAnomI == patMask
	updForTrend := i-p.lastRhoI >= patT/2
	maskAfterAnom := i-p.lastAnomI <= patMask
	if i > patT+patMask && p.maskAfterCat && p.noNewCat >= patMask {
		p.maskAfterCat = false
	}
	var a, ae float64
	var label int32
	if i < patW {
		a, ae, _ = p.train(&x, false)
		label = -1
	} else {
		a, ae, label = p.train(&x, true)
	}
	if label == -1 {
		p.noNewCat = 0
	} else {
		p.noNewCat++
	}
	p.simN++
	p.simSum += a
	p.simWin[i%patSimWin] = a
	p.simDiff[i%patDifWin] = p.rhoUB - a
	if i-p.lastAnomI < patMask && p.anomN > 0 && a < p.anomLast {
		p.anomSum += a - p.anomLast
		p.anomLast = a
	}
	scale := 0.70
	if maskAfterAnom {
		scale = 0.90
	}
	masked := p.maskAfterCat || maskAfterAnom
	var conf float64
	if i > patT && label == -1 && (!masked || a < p.lastAnomSim*scale) {
		conf = p.confidence(a, ae)
		p.anomSum += a
		p.anomN++
		p.anomLast = a
		p.lastAnomSim = a
		p.lastAnomI = i
	}
	p.maskAfterCat = p.maskAfterCat || label == -1
	if i > patT && (updAfterAnom || updForTrend) {
		p.adaptVigilance(i)
	}
	return conf
}

func (p *pattern) adaptVigilance(i int) {
	minSim := p.simWin[0]
	for _, s := range p.simWin {
		minSim = min(minSim, s)
	}
	ub := min(patUBCap, p.simSum/p.simN)
	lb := p.rhoLB
	if lb <= minSim {
		lb += (minSim - lb) * 0.19
	} else {
		decr := 0.0
		if i > 2*patT {
			var s float64
			var c int
			for _, x := range p.simDiff {
				if x > 0.05 {
					s += min(0.37, x)
					c++
				}
			}
			if c > 0 {
				decr = s / float64(c)
			}
		}
		lb -= max(0.01, decr) / 2
		if p.anomN > 0 {
			lb = max(p.anomSum/float64(p.anomN), lb)
		}
	}
	p.rhoLB, p.rhoUB = min(ub, lb), ub
	p.lastRhoI = i
	p.maskAfterCat = true
}

// confidence is ARTime's: how far the best similarity falls below both
// vigilances, plus how badly the latest level matches.
func (p *pattern) confidence(fs, es float64) float64 {
	fs = min(0.999, fs)
	ub := 1 - (1-p.rhoUB)/(1-fs)
	lb := 1 - (1-p.rhoLB)/(1-fs)
	return max(0, min(1, ub*0.35+lb*0.65+(1-es)*1.5))
}

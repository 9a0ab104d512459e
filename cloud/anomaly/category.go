package anomaly

import "math"

// category is what a pattern memory keeps of one category besides its
// box (see boxes).
type category struct {
	label int32  // cluster
	used  uint32 // last step it was the best match (LRU)
	empty bool   // uncommitted (ARTime's initial all-ones category)
}

// boxes holds the categories of a pattern memory as boxes in feature
// space, each kept as its centre and half-width in every dimension.
// Coordinates are normalised: shape dimensions live in [0,1] by
// construction, level dimensions are (value-lo)/range for the detector's
// running range, and are remapped when that range grows.
//
// The boxes are stored in blocks of boxLanes categories, and in a block by
// dimension, in rows of boxLanes values (one per category): the centres
// in dimension 0, the half-widths in dimension 0, and so on, then one row
// each of den2, inv and base. So similarities can match a window against
// several categories at once, one per lane of a vector register, reading
// each block from one stretch of memory. Each lane adds the same terms in
// the same order as one category at a time would, so the similarities are
// the same to the bit either way.
type boxes struct {
	v       []float64 // blocks of boxRows rows of boxLanes values
	es, sim []float64 // results of similarities, one per slot
}

// boxLanes is the number of categories in a block of boxes.
const boxLanes = 16

// The rows of a block after the centres and half-widths.
const (
	// 2·Σ(1 - 2w): twice the norm of the complement-coded box; NaN for
	// the uncommitted category, so that its similarity is NaN and
	// similarities passes it over.
	rowDen2 = 2*patD + iota
	// The energy similarity of a box is base - max(0, |x-c| - w)·inv in
	// the latest level dimension: inv is 1/(1-2w) (or 0), base is 1, or
	// 0.5 for the uncommitted category (whose c, w and inv are 0).
	rowInv
	rowBase
	boxRows
)

// simAVX2 assumes this layout (a compile-time check: the index must be 0).
var _ = [1]int{}[boxRows*boxLanes*8-4480+rowDen2-32]

func newBoxes(capacity int) boxes {
	slots := (capacity + boxLanes - 1) / boxLanes * boxLanes
	return boxes{v: make([]float64, boxRows*slots), es: make([]float64, slots), sim: make([]float64, slots)}
}

// at is the index in v of row r of slot j.
func at(r, j int) int { return j/boxLanes*(boxRows*boxLanes) + r*boxLanes + j%boxLanes }

// set stores a box at the point x (half-width 0) in slot j.
func (b *boxes) set(j int, x *[patD]float64) {
	for d := range patD {
		b.v[at(2*d, j)], b.v[at(2*d+1, j)] = x[d], 0
	}
	b.changed(j)
}

// setEmpty stores ARTime's uncommitted (all-ones) category in slot j: its
// similarity is emptyMatch (not computed by similarities), and its energy
// similarity 1/2, whatever x.
func (b *boxes) setEmpty(j int) {
	for d := range patD {
		b.v[at(2*d, j)], b.v[at(2*d+1, j)] = 0, 0
	}
	b.v[at(rowDen2, j)], b.v[at(rowInv, j)], b.v[at(rowBase, j)] = math.NaN(), 0, 0.5
}

// changed updates the norm and energy of box j after its centre or
// half-width changed.
func (b *boxes) changed(j int) {
	var s float64
	for d := range patD {
		s += 1 - 2*b.v[at(2*d+1, j)]
	}
	if s == 0 {
		s = 0.001
	}
	inv := 0.0
	if n := 1 - 2*b.v[at(2*patD-1, j)]; n > 0 {
		inv = 1 / n
	}
	b.v[at(rowDen2, j)], b.v[at(rowInv, j)], b.v[at(rowBase, j)] = 2*s, inv, 1
}

// remap maps the level dimensions of box j by x → x·a + b.
func (b *boxes) remap(j int, a, off float64) {
	for d := patW; d < patD; d++ {
		c, w := &b.v[at(2*d, j)], &b.v[at(2*d+1, j)]
		*c = *c*a + off
		*w *= a
	}
}

// grow makes box j hold x; it reports whether the box changed.
func (b *boxes) grow(j int, x *[patD]float64) bool {
	changed := false
	for d := range patD {
		c, w := &b.v[at(2*d, j)], &b.v[at(2*d+1, j)]
		if math.Abs(x[d]-*c) <= *w {
			continue
		}
		lo, hi := min(*c-*w, x[d]), max(*c+*w, x[d])
		*c, *w = (lo+hi)/2, (hi-lo)/2
		changed = true
	}
	return changed
}

// boxDist is how far a box of centre c and half-width w must grow, in one
// dimension, to hold x, times 2: 2·max(0, |x-c| - w).
func boxDist(x, c, w float64) float64 {
	t := math.Abs(x-c) - w
	return t + math.Abs(t)
}

// emptyMatch is the similarity of anything to the uncommitted category:
// min(x,1) + min(1-x,1) = 1 in every dimension, |w| = 2·patD, so the
// match is 1/2, cubed, times the energy similarity 1/2, squared.
const emptyMatch = 0.5 * 0.5 * 0.5 * 0.5 * 0.5

// similaritiesGo sets b.sim[j] to ARTime's similarity of x to box j, and
// b.es[j] to its energy similarity, for each of the first n boxes: the
// fuzzy-ART match of the complement-coded vectors, |x∧w|/|w|, cubed,
// times the squared match es of the latest level alone (the "energy"
// similarity). |x∧w| = |w| - E where E (e) is how far the box must grow
// to hold x, and den2 is 2|w|. The uncommitted category's similarity is
// not computed (it is NaN: see emptyMatch). It returns the largest
// similarity that is not NaN (-Inf if none). The slots from n to the end
// of its block may be overwritten.
func (b *boxes) similaritiesGo(x *[patD]float64, n int) float64 {
	best := math.Inf(-1)
	xe := x[patD-1]
	for j := range n {
		es := b.v[at(rowBase, j)] - max(math.Abs(xe-b.v[at(2*patD-2, j)])-b.v[at(2*patD-1, j)], 0)*b.v[at(rowInv, j)]
		var e float64
		for d := patW; d < patD; d++ {
			e += boxDist(x[d], b.v[at(2*d, j)], b.v[at(2*d+1, j)])
		}
		for d := range patW {
			e += boxDist(x[d], b.v[at(2*d, j)], b.v[at(2*d+1, j)])
		}
		fs := 1 - e/b.v[at(rowDen2, j)]
		sim := fs * fs * fs * es * es
		b.es[j], b.sim[j] = es, sim
		if sim > best {
			best = sim
		}
	}
	return best
}

package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSimilaritiesExact checks that similarities (vector code where the
// processor has it) gives the same bits as similaritiesGo, odd values
// included.
func TestSimilaritiesExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	odd := []float64{0, math.Copysign(0, -1), 1, 0.5, math.NaN(), math.Inf(1), math.Inf(-1), 1e-310, -1e-310, 1e300}
	val := func() float64 {
		if r.IntN(20) == 0 {
			return odd[r.IntN(len(odd))]
		}
		return r.Float64()*1.2 - 0.1
	}
	for _, capacity := range []int{1, 5, 16, 17, 64, 100} {
		a, b := newBoxes(capacity), newBoxes(capacity)
		for round := range 200 {
			n := 1 + r.IntN(capacity)
			var x [patD]float64
			for d := range x {
				x[d] = val()
			}
			for j := range n {
				var c [patD]float64
				for d := range c {
					c[d] = val()
				}
				a.set(j, &c)
				for d := range patD {
					a.v[at(2*d+1, j)] = math.Abs(val()) / 4
				}
				switch r.IntN(10) {
				case 0:
					a.setEmpty(j)
				default:
					a.changed(j)
				}
			}
			copy(b.v, a.v)
			topA := a.similaritiesGo(&x, n)
			topB := b.similarities(&x, n)
			if math.Float64bits(topA) != math.Float64bits(topB) && !(topA == 0 && topB == 0) {
				t.Fatalf("cap %d round %d: largest similarity %v, want %v", capacity, round, topB, topA)
			}
			for name, rows := range map[string][2][]float64{"es": {a.es, b.es}, "sim": {a.sim, b.sim}} {
				for j := range n {
					ga, gb := rows[0][j], rows[1][j]
					if math.Float64bits(ga) != math.Float64bits(gb) && !(math.IsNaN(ga) && math.IsNaN(gb)) {
						t.Fatalf("cap %d round %d: %s of slot %d: %v, want %v", capacity, round, name, j, gb, ga)
					}
				}
			}
		}
	}
}

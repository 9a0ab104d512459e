//go:build !purego

package anomaly

import (
	"math"

	"golang.org/x/sys/cpu"
)

// useAVX2 is whether similarities can use simAVX2.
var useAVX2 = cpu.X86.HasAVX2

// simAVX2 is similaritiesGo for nblk blocks of boxes (v is the first),
// one box per lane of the vector registers: every lane does the same
// operations in the same order as similaritiesGo, so the results are the
// same to the bit.
//
//go:noescape
func simAVX2(x *[patD]float64, v, es, sim *float64, nblk int) float64

// similarities is similaritiesGo, a block of boxes at a time when it can.
func (b *boxes) similarities(x *[patD]float64, n int) float64 {
	if !useAVX2 || n == 0 {
		return b.similaritiesGo(x, n)
	}
	nblk := (n + boxLanes - 1) / boxLanes
	m := nblk * boxLanes
	if len(b.v) < boxRows*m || len(b.es) < m || len(b.sim) < m {
		panic("anomaly: boxes out of shape")
	}
	// The slots past n in the last block hold no box: a NaN norm makes
	// their similarity NaN, which the largest passes over.
	for j := n; j < m; j++ {
		b.v[at(rowDen2, j)] = math.NaN()
	}
	return simAVX2(x, &b.v[0], &b.es[0], &b.sim[0], nblk)
}

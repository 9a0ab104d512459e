//go:build !amd64 || purego

package anomaly

func (b *boxes) similarities(x *[patD]float64, n int) float64 { return b.similaritiesGo(x, n) }

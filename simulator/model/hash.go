package model

import "math"

// Deterministic randomness. Every random quantity of the model is a pure
// function of (seed, device, metric, what, time step), computed by mixing
// precomputed 64-bit hashes with splitmix64, so a value never depends on the
// order in which values are asked for, nor on goroutine scheduling.

// splitmix64 is the finaliser of Steele et al.'s SplitMix64 generator.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// mix combines a hash with another value.
func mix(h, v uint64) uint64 { return splitmix64(h ^ splitmix64(v)) }

// hashString is FNV-1a, 64 bits; it does not allocate.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// uniform maps a hash to [0, 1).
func uniform(h uint64) float64 { return float64(h>>11) * 0x1p-53 }

// normal maps a hash to a standard normal deviate (Box-Muller, one of the
// pair).
func normal(h uint64) float64 {
	u1 := (float64(h>>11) + 1) * 0x1p-53 // (0, 1]
	u2 := uniform(splitmix64(h))
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// rng is a splitmix64 stream, for the planner.
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a uniform deviate in [0, 1).
func (r *rng) float() float64 { return uniform(r.next()) }

// exp returns an exponential deviate with mean 1.
func (r *rng) exp() float64 { return -math.Log(1 - r.float()) }

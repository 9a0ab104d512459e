package anomaly

import "math"

// tail calibrates a statistic into a surprisal, -log10 of the probability
// of a value at least as large, learnt online in constant memory: a
// peaks-over-threshold model whose threshold u tracks the statistic's
// (1-tailQ) quantile by stochastic approximation and whose excesses over
// u are taken as exponential with mean beta. It also keeps the recent
// record (the largest value, decaying back towards u), against which
// spikes are scored.
type tail struct {
	n    float64
	mean float64 // running mean of the statistic
	u    float64 // threshold: the (1-tailQ) quantile
	beta float64 // mean excess over u
	rec  float64 // recent record
}

const (
	tailQ    = 0.05         // share of values above u
	tailWarm = 50           // values before the tail scores
	tailMem  = 1000.0       // values the running mean remembers
	tailStep = 0.05         // quantile step, as a share of the mean
	tailBeta = 0.02         // least learning rate of beta
	recDecay = 1 - 1.0/5000 // the record falls back to u in about 5,000 values
)

// surprisal is -log10 P(S >= s) under the model; 0 at or below u.
func (t *tail) surprisal(s float64) float64 {
	if t.n < tailWarm || s <= t.u {
		return 0
	}
	return -math.Log10(tailQ) + (s-t.u)/(t.beta*math.Ln10)
}

// record is by how many doublings s beats the recent record (0 if it
// does not).
func (t *tail) record(s float64) float64 {
	if t.n < tailWarm || s <= t.rec {
		return 0
	}
	return math.Log2(s / t.rec)
}

// add learns s (after it was scored).
func (t *tail) add(s float64) {
	t.n++
	a := rate(t.n, 1.0/tailMem)
	t.mean += a * (s - t.mean)
	if t.n < tailWarm {
		return
	}
	if t.n == tailWarm {
		t.u, t.beta = 2*t.mean, t.mean
		t.rec = t.u
	}
	t.rec = max(t.u+(t.rec-t.u)*recDecay, s)
	floor := 1e-9 + 1e-6*t.mean
	if t.beta < floor {
		t.beta = floor
	}
	step := tailStep * (t.mean + floor)
	if s > t.u {
		t.beta += max(a, tailBeta) * (min(s-t.u, 20*t.beta) - t.beta)
		t.u += step * (1 - tailQ)
	} else {
		t.u -= step * tailQ
	}
}

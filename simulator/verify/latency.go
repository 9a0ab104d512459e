package verify

import (
	"math"
	"math/bits"
	"time"
)

// histogram is a log-linear histogram of non-negative durations in
// microseconds: exact below 128 µs, then 128 buckets per power of two, so a
// quantile is within 0.8% of the true value. It has a fixed bound (under
// 60 KB) whatever the count.
type histogram struct {
	counts []uint64
	n      uint64
	max    int64
}

const subBits = 7 // 128 sub-buckets per octave

func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - (subBits + 1)
	return (1 << subBits) + e<<subBits + int(v>>e) - (1 << subBits)
}

// upperOf is the largest value of bucket i.
func upperOf(i int) int64 {
	if i < 1<<subBits {
		return int64(i)
	}
	e := (i - (1 << subBits)) >> subBits
	m := int64(i-(1<<subBits)-e<<subBits) + (1 << subBits)
	return (m+1)<<e - 1
}

func (h *histogram) add(us int64) {
	us = max(us, 0)
	i := bucketOf(us)
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, us)
}

// quantile returns the q-quantile (0 < q <= 1): the upper bound of the
// bucket holding the ceil(q·n)-th value, never above the maximum.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(upperOf(i), h.max)
		}
	}
	return h.max
}

// Latency summarises reading latencies: from the device time (corrected by
// the device's known clock skew) to the Stamper's time, one per unique
// reading (duplicates excluded).
type Latency struct {
	Source   string  `json:"source"`   // the Stamper: arrival or read
	Count    uint64  `json:"count"`    // readings measured
	P50Ms    float64 `json:"p50_ms"`   // median
	P99Ms    float64 `json:"p99_ms"`   // 99th percentile
	MaxMs    float64 `json:"max_ms"`   // largest
	Negative uint64  `json:"negative"` // readings stamped before their device time (counted as 0)
}

func (h *histogram) summary(source string, negative uint64) Latency {
	ms := func(us int64) float64 { return float64(us) / 1e3 }
	return Latency{Source: source, Count: h.n, P50Ms: ms(h.quantile(0.50)), P99Ms: ms(h.quantile(0.99)),
		MaxMs: ms(h.max), Negative: negative}
}

// Stamper says when a record counts as delivered, for latency.
type Stamper interface {
	Stamp(r *Record) time.Time
}

// ArrivalStamp stamps a record with its ApproximateArrivalTimestamp: when
// the stream accepted it (the default).
type ArrivalStamp struct{}

// Stamp implements Stamper.
func (ArrivalStamp) Stamp(r *Record) time.Time { return r.Arrival }

// String names the source in reports.
func (ArrivalStamp) String() string { return "arrival" }

// ReadStamp stamps a record with the time the verifier read it: end-to-end
// latency to a consumer, meaningful when the verifier tails a live stream.
type ReadStamp struct{}

// Stamp implements Stamper.
func (ReadStamp) Stamp(r *Record) time.Time { return r.Read }

// String names the source in reports.
func (ReadStamp) String() string { return "read" }

var (
	_ Stamper = ArrivalStamp{}
	_ Stamper = ReadStamp{}
)

package monitor

import (
	"math"
	"time"
)

// ring is a bounded FIFO: it grows up to max elements, then overwrites the
// oldest. The zero value with max set is ready to use.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest element once the ring is full
	max  int
}

// push appends x and reports whether the oldest element was overwritten.
func (r *ring[T]) push(x T) (evicted bool) {
	if len(r.buf) < r.max {
		if len(r.buf) == cap(r.buf) { // grow by doubling, never past max
			n := min(max(2*cap(r.buf), 16), r.max)
			nb := make([]T, len(r.buf), n)
			copy(nb, r.buf)
			r.buf = nb
		}
		r.buf = append(r.buf, x)
		return false
	}
	r.buf[r.head] = x
	r.head = (r.head + 1) % len(r.buf)
	return true
}

func (r *ring[T]) len() int { return len(r.buf) }

// insert puts x before the i-th oldest element (i == len appends), in
// order; when the ring is full its oldest element is dropped (reported).
// It costs O(len): it is for the rare late point, not the steady state.
func (r *ring[T]) insert(i int, x T) (evicted bool) {
	ord := make([]T, 0, min(len(r.buf)+1, r.max))
	for j := range len(r.buf) {
		if j == i {
			ord = append(ord, x)
		}
		ord = append(ord, *r.at(j))
	}
	if i >= len(r.buf) {
		ord = append(ord, x)
	}
	if len(ord) > r.max {
		ord, evicted = ord[1:], true
	}
	r.buf, r.head = ord, 0
	return evicted
}

// search returns the index of the first element for which older is
// false (binary search; elements are in ascending order).
func (r *ring[T]) search(older func(*T) bool) int {
	lo, hi := 0, len(r.buf)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if older(r.at(m)) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// at returns the i-th oldest element.
func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)%len(r.buf)] }

// last returns the newest element, or nil.
func (r *ring[T]) last() *T {
	if len(r.buf) == 0 {
		return nil
	}
	return r.at(len(r.buf) - 1)
}

// point is one raw sample of a series.
type point struct {
	t int64 // device time, µs since the epoch
	v float64
}

// bucket is a rollup of the points whose time falls in
// [start*res, (start+1)*res).
type bucket struct {
	start    int64 // bucket number: time / resolution
	n        uint32
	min, max float64
	sum      float64
}

// tier is one rollup resolution and how many buckets it keeps.
type tier struct {
	name string
	res  int64 // µs
	keep int
}

// tiers are the rollups kept per series, finest first. Each covers at
// least the window that Window serves from it.
var tiers = [...]tier{
	{"1s", int64(time.Second / time.Microsecond), 300},       // 5 min
	{"10s", int64(10 * time.Second / time.Microsecond), 360}, // 1 h
	{"1m", int64(time.Minute / time.Microsecond), 1440},      // 24 h
}

// series is one metric of one device.
type series struct {
	unit  string
	kind  string // "number", "bool", "string", "data"
	last  int64  // newest point's device time, µs (older ones go through addLate)
	value float64
	str   string // last string value (truncated), for kind string/data
	count uint64 // points accepted
	raw   ring[point]
	roll  [len(tiers)]ring[bucket]
}

func newSeries(points int) *series {
	s := &series{raw: ring[point]{max: points}}
	for i, t := range tiers {
		s.roll[i].max = t.keep
	}
	return s
}

// add records a numeric point; the caller has checked t > s.last. It
// returns how many raw points were overwritten (0 or 1).
func (s *series) add(t int64, v float64) (evicted int) {
	s.last, s.value = t, v
	s.count++
	if s.raw.push(point{t, v}) {
		evicted = 1
	}
	for i, tr := range tiers {
		r := &s.roll[i]
		n := floorDiv(t, tr.res)
		if b := r.last(); b != nil && b.start == n {
			b.n++
			b.sum += v
			b.min = math.Min(b.min, v)
			b.max = math.Max(b.max, v)
			continue
		}
		r.push(bucket{start: n, n: 1, min: v, max: v, sum: v})
	}
	return evicted
}

// addLate records a numeric point older than the series' newest one: a
// reading uploaded late (a gateway's backlog after an outage travels
// beside its live data). A point whose time the raw ring already holds is
// a redelivery: dup is true and nothing changes. A point older than a
// full raw ring cannot be told from a redelivery of an evicted one; it
// goes into the rollups only. Late points never move s.last or s.value.
func (s *series) addLate(t int64, v float64) (dup bool, evicted int) {
	i := s.raw.search(func(p *point) bool { return p.t < t })
	if i < s.raw.len() && s.raw.at(i).t == t {
		return true, 0
	}
	if i > 0 || s.raw.len() < s.raw.max {
		if s.raw.insert(i, point{t, v}) {
			evicted = 1
		}
	}
	s.count++
	for k, tr := range tiers {
		r := &s.roll[k]
		n := floorDiv(t, tr.res)
		j := r.search(func(b *bucket) bool { return b.start < n })
		switch {
		case j < r.len() && r.at(j).start == n:
			b := r.at(j)
			b.n++
			b.sum += v
			b.min = math.Min(b.min, v)
			b.max = math.Max(b.max, v)
		case j == 0 && r.len() == r.max:
			// Older than everything this tier keeps.
		default:
			r.insert(j, bucket{start: n, n: 1, min: v, max: v, sum: v})
		}
	}
	return false, evicted
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// SeriesData is a window of one series, in columns as charting libraries
// take them. T is in seconds since the epoch (device time, µs precision).
// For rollups T is the middle of each bucket, V the mean of its points and
// Min/Max their extremes; for raw points Min and Max are omitted.
type SeriesData struct {
	Device     string    `json:"device"`
	Metric     string    `json:"metric"`
	Unit       string    `json:"unit"`
	Kind       string    `json:"kind"`
	Window     string    `json:"window"`
	Resolution string    `json:"resolution"` // "raw", "1s", "10s" or "1m"
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	T          []float64 `json:"t"`
	V          []float64 `json:"v"`
	Min        []float64 `json:"min,omitempty"`
	Max        []float64 `json:"max,omitempty"`
}

// window fills d with the points of (start, end] (µs) at tier ti's
// resolution, or from the raw ring when ti is 0 and the ring reaches back
// to start (or holds every point the series ever had).
func (s *series) window(d *SeriesData, start, end int64, ti int) {
	d.T, d.V, d.Min, d.Max = []float64{}, []float64{}, nil, nil
	if ti == 0 && s.raw.len() > 0 && (s.raw.at(0).t <= start || uint64(s.raw.len()) == s.count) {
		d.Resolution = "raw"
		for i := range s.raw.len() {
			p := s.raw.at(i)
			if p.t > start && p.t <= end {
				d.T = append(d.T, seconds(p.t))
				d.V = append(d.V, p.v)
			}
		}
		return
	}
	tr, r := tiers[ti], &s.roll[ti]
	d.Resolution = tr.name
	d.Min, d.Max = []float64{}, []float64{}
	for i := range r.len() {
		b := r.at(i)
		bt := b.start * tr.res
		if bt+tr.res <= start || bt > end {
			continue
		}
		d.T = append(d.T, seconds(bt+tr.res/2)) // the middle of the bucket
		d.V = append(d.V, b.sum/float64(b.n))
		d.Min = append(d.Min, b.min)
		d.Max = append(d.Max, b.max)
	}
}

func seconds(us int64) float64 { return float64(us) / 1e6 }

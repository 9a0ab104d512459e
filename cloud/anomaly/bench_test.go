package anomaly_test

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

// BenchmarkDetector measures Update after warm-up on one core: ns/op is
// ns per point. points/s is from the median time of chunks of 1,024
// points, so that on a shared machine the chunks the scheduler preempted
// do not count for more than their number.
func BenchmarkDetector(b *testing.B) {
	const n = 1 << 16
	ts, vs := anomaly.NoisySeries(n)
	d := anomaly.NewDetector(anomaly.Config{})
	for i := range 2000 {
		d.Update(ts[i], vs[i])
	}
	const chunk = 1024
	var chunks []time.Duration
	t0 := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		j := 2000 + i%(n-2000)
		lap := time.Duration(i/(n-2000)) * time.Duration(n) * time.Minute
		d.Update(ts[j].Add(lap), vs[j])
		if i%chunk == chunk-1 {
			now := time.Now()
			chunks = append(chunks, now.Sub(t0))
			t0 = now
		}
	}
	if len(chunks) > 0 {
		slices.Sort(chunks)
		b.ReportMetric(chunk/chunks[len(chunks)/2].Seconds(), "points/s")
	}
}

// BenchmarkRegistryObserve spreads points over 10,000 series, all of them
// warmed up, round robin: ns/op is ns per point, including the lookup.
// The registry's bound is kept per shard, so it is given 25% slack to
// hold all 10,000 without evicting.
func BenchmarkRegistryObserve(b *testing.B) {
	const series = 10000
	ts, vs := anomaly.NoisySeries(day)
	r := anomaly.NewRegistry(anomaly.Config{}, series*5/4)
	names := make([]string, series)
	for i := range names {
		names[i] = fmt.Sprint("device-", i)
	}
	const warm = 700 // past the pattern memory's learning
	for j := range warm {
		for i := range names {
			r.Observe(names[i], "temp", ts[j], vs[j])
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ { // the warm-up above runs once
		k := i % series
		j := warm + (i/series)%(day-warm)
		lap := time.Duration(i/series/(day-warm)) * 24 * time.Hour
		r.Observe(names[k], "temp", ts[j].Add(lap), vs[j])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// TestDetectorMemory reports the heap a Detector holds once it has
// learnt, and checks it against the figure in the package documentation.
func TestDetectorMemory(t *testing.T) {
	const n = 200
	ts, vs := anomaly.NoisySeries(1000)
	ds := make([]*anomaly.Detector, n)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range ds {
		ds[i] = anomaly.NewDetector(anomaly.Config{})
		for j := range ts {
			ds[i].Update(ts[j], vs[j])
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := (m1.HeapAlloc - m0.HeapAlloc) / n
	t.Logf("%d bytes per learnt detector", per)
	if per > 56<<10 {
		t.Errorf("%d bytes per detector, the documentation says under 56 KiB", per)
	}
	runtime.KeepAlive(ds)
}

// TestRegistryMemory measures the heap a Registry holds per series, its
// entry and detector, at the three sizes a detector goes through: new
// (learning), after the single-kind calibration (300 points) and once the
// pattern memory has learnt (700 points). The largest must stay within
// SeriesBytes, the figure anomaly.max_series' default and memory budget
// are computed from (see DefaultMaxSeries).
func TestRegistryMemory(t *testing.T) {
	const n = 300
	ts, vs := anomaly.NoisySeries(700)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("device-%06d", i)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	r := anomaly.NewRegistry(anomaly.Config{}, 2*n)
	done, peak := 0, int64(0)
	for _, upto := range []int{1, 300, 700} {
		for j := done; j < upto; j++ {
			for i := range names {
				r.Observe(names[i], "temperature", ts[j], vs[j])
			}
		}
		done = upto
		runtime.GC()
		runtime.ReadMemStats(&m1)
		per := (int64(m1.HeapAlloc) - int64(m0.HeapAlloc)) / n
		t.Logf("after %d points: %d bytes per series", upto, per)
		peak = max(peak, per)
	}
	if st := r.Stats(); st.Series != n {
		t.Fatalf("%d series held, want %d", st.Series, n)
	}
	if peak > anomaly.SeriesBytes {
		t.Errorf("%d bytes per series at the peak, over SeriesBytes (%d): update it, DefaultMaxSeries and the budget they state", peak, anomaly.SeriesBytes)
	}
	if budget := int64(anomaly.DefaultMaxSeries) * anomaly.SeriesBytes; budget > 512<<20 {
		t.Errorf("DefaultMaxSeries × SeriesBytes = %d bytes, over the 512 MiB budget", budget)
	}
	runtime.KeepAlive(r)
}

// BenchmarkRegistryFlood: a full registry of warm series (1,600 or a few
// fewer: the bound is kept per shard), and
// every other point from a series it has never seen (a gateway sending
// made-up series): ns/op is per point, the flood's included. The
// registry keeps its detectors and leaves (nearly all) the new series
// unscored. The
// baseline, NewDetector, is what each flood point cost when a full
// registry evicted its least recently used series for any new one: a
// detector built (and one dropped) per point.
func BenchmarkRegistryFlood(b *testing.B) {
	const series = 1600
	ts, vs := anomaly.NoisySeries(day)
	b.Run("flood", func(b *testing.B) {
		r := anomaly.NewRegistry(anomaly.Config{}, series)
		names := make([]string, series)
		for i := range names {
			names[i] = fmt.Sprint("device-", i)
		}
		const warm = 700
		for j := range warm {
			for i := range names {
				r.Observe(names[i], "temp", ts[j], vs[j])
			}
		}
		b.ReportAllocs()
		flood := 0
		for i := 0; b.Loop(); i++ {
			k := i / 2 // the k-th point of the known series, round robin
			j := warm + (k/series)%(day-warm)
			at := ts[0].Add(time.Duration(warm+k/series) * time.Minute) // one a minute, on and on
			if i%2 == 1 {
				r.Observe("flood", strconv.Itoa(i), at, vs[j])
				flood++
				continue
			}
			r.Observe(names[k%series], "temp", at, vs[j])
		}
		// Flood series may take the places the uneven shards leave free,
		// and each other's once silent for an hour: nothing more.
		if st := r.Stats(); st.Unscored < uint64(flood)*9/10 {
			b.Fatalf("stats %+v after %d flood points: the flood took detectors", st, flood)
		}
	})
	b.Run("NewDetector", func(b *testing.B) {
		b.ReportAllocs()
		var d *anomaly.Detector
		for b.Loop() {
			d = anomaly.NewDetector(anomaly.Config{})
		}
		runtime.KeepAlive(d)
	})
}

package model_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/simulator/model"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func newFleet(t testing.TB, seed int64, opts ...model.Option) *model.Fleet {
	t.Helper()
	f, err := model.NewFleet(seed, t0, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var metrics = []string{model.Temperature, model.Humidity, model.Pressure, "voltage0", model.Flow}

func TestDeterminism(t *testing.T) {
	a, b, c := newFleet(t, 42), newFleet(t, 42), newFleet(t, 43)
	// Ask b in the reverse order: values must not depend on call order.
	type key struct {
		dev, metric string
		i           int
	}
	got := make(map[key]float64)
	for d := range 5 {
		for _, m := range metrics {
			for i := range 100 {
				at := t0.Add(time.Duration(i) * 37 * time.Second)
				got[key{fmt.Sprint("dev", d), m, i}] = a.Device(fmt.Sprint("dev", d)).Value(m, at)
			}
		}
	}
	differs := 0
	for d := 4; d >= 0; d-- {
		for _, m := range metrics {
			for i := 99; i >= 0; i-- {
				at := t0.Add(time.Duration(i) * 37 * time.Second)
				k := key{fmt.Sprint("dev", d), m, i}
				if v := b.Device(k.dev).Value(m, at); v != got[k] {
					t.Fatalf("%v: seed 42 gave %v then %v", k, got[k], v)
				}
				if c.Device(k.dev).Value(m, at) != got[k] {
					differs++
				}
			}
		}
	}
	if differs < len(got)*9/10 {
		t.Errorf("seed 43 equals seed 42 on %d of %d values", len(got)-differs, len(got))
	}
}

func TestRangesAndCorrelation(t *testing.T) {
	f := newFleet(t, 1)
	limits := map[string][2]float64{
		model.Temperature: {12, 32},
		model.Humidity:    {20, 90},
		model.Pressure:    {98000, 103000},
		"voltage3":        {0, 3.3},
		model.Flow:        {0, 30},
	}
	for d := range 50 {
		dev := f.Device(fmt.Sprintf("node-%03d", d))
		var st, sh, stt, shh, sth float64
		n := 0.0
		for i := 0; i < 96*4; i++ { // 4 days, every 15 min
			at := t0.Add(time.Duration(i) * 15 * time.Minute)
			for m, lim := range limits {
				if v := dev.Value(m, at); v < lim[0] || v > lim[1] {
					t.Fatalf("%s %s at %s = %g, outside %v", dev.ID(), m, at, v, lim)
				}
			}
			tv, hv := dev.Value(model.Temperature, at), dev.Value(model.Humidity, at)
			st, sh, stt, shh, sth, n = st+tv, sh+hv, stt+tv*tv, shh+hv*hv, sth+tv*hv, n+1
		}
		cov := sth/n - st/n*sh/n
		r := cov / math.Sqrt((stt/n-st/n*st/n)*(shh/n-sh/n*sh/n))
		if r > -0.8 {
			t.Errorf("%s: temperature/humidity correlation %.2f, want strongly negative", dev.ID(), r)
		}
	}
}

func TestProfiles(t *testing.T) {
	f := newFleet(t, 1, model.WithProfile("voltage", model.Profile{Base: 4, Max: 5}),
		model.WithProfile("voltage_ref", model.Profile{Base: 2.5, Max: 5}))
	d := f.Device("d")
	for _, c := range []struct {
		metric string
		want   float64
	}{{"voltage0", 4}, {"voltage_ref", 2.5}, {"voltage_ref1", 2.5}} {
		if got := d.Value(c.metric, t0); got != c.want {
			t.Errorf("%s = %v, want %v", c.metric, got, c.want)
		}
	}
	if v := d.Value("colour", t0); !math.IsNaN(v) {
		t.Errorf("metric without profile = %v, want NaN", v)
	}
	if _, ok := f.Profile("colour"); ok {
		t.Error("Profile(colour) found one")
	}

	for _, bad := range []model.Option{
		model.WithProfile("x", model.Profile{Min: 2, Max: 1}),
		model.WithProfile("x", model.Profile{Noise: -1}),
		model.WithProfile("x", model.Profile{Weather: 3}),
		model.WithProfile("x", model.Profile{Base: math.NaN()}),
		model.WithProfile("", model.Profile{}),
		model.WithNoiseStep(0),
	} {
		if _, err := model.NewFleet(1, t0, bad); err == nil {
			t.Errorf("NewFleet accepted a bad option")
		}
	}
}

func TestDrift(t *testing.T) {
	// Only drift: the value moves linearly from Base at the fleet's start.
	f := newFleet(t, 7, model.WithProfile("x", model.Profile{Base: 10, Drift: 1, Min: -100, Max: 100}))
	d := f.Device("a")
	v0, v1, v2 := d.Value("x", t0), d.Value("x", t0.Add(24*time.Hour)), d.Value("x", t0.Add(48*time.Hour))
	if v0 != 10 || v1 == 10 || math.Abs((v2-v0)-2*(v1-v0)) > 1e-9 {
		t.Errorf("drift: %v %v %v, want linear from 10", v0, v1, v2)
	}
}

// TestAnomalies compares a device with an anomaly to the same device of an
// identical fleet without it.
func TestAnomalies(t *testing.T) {
	start, end := t0.Add(time.Hour), t0.Add(time.Hour+10*time.Minute)
	cases := []struct {
		kind string
		mag  float64
		// check gets the clean and anomalous values at one time in the window.
		check func(t *testing.T, at time.Time, clean, got, first float64)
	}{
		{model.KindSpike, 8, func(t *testing.T, at time.Time, clean, got, _ float64) {
			if math.Abs(got-clean-8) > 1e-9 {
				t.Fatalf("%s: %v, want %v+8", at, got, clean)
			}
		}},
		{model.KindLevelShift, -3, func(t *testing.T, at time.Time, clean, got, _ float64) {
			if math.Abs(got-clean+3) > 1e-9 {
				t.Fatalf("%s: %v, want %v-3", at, got, clean)
			}
		}},
		{model.KindDrift, 6, func(t *testing.T, at time.Time, clean, got, _ float64) {
			want := clean + 6*float64(at.Sub(start))/float64(end.Sub(start))
			if math.Abs(got-want) > 1e-9 {
				t.Fatalf("%s: %v, want %v", at, got, want)
			}
		}},
		{model.KindStuck, 0, func(t *testing.T, at time.Time, clean, got, first float64) {
			if got != first {
				t.Fatalf("%s: %v, want stuck at %v", at, got, first)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			clean, dirty := newFleet(t, 5).Device("n1"), newFleet(t, 5).Device("n1")
			err := dirty.Inject(model.Event{Metric: model.Temperature, Kind: c.kind, Start: start, End: end, Magnitude: c.mag})
			if err != nil {
				t.Fatal(err)
			}
			first := clean.Value(model.Temperature, start)
			for at := start.Add(-time.Minute); at.Before(end.Add(time.Minute)); at = at.Add(7 * time.Second) {
				cv, dv := clean.Value(model.Temperature, at), dirty.Value(model.Temperature, at)
				if at.Before(start) || !at.Before(end) {
					if cv != dv {
						t.Fatalf("%s outside the event: %v, want %v", at, dv, cv)
					}
					continue
				}
				c.check(t, at, cv, dv, first)
			}
			// Other metrics are untouched.
			if clean.Value(model.Humidity, start) != dirty.Value(model.Humidity, start) {
				t.Error("humidity changed")
			}
		})
	}

	t.Run(model.KindNoiseBurst, func(t *testing.T) {
		smooth := model.WithProfile("x", model.Profile{Base: 5, Noise: 1, Min: -1e9, Max: 1e9})
		clean, dirty := newFleet(t, 5, smooth).Device("n1"), newFleet(t, 5, smooth).Device("n1")
		if err := dirty.Inject(model.Event{Metric: "x", Kind: model.KindNoiseBurst, Start: start, End: end, Magnitude: 10}); err != nil {
			t.Fatal(err)
		}
		for at := start; at.Before(end); at = at.Add(time.Second) {
			cv, dv := clean.Value("x", at), dirty.Value("x", at)
			if math.Abs((dv-5)-10*(cv-5)) > 1e-9 {
				t.Fatalf("%s: noise %v, want 10 x %v", at, dv-5, cv-5)
			}
		}
	})
}

func TestDropoutAndActive(t *testing.T) {
	d := newFleet(t, 1).Device("n")
	start, end := t0.Add(time.Minute), t0.Add(2*time.Minute)
	if err := d.Inject(model.Event{Kind: model.KindDropout, Start: start, End: end}); err != nil {
		t.Fatal(err)
	}
	skew := model.Event{Device: "n", Kind: model.KindClockSkew, Start: start, End: end.Add(time.Hour), Magnitude: -12.5}
	if err := d.Inject(skew); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{start.Add(-1), false}, {start, true}, {end.Add(-1), true}, {end, false}} {
		if got := d.Dropout(c.at); got != c.want {
			t.Errorf("Dropout(%s) = %v, want %v", c.at, got, c.want)
		}
	}
	if e, ok := d.Active(end, model.KindClockSkew); !ok || e != skew {
		t.Errorf("Active clock_skew = %v %v, want %v", e, ok, skew)
	}
	if len(d.Events()) != 2 {
		t.Errorf("Events() = %v", d.Events())
	}
}

func TestInjectErrors(t *testing.T) {
	f := newFleet(t, 1)
	d := f.Device("n")
	s, e := t0, t0.Add(time.Minute)
	for name, ev := range map[string]model.Event{
		"other device":     {Device: "m", Metric: "temperature", Kind: model.KindSpike, Start: s, End: e},
		"unknown kind":     {Metric: "temperature", Kind: "gremlin", Start: s, End: e},
		"no metric":        {Kind: model.KindSpike, Start: s, End: e},
		"empty window":     {Metric: "temperature", Kind: model.KindSpike, Start: s, End: s},
		"reversed":         {Metric: "temperature", Kind: model.KindSpike, Start: e, End: s},
		"metric dropout":   {Metric: "temperature", Kind: model.KindDropout, Start: s, End: e},
		"negative burst":   {Metric: "temperature", Kind: model.KindNoiseBurst, Start: s, End: e, Magnitude: -1},
		"infinite":         {Metric: "temperature", Kind: model.KindSpike, Start: s, End: e, Magnitude: math.Inf(1)},
		"fleet no device ": {Metric: "temperature", Kind: model.KindSpike, Start: s, End: e},
	} {
		var err error
		if name == "fleet no device " {
			err = f.Inject(ev)
		} else {
			err = d.Inject(ev)
		}
		if !errors.Is(err, model.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", name, err)
		}
	}
	if len(d.Events()) != 0 {
		t.Errorf("a bad event was injected: %v", d.Events())
	}
}

func TestValueDoesNotAllocate(t *testing.T) {
	d := newFleet(t, 1).Device("n")
	if err := d.Inject(model.Event{Metric: model.Pressure, Kind: model.KindSpike, Start: t0, End: t0.Add(time.Hour), Magnitude: 1}); err != nil {
		t.Fatal(err)
	}
	at := t0
	allocs := testing.AllocsPerRun(1000, func() {
		at = at.Add(time.Second)
		_ = d.Value(model.Temperature, at) + d.Value(model.Pressure, at)
		_ = d.Dropout(at)
	})
	if allocs != 0 {
		t.Errorf("Value allocates %v times per call", allocs)
	}
}

// BenchmarkValue measures one device-metric sample: 10,000 devices × 3
// metrics × 1/s is 30,000 of them per second.
func BenchmarkValue(b *testing.B) {
	f := newFleet(b, 1)
	devs := make([]*model.Device, 1000)
	for i := range devs {
		devs[i] = f.Device(fmt.Sprint("node-", i))
	}
	ms := []string{model.Temperature, model.Humidity, model.Pressure}
	b.ReportAllocs()
	at := t0
	var sink float64
	for i := 0; b.Loop(); i++ {
		at = at.Add(time.Millisecond)
		sink += devs[i%len(devs)].Value(ms[i%3], at)
	}
	_ = sink
}

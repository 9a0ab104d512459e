package anomaly_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// TestRegistryLevelShift: the jump of a level shift is held until the
// series shows it stays, then alerted as a level shift; a spike that comes
// back is alerted as a spike.
func TestRegistryLevelShift(t *testing.T) {
	cases := []struct {
		name   string
		inject func(s *series)
		want   anomaly.Kind
	}{
		{"spike", func(s *series) { s.v[inject] += 5 }, anomaly.KindSpike},
		{"level shift", func(s *series) {
			for i := inject; i < len(s.v); i++ {
				s.v[i] += 3
			}
		}, anomaly.KindLevelShift},
	}
	for _, c := range cases {
		s := clean(5, 1)
		c.inject(&s)
		r := anomaly.NewRegistry(anomaly.Config{}, 10)
		var alerts []anomaly.Alert
		for i := range s.v {
			_, evs := r.Observe("dev", "temp", s.t[i], s.v[i])
			for _, a := range evs {
				if a.Event == anomaly.EventOpen {
					alerts = append(alerts, a)
				}
			}
		}
		if len(alerts) == 0 {
			t.Errorf("%s: no alert", c.name)
			continue
		}
		a := alerts[0]
		if a.Kind != c.want || !a.Time.Equal(s.t[inject]) || !a.Start.Equal(a.Time) || a.Value != s.v[inject] || a.Device != "dev" || a.Metric != "temp" ||
			a.ID == "" || a.Peak != a.Score || !(a.Expected.Low < s.v[inject-1] && s.v[inject-1] < a.Expected.High) {
			t.Errorf("%s: first alert %+v, want %s at %v value %v", c.name, a, c.want, s.t[inject], s.v[inject])
		}
		if st := r.Stats(); st.Alerts != uint64(len(alerts)) || st.Points != uint64(len(s.v)) || st.Series != 1 {
			t.Errorf("%s: stats %+v after %d alerts", c.name, st, len(alerts))
		}
	}
}

// TestRegistrySweep: a series that stops is reported once, at the first
// sweep 5 cadences after its last point, and not again when it resumes.
func TestRegistrySweep(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 100) // room for both series in any shard
	s := clean(1, 1)
	n := 600
	for i := range n {
		r.Observe("a", "m", s.t[i], s.v[i])
		r.Observe("b", "m", s.t[i], s.v[i]) // b keeps going
	}
	last := s.t[n-1]
	if got := r.Sweep(last.Add(4 * time.Minute)); len(got) != 0 {
		t.Fatalf("sweep 4 cadences after: %+v, want none", got)
	}
	// b goes on; a is silent.
	for i := n; i < n+5; i++ {
		r.Observe("b", "m", s.t[i], s.v[i])
	}
	now := last.Add(5 * time.Minute)
	got := r.Sweep(now)
	if len(got) != 1 {
		t.Fatalf("sweep 5 cadences after: %d alerts %+v, want 1", len(got), got)
	}
	a := got[0]
	if a.Device != "a" || a.Kind != anomaly.KindMissing || !a.Time.Equal(now) || a.Score < threshold || a.Value != s.v[n-1] {
		t.Errorf("alert %+v", a)
	}
	if got := r.Sweep(now.Add(time.Hour)); len(got) != 1 || got[0].Device != "b" {
		t.Errorf("later sweep: %+v, want only b (a was reported)", got)
	}
	// a resumes: its first point resolves the incident, and no second
	// missing alert opens for the same gap; a later silence is reported
	// again.
	resume := now.Add(2 * time.Hour)
	for i := range 100 {
		at := resume.Add(time.Duration(i) * time.Minute)
		_, evs := r.Observe("a", "m", at, s.v[n+i])
		for _, al := range evs {
			switch {
			case al.Event == anomaly.EventResolve:
				// After AlertHoldoff normal points.
				if i < 59 || i > 70 || al.ID != a.ID || al.Reason != anomaly.ReasonResumed || !al.End.Equal(at) || !al.Start.Equal(now) || al.Kind != anomaly.KindMissing {
					t.Errorf("resumed point %d: resolve %+v of %+v", i, al, a)
				}
			case al.Kind == anomaly.KindMissing || al.Event == anomaly.EventOpen:
				t.Errorf("resumed point %d: alert %+v after the sweep reported the gap", i, al)
			}
		}
	}
	if st := r.Stats(); st.Resolved != 1 {
		t.Errorf("stats %+v, want one incident resolved", st)
	}
	got = r.Sweep(resume.Add(200 * time.Minute))
	if len(got) != 1 || got[0].Device != "a" {
		t.Errorf("second silence: %+v, want one alert for a", got)
	}
}

// TestRegistrySweepYoung: a series still in warm-up is never reported.
func TestRegistrySweepYoung(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 10)
	for i := range 10 {
		r.Observe("d", "m", t0.Add(time.Duration(i)*time.Minute), 1)
	}
	if got := r.Sweep(t0.Add(24 * time.Hour)); len(got) != 0 {
		t.Errorf("young series swept: %+v", got)
	}
}

// TestRegistryBound: each new series, an hour after the one before, finds
// the least recently updated one silent long enough to be forgotten.
func TestRegistryBound(t *testing.T) {
	const max = 64
	r := anomaly.NewRegistry(anomaly.Config{}, max)
	for i := range 1000 {
		r.Observe(fmt.Sprint("dev", i), "m", t0.Add(time.Duration(i)*anomaly.EvictIdle), 1)
	}
	st := r.Stats()
	if st.Series > max || st.Series < max/2 {
		t.Errorf("%d series held, want at most %d (and not far below)", st.Series, max)
	}
	if st.Created != 1000 || st.Evicted != st.Created-uint64(st.Series) || st.Unscored != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestRegistryFull: when every detector is in use, new series are not
// scored (counted, logged once a minute, no detector made) and the series
// being scored keep their detectors; once a series has been silent for
// EvictIdle, a new series takes its place (counted, logged). The metrics
// say the same.
func TestRegistryFull(t *testing.T) {
	logs := &testenv.Buffer{}
	r := anomaly.NewRegistry(anomaly.Config{}, 160, anomaly.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	for i := range 1000 {
		r.Observe(fmt.Sprint("dev", i), "m", t0.Add(time.Duration(i)*time.Second), 1)
	}
	st := r.Stats()
	if st.Series > 160 || st.Created != uint64(st.Series) || st.Evicted != 0 || st.Unscored != 1000-uint64(st.Series) {
		t.Fatalf("a flood of new series: %+v, want the first ones kept and the rest unscored", st)
	}
	if n := strings.Count(logs.String(), "anomaly detectors full: points of new series are not scored"); n != 1 {
		t.Errorf("%d lines for %d unscored series, want 1 (once a minute):\n%s", n, st.Unscored, logs)
	}
	// The kept series go on: none of them is forgotten.
	for i := range 1000 {
		_, _ = r.Observe(fmt.Sprint("dev", i), "m", t0.Add(20*time.Minute+time.Duration(i)*time.Second), 1)
	}
	if st2 := r.Stats(); st2.Created != st.Created || st2.Points != 2*uint64(st.Series) {
		t.Errorf("after a second round: %+v, want the same %d detectors scoring again", st2, st.Series)
	}
	// Two hours later, a new series takes the place of a silent one.
	r.Observe("newcomer", "m", t0.Add(2*time.Hour+20*time.Minute), 1)
	if st3 := r.Stats(); st3.Evicted != 1 || st3.Created != st.Created+1 {
		t.Errorf("after the silence: %+v, want one series forgotten for the newcomer", st3)
	}
	if !strings.Contains(logs.String(), "forgot a silent series for a new one") {
		t.Errorf("no log line for the eviction:\n%s", logs)
	}
	reg := prometheus.NewRegistry()
	if err := r.Register(reg); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	st3 := r.Stats()
	for name, want := range map[string]float64{
		"tributary_anomaly_series": float64(st3.Series), "tributary_anomaly_max_series": 160,
		"tributary_anomaly_series_evicted_total": 1, "tributary_anomaly_unscored_points_total": float64(st3.Unscored),
		"tributary_anomaly_series_created_total": float64(st3.Created), "tributary_anomaly_points_total": float64(st3.Points),
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// TestRegistryLRU: a full registry forgets the series silent longest, and
// never one observed within EvictIdle.
func TestRegistryLRU(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 16) // one series per shard
	for i := range 200 {
		r.Observe(fmt.Sprint("old", i), "m", t0, 1)
	}
	at := t0.Add(2 * anomaly.EvictIdle)
	r.Observe("keep", "m", at, 1) // takes the place of an old series of its shard
	for i := range 200 {
		r.Observe(fmt.Sprint("new", i), "m", at.Add(time.Minute), 1)
	}
	before := r.Stats().Created
	r.Observe("keep", "m", at.Add(2*time.Minute), 1)
	if got := r.Stats().Created; got != before {
		t.Errorf("the most recent series was evicted: created %d -> %d", before, got)
	}
	if _, ok := r.Forget("keep", "m"); !ok {
		t.Error("Forget: want true the first time")
	}
	if _, ok := r.Forget("keep", "m"); ok {
		t.Error("Forget: want false the second time")
	}
}

func TestRegistryDefaultBound(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 0)
	for i := range anomaly.DefaultMaxSeries + 100 {
		r.Observe(fmt.Sprint(i), "m", t0, 1)
	}
	if st := r.Stats(); st.Series > anomaly.DefaultMaxSeries || st.Unscored < 100 {
		t.Errorf("stats %+v with the default bound %d", st, anomaly.DefaultMaxSeries)
	}
}

// TestRegistryConcurrent: run with -race.
func TestRegistryConcurrent(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 100)
	s := clean(1, 3)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 400 {
				r.Observe(fmt.Sprint("dev", (g+i)%20), "m", s.t[i], s.v[i])
				if i%50 == 0 {
					r.Sweep(s.t[i].Add(time.Hour))
					r.Stats()
				}
				if i%97 == 0 {
					r.Forget(fmt.Sprint("dev", i%20), "m")
				}
			}
		})
	}
	wg.Wait()
	// Goroutines feed the same series out of order: late points are
	// counted, not scored.
	if st := r.Stats(); st.Points+st.Late != 8*400 || st.Points == 0 {
		t.Errorf("points %d + late %d, want %d", st.Points, st.Late, 8*400)
	}
}

func TestAlertJSON(t *testing.T) {
	a := anomaly.Alert{Device: "d1", Metric: "temp", Time: t0, Score: 0.75, Kind: anomaly.KindLevelShift, Value: 21.5}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"","event":"open","device":"d1","metric":"temp","time":"2026-03-01T00:00:00Z","score":0.75,"kind":"level_shift","value":21.5,"peak":0,"start":"0001-01-01T00:00:00Z"}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	var back anomaly.Alert
	if err := json.Unmarshal(b, &back); err != nil || back != a {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestRegistrySkipsLatePoints(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 10)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		r.Observe("d", "m", t0.Add(time.Duration(i)*time.Second), float64(i))
	}
	r.Observe("d", "m", t0.Add(5*time.Second), 1000) // late: not scored
	r.Observe("d", "m", t0.Add(9*time.Second), 1000) // redelivered: not scored
	if st := r.Stats(); st.Points != 10 || st.Late != 2 {
		t.Errorf("stats %+v: want 10 points scored and 2 late", st)
	}
}

// TestRegistrySweepMinSilence: a fast series between two deliveries of a
// live pipeline is not missing; one silent for longer than MinSilence is.
func TestRegistrySweepMinSilence(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 10)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var last time.Time
	for i := range 1000 { // 10 Hz
		last = t0.Add(time.Duration(i) * 100 * time.Millisecond)
		r.Observe("fast", "m", last, 20+float64(i%7)/10)
	}
	if got := r.Sweep(last.Add(2 * time.Second)); len(got) != 0 {
		t.Errorf("2 s after the last point (20 cadences): %+v, want none (MinSilence 30s)", got)
	}
	if got := r.Sweep(last.Add(31 * time.Second)); len(got) != 1 {
		t.Errorf("31 s after the last point: %+v, want one missing alert", got)
	}
}

// TestRegistryFuturePointDoesNotBlind: a point stamped a year after its
// receive time (a device clock ahead) is counted, not scored, and does
// not become the series' last time: the correct points after it are
// still scored rather than skipped as late.
func TestRegistryFuturePointDoesNotBlind(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 10)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for i := range 10 {
		r.ObserveReceived("d", "m", at(i), at(i).Add(time.Millisecond), float64(i))
	}
	year := 365 * 24 * time.Hour
	r.ObserveReceived("d", "m", at(10).Add(year), at(10), 1000)
	r.ObserveReceived("d", "m", at(11).Add(9*time.Minute), at(11), 11) // within the margin: scored
	for i := 20; i < 30; i++ {
		r.ObserveReceived("d", "m", at(i).Add(10*time.Minute), at(i).Add(10*time.Minute), float64(i))
	}
	if st := r.Stats(); st.Points != 21 || st.Future != 1 || st.Late != 0 {
		t.Errorf("stats %+v: want 21 points scored, 1 future and none late", st)
	}
}

// TestRegistryFutureMarginDisabled: with a negative FutureMargin the far
// future point is scored, and the series' later points are then late
// (the behaviour the margin prevents).
func TestRegistryFutureMarginDisabled(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{FutureMargin: -1}, 10)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.ObserveReceived("d", "m", t0, t0, 1)
	r.ObserveReceived("d", "m", t0.Add(365*24*time.Hour), t0, 2)
	r.ObserveReceived("d", "m", t0.Add(time.Second), t0.Add(time.Second), 3)
	if st := r.Stats(); st.Points != 2 || st.Future != 0 || st.Late != 1 {
		t.Errorf("stats %+v: want 2 points scored, none future and 1 late", st)
	}
}

package anomaly_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

// observeAll feeds s to a fresh registry as one series and returns the
// events.
func observeAll(s series) []anomaly.Alert {
	r := anomaly.NewRegistry(anomaly.Config{}, 16)
	var out []anomaly.Alert
	for i := range s.v {
		_, evs := r.Observe("dev", "temp", s.t[i], s.v[i])
		out = append(out, evs...)
	}
	return out
}

// TestIncidentLevelShiftAndReturn: a level shift beyond the range the
// detector expected (the series' running mean ± 4 running standard
// deviations: here the diurnal swing and more) that returns after two
// hours is one incident: it opens at the jump and resolves once the
// series is back in that range; the return opens no second incident.
func TestIncidentLevelShiftAndReturn(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		s := clean(5, seed)
		const back = inject + 120
		for i := inject; i < back; i++ {
			s.v[i] += 15
		}
		evs := observeAll(s)
		var opens, updates, resolves []anomaly.Alert
		for _, a := range evs {
			if a.Time.Before(s.t[inject]) {
				t.Fatalf("seed %d: event before the shift: %+v", seed, a)
			}
			switch a.Event {
			case anomaly.EventOpen:
				opens = append(opens, a)
			case anomaly.EventUpdate:
				updates = append(updates, a)
			case anomaly.EventResolve:
				resolves = append(resolves, a)
			}
		}
		if len(opens) != 1 || len(resolves) != 1 {
			t.Fatalf("seed %d: %d opens, %d resolves, want one incident: %+v", seed, len(opens), len(resolves), evs)
		}
		o, res := opens[0], resolves[0]
		if o.Kind != anomaly.KindLevelShift || !o.Start.Equal(s.t[inject]) || o.Expected.High >= s.v[inject] {
			t.Errorf("seed %d: open %+v, want a level shift at %v above its expected range", seed, o, s.t[inject])
		}
		for _, u := range updates {
			if u.ID != o.ID || !u.Start.Equal(o.Start) || u.Peak < o.Peak {
				t.Errorf("seed %d: update %+v of %+v", seed, u, o)
			}
		}
		if res.ID != o.ID || res.Reason != anomaly.ReasonNormal || res.End.Before(s.t[back+59]) || res.Score != 0 {
			t.Errorf("seed %d: resolve %+v, want the incident %s resolved as normal after the return", seed, res, o.ID)
		}
	}
}

// TestIncidentSpikeResolves: a spike opens an incident that resolves
// after the quiet period (60 points).
func TestIncidentSpikeResolves(t *testing.T) {
	s := clean(5, 2)
	s.v[inject] += 5
	evs := observeAll(s)
	if len(evs) < 2 || evs[0].Event != anomaly.EventOpen || evs[0].Kind != anomaly.KindSpike {
		t.Fatalf("events %+v, want a spike's open first", evs)
	}
	last := evs[len(evs)-1]
	if last.Event != anomaly.EventResolve || last.ID != evs[0].ID || last.Reason != anomaly.ReasonNormal {
		t.Fatalf("last event %+v, want the spike's resolve", last)
	}
	if n := last.End.Sub(evs[0].Start) / time.Minute; n < 60 || n > 90 {
		t.Errorf("resolved %d points after the spike, want about the quiet period (60)", n)
	}
}

// TestSweepDeviceIncident: the series of a device that fall silent
// together are one device-wide incident; it resolves once they have
// resumed and scored normally for a quiet period.
func TestSweepDeviceIncident(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 160)
	s := clean(1, 4)
	const n = 600
	for i := range n {
		for _, m := range []string{"temp", "hum"} {
			r.Observe("a", m, s.t[i], s.v[i])
		}
		r.Observe("b", "temp", s.t[i], s.v[i])
	}
	now := s.t[n-1].Add(10 * time.Minute)
	got := r.Sweep(now)
	if len(got) != 2 {
		t.Fatalf("sweep: %+v, want one incident per device", got)
	}
	var dev anomaly.Alert
	for _, a := range got {
		if a.Device == "a" {
			dev = a
		}
	}
	if dev.Metric != "" || dev.Value != 0 || dev.Event != anomaly.EventOpen || dev.Kind != anomaly.KindMissing || dev.ID == "" || !dev.Start.Equal(now) {
		t.Fatalf("device a: %+v, want a device-wide missing-data incident", dev)
	}
	var resolved []anomaly.Alert
	for i := range 100 {
		at := now.Add(time.Duration(i+1) * time.Minute)
		for _, m := range []string{"temp", "hum"} {
			_, evs := r.Observe("a", m, at, s.v[n+i])
			for _, a := range evs {
				if a.Event == anomaly.EventOpen {
					t.Errorf("resumed: new incident %+v", a)
				}
				if a.Event == anomaly.EventResolve {
					resolved = append(resolved, a)
				}
			}
		}
	}
	if len(resolved) != 1 || resolved[0].ID != dev.ID || resolved[0].Metric != "" || resolved[0].Reason != anomaly.ReasonResumed {
		t.Errorf("resolves %+v, want one of the device's incident %s", resolved, dev.ID)
	}
	if st := r.Stats(); st.Alerts != 2 || st.Resolved != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestIncidentForgotten: a series forgotten to keep the bound resolves
// its open incident, with the point that made the registry forget it.
func TestIncidentForgotten(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 16) // one series per shard
	s := clean(5, 1)
	for i := range inject + 1 {
		r.Observe("dev", "temp", s.t[i], s.v[i])
	}
	if _, evs := r.Observe("dev", "temp", s.t[inject+1], s.v[inject+1]+50); len(evs) != 0 {
		t.Fatalf("jump: %+v, want it held a point", evs)
	}
	_, evs := r.Observe("dev", "temp", s.t[inject+2], s.v[inject+2])
	if len(evs) != 1 || evs[0].Event != anomaly.EventOpen {
		t.Fatalf("events %+v, want an open", evs)
	}
	id := evs[0].ID
	// A full registry forgets only series silent for EvictIdle.
	later := s.t[inject+2].Add(anomaly.EvictIdle)
	for i := range 200 {
		if _, evs := r.Observe("other", string(rune('a'+i%26))+string(rune('a'+i/26)), later, 1); len(evs) > 0 {
			if evs[0].ID != id || evs[0].Reason != anomaly.ReasonForgotten || evs[0].Event != anomaly.EventResolve {
				t.Errorf("events %+v, want %s resolved as forgotten", evs, id)
			}
			return
		}
	}
	t.Error("the incident was never resolved")
}

// TestForgetResolves: Forget returns the resolve event of the series'
// open incident.
func TestForgetResolves(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 16)
	s := clean(5, 3)
	s.v[inject] += 5
	var id string
	for i := range inject + 1 {
		if _, evs := r.Observe("dev", "temp", s.t[i], s.v[i]); len(evs) > 0 {
			id = evs[0].ID
		}
	}
	if _, evs := r.Observe("dev", "temp", s.t[inject+1], s.v[inject+1]); id == "" && len(evs) > 0 {
		id = evs[0].ID
	}
	evs, ok := r.Forget("dev", "temp")
	if id == "" || !ok || len(evs) != 1 || evs[0].ID != id || evs[0].Reason != anomaly.ReasonForgotten {
		t.Errorf("Forget: %+v %v, want the resolve of %q", evs, ok, id)
	}
	if st := r.Stats(); st.Resolved != 1 || st.Series != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestEventJSON(t *testing.T) {
	for _, e := range []anomaly.Event{anomaly.EventOpen, anomaly.EventUpdate, anomaly.EventResolve} {
		b, err := json.Marshal(e)
		var back anomaly.Event
		if err != nil || json.Unmarshal(b, &back) != nil || back != e || string(b) != `"`+e.String()+`"` {
			t.Errorf("%v: %s %v -> %v", e, b, err, back)
		}
	}
	if _, err := json.Marshal(anomaly.Event(9)); err == nil {
		t.Error("event 9 marshalled")
	}
	var e anomaly.Event
	if err := json.Unmarshal([]byte(`"closed"`), &e); err == nil {
		t.Error(`"closed" unmarshalled`)
	}
}

// TestSilentDuringIncident: a series that falls silent while an incident
// of its own is open, and is the only one silent, resolves the
// missing-data incident with its first point back; its own incident goes
// on.
func TestSilentDuringIncident(t *testing.T) {
	r := anomaly.NewRegistry(anomaly.Config{}, 16)
	s := clean(5, 3)
	s.v[inject] += 5
	var own string
	for i := range inject + 3 {
		if _, evs := r.Observe("dev", "temp", s.t[i], s.v[i]); len(evs) > 0 && evs[0].Event == anomaly.EventOpen {
			own = evs[0].ID
		}
	}
	now := s.t[inject+2].Add(time.Hour)
	miss := r.Sweep(now)
	if own == "" || len(miss) != 1 || miss[0].Kind != anomaly.KindMissing {
		t.Fatalf("own incident %q, sweep %+v", own, miss)
	}
	_, evs := r.Observe("dev", "temp", now.Add(time.Minute), s.v[inject+3])
	if len(evs) != 1 || evs[0].ID != miss[0].ID || evs[0].Event != anomaly.EventResolve || evs[0].Reason != anomaly.ReasonResumed {
		t.Fatalf("first point back: %+v, want the resolve of %s", evs, miss[0].ID)
	}
	var resolved bool
	for i := 4; i < 200; i++ {
		_, evs := r.Observe("dev", "temp", now.Add(time.Duration(i)*time.Minute), s.v[inject+i])
		for _, a := range evs {
			resolved = resolved || a.ID == own && a.Event == anomaly.EventResolve
		}
	}
	if !resolved {
		t.Errorf("the series' own incident %s never resolved", own)
	}
}

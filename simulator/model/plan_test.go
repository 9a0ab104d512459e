package model_test

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/simulator/model"
)

func planSpec(devices int) model.PlanSpec {
	spec := model.PlanSpec{
		Metrics: []string{model.Temperature, model.Humidity, model.Pressure},
		Start:   t0,
		End:     t0.Add(24 * time.Hour),
		Rates: []model.Rate{
			{Kind: model.KindSpike, PerHour: 0.5},
			{Kind: model.KindLevelShift, PerHour: 0.05},
			{Kind: model.KindDrift, PerHour: 0.05},
			{Kind: model.KindStuck, PerHour: 0.05, Fraction: 0.5},
			{Kind: model.KindNoiseBurst, PerHour: 0.05},
			{Kind: model.KindDropout, PerHour: 0.1},
			{Kind: model.KindDisconnect, PerHour: 0.1, Fraction: 0.2},
			{Kind: model.KindClockSkew, PerHour: 0.02},
		},
	}
	for i := range devices {
		spec.Devices = append(spec.Devices, fmt.Sprintf("node-%03d", i))
	}
	return spec
}

func TestPlan(t *testing.T) {
	spec := planSpec(100)
	events, err := newFleet(t, 9).Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	again, err := newFleet(t, 9).Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(events, again) {
		t.Fatal("same seed, different plans")
	}
	other, _ := newFleet(t, 10).Plan(spec)
	if reflect.DeepEqual(events, other) {
		t.Fatal("different seeds, same plan")
	}

	// A device's events do not depend on the other devices listed.
	solo := spec
	solo.Devices = []string{"node-042"}
	soloEvents, _ := newFleet(t, 9).Plan(solo)
	var mine []model.Event
	for _, e := range events {
		if e.Device == "node-042" {
			mine = append(mine, e)
		}
	}
	if !reflect.DeepEqual(mine, soloEvents) {
		t.Errorf("node-042 alone got %d events, in the fleet %d", len(soloEvents), len(mine))
	}

	count := make(map[string]int)
	stuckDevices, disconnectDevices := make(map[string]bool), make(map[string]bool)
	byDevice := make(map[string][]model.Event)
	for i, e := range events {
		if i > 0 && e.Start.Before(events[i-1].Start) {
			t.Fatal("plan not sorted by start")
		}
		if e.Start.Before(spec.Start) || e.End.After(spec.End) || !e.End.After(e.Start) {
			t.Errorf("event outside the window or empty: %+v", e)
		}
		if e.Start.Nanosecond()%1e6 != 0 || e.End.Nanosecond()%1e6 != 0 {
			t.Errorf("event times not whole ms: %+v", e)
		}
		if err := model.Event.Validate(e); err != nil {
			t.Error(err)
		}
		count[e.Kind]++
		switch e.Kind {
		case model.KindStuck:
			stuckDevices[e.Device] = true
		case model.KindDisconnect:
			disconnectDevices[e.Device] = true
		case model.KindSpike:
			if m := math.Abs(e.Magnitude); e.Metric == model.Temperature && (m < 10 || m > 20) {
				t.Errorf("temperature spike magnitude %g, want ±(1..2)×5×2", e.Magnitude)
			}
		}
		byDevice[e.Device] = append(byDevice[e.Device], e)
	}
	// Expected counts: rate × hours × devices (× metrics for metric kinds).
	for kind, want := range map[string]float64{
		model.KindSpike:   0.5 * 24 * 100 * 3,
		model.KindDropout: 0.1 * 24 * 100,
	} {
		if got := float64(count[kind]); got < 0.8*want || got > 1.1*want {
			t.Errorf("%d %s events, want about %.0f", count[kind], kind, want)
		}
	}
	if n := len(stuckDevices); n < 30 || n > 60 {
		t.Errorf("%d devices got stuck events, want about half of those that got any", n)
	}
	if n := len(disconnectDevices); n < 10 || n > 30 {
		t.Errorf("%d devices got disconnects, want about 20", n)
	}

	// No overlaps on a (device, metric), nor between a metric's event and a
	// device-wide one.
	for dev, evs := range byDevice {
		for i, a := range evs {
			for _, b := range evs[i+1:] {
				conflict := a.Metric == b.Metric || a.Metric == "" || b.Metric == ""
				if conflict && a.Start.Before(b.End) && b.Start.Before(a.End) {
					t.Errorf("%s: %+v overlaps %+v", dev, a, b)
				}
			}
		}
	}
}

func TestPlanInjects(t *testing.T) {
	f := newFleet(t, 3)
	events, err := f.Plan(planSpec(10))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Inject(events...); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Kind == model.KindDropout && !f.Device(e.Device).Dropout(e.Start) {
			t.Errorf("planned dropout not active: %+v", e)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	f := newFleet(t, 1)
	good := planSpec(2)
	for name, mutate := range map[string]func(*model.PlanSpec){
		"empty window":   func(s *model.PlanSpec) { s.End = s.Start },
		"unknown kind":   func(s *model.PlanSpec) { s.Rates = append(s.Rates, model.Rate{Kind: "meteor", PerHour: 1}) },
		"two rates":      func(s *model.PlanSpec) { s.Rates = append(s.Rates, model.Rate{Kind: model.KindSpike}) },
		"negative rate":  func(s *model.PlanSpec) { s.Rates[0].PerHour = -1 },
		"fraction":       func(s *model.PlanSpec) { s.Rates[0].Fraction = 2 },
		"durations":      func(s *model.PlanSpec) { s.Rates[0].MinDuration, s.Rates[0].MaxDuration = time.Hour, time.Minute },
		"no metrics":     func(s *model.PlanSpec) { s.Metrics = nil },
		"bad metric":     func(s *model.PlanSpec) { s.Metrics = []string{"colour"} },
		"twice":          func(s *model.PlanSpec) { s.Devices = append(s.Devices, s.Devices[0]) },
		"negative gap":   func(s *model.PlanSpec) { s.Gap = -time.Second },
		"empty device":   func(s *model.PlanSpec) { s.Devices = append(s.Devices, "") },
		"nan magnitude":  func(s *model.PlanSpec) { s.Rates[0].Magnitude = math.NaN() },
		"negative burst": func(s *model.PlanSpec) { s.Rates[4].Magnitude = -2 },
	} {
		spec := good
		spec.Rates = slices.Clone(good.Rates)
		spec.Devices = slices.Clone(good.Devices)
		mutate(&spec)
		if _, err := f.Plan(spec); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Device-wide kinds need no metrics.
	if _, err := f.Plan(model.PlanSpec{Devices: []string{"a"}, Start: t0, End: t0.Add(time.Hour),
		Rates: []model.Rate{{Kind: model.KindDropout, PerHour: 3}}}); err != nil {
		t.Errorf("dropout-only plan: %v", err)
	}
}

func TestPlanConsecutiveWindows(t *testing.T) {
	f := newFleet(t, 2)
	spec := planSpec(50)
	spec.End = spec.Start.Add(time.Hour)
	first, err := f.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Start, spec.End = spec.End, spec.End.Add(time.Hour)
	second, err := f.Plan(spec)
	if err != nil {
		t.Fatal(err)
	}
	offsets := func(evs []model.Event, start time.Time) map[string]bool {
		m := make(map[string]bool)
		for _, e := range evs {
			m[fmt.Sprint(e.Device, e.Metric, e.Kind, e.Start.Sub(start))] = true
		}
		return m
	}
	a, b := offsets(first, t0), offsets(second, t0.Add(time.Hour))
	same := 0
	for k := range a {
		if b[k] {
			same++
		}
	}
	if same > len(a)/10 {
		t.Errorf("%d of %d events repeat in the next window", same, len(a))
	}
	// Fraction picks the same devices in every window.
	stuck := func(evs []model.Event) map[string]bool {
		m := make(map[string]bool)
		for _, e := range evs {
			if e.Kind == model.KindStuck || e.Kind == model.KindDisconnect {
				m[e.Device+e.Kind] = true
			}
		}
		return m
	}
	all := stuck(first)
	for k := range stuck(second) {
		all[k] = true
	}
	long := planSpec(50)
	long.End = long.Start.Add(200 * time.Hour)
	long.Rates = []model.Rate{{Kind: model.KindStuck, PerHour: 1, Fraction: 0.5}, {Kind: model.KindDisconnect, PerHour: 1, Fraction: 0.2}}
	eligible, err := f.Plan(long)
	if err != nil {
		t.Fatal(err)
	}
	allowed := stuck(eligible)
	for k := range all {
		if !allowed[k] {
			t.Errorf("%s got an event in a window but is not among the devices picked", k)
		}
	}
}

package server

import (
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

func TestGroupMissing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := []anomaly.Alert{
		{Device: "a", Metric: "temp", Kind: anomaly.KindMissing, Score: 0.8, Time: t0, Value: 1},
		{Device: "b", Metric: "temp", Kind: anomaly.KindMissing, Score: 0.7, Time: t0},
		{Device: "a", Metric: "hum", Kind: anomaly.KindMissing, Score: 0.9, Time: t0.Add(time.Second), Value: 2},
	}
	out := groupMissing(in)
	if len(out) != 2 {
		t.Fatalf("%d alerts, want 2: %+v", len(out), out)
	}
	a := out[0]
	if a.Device != "a" || a.Metric != "" || a.Score != 0.9 || !a.Time.Equal(t0.Add(time.Second)) || a.Value != 0 {
		t.Errorf("device-wide alert %+v", a)
	}
	if out[1].Device != "b" || out[1].Metric != "temp" {
		t.Errorf("single alert %+v", out[1])
	}
}

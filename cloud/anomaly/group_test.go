package anomaly_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

func TestGroupMissing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := []anomaly.Alert{
		{Device: "a", Metric: "temp", Kind: anomaly.KindMissing, Score: 0.8, Time: t0, Value: 1},
		{Device: "b", Metric: "temp", Kind: anomaly.KindMissing, Score: 0.7, Time: t0, Value: 3},
		{Device: "a", Metric: "hum", Kind: anomaly.KindMissing, Score: 0.9, Time: t0.Add(time.Second), Value: 2},
		{Device: "a", Metric: "pres", Kind: anomaly.KindMissing, Score: 0.6, Time: t0, Value: 4},
	}
	before := slices.Clone(in)
	out := anomaly.GroupMissing(in)
	want := []anomaly.Alert{
		{Device: "a", Kind: anomaly.KindMissing, Score: 0.9, Time: t0.Add(time.Second)},
		{Device: "b", Metric: "temp", Kind: anomaly.KindMissing, Score: 0.7, Time: t0, Value: 3},
	}
	if !slices.EqualFunc(out, want, func(a, b anomaly.Alert) bool { return a == b }) {
		t.Errorf("got  %+v\nwant %+v", out, want)
	}
	if !slices.Equal(in, before) {
		t.Errorf("input modified: %+v", in)
	}
	for _, as := range [][]anomaly.Alert{nil, in[:1], {in[0], in[1]}} {
		if got := anomaly.GroupMissing(as); !slices.Equal(got, as) {
			t.Errorf("%+v: changed to %+v", as, got)
		}
	}
}

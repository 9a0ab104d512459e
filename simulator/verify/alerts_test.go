package verify_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/simulator/model"
	"github.com/tributary-iot/tributary/simulator/verify"
)

func TestAlertScorer(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tr := mustTruth(t, published("a", 1), published("b", 1), published("skewed", 1),
		model.Event{Device: "a", Metric: "temperature", Kind: model.KindSpike, Start: at(10 * time.Second), End: at(15 * time.Second), Magnitude: 12},
		model.Event{Device: "a", Metric: "humidity", Kind: model.KindLevelShift, Start: at(20 * time.Second), End: at(80 * time.Second), Magnitude: 4},
		model.Event{Device: "b", Kind: model.KindDropout, Start: at(30 * time.Second), End: at(90 * time.Second)},
		model.Event{Device: "skewed", Metric: "temperature", Kind: model.KindSpike, Start: at(0), End: at(5 * time.Second), Magnitude: 12},
		model.Event{Device: "skewed", Kind: model.KindClockSkew, Start: at(0), End: at(time.Hour), Magnitude: 60},
	)
	s := verify.NewAlertScorer(tr, 30*time.Second)
	for _, a := range []struct {
		alert verify.Alert
		match bool
	}{
		{verify.Alert{Device: "a", Metric: "temperature", Time: at(12 * time.Second), Kind: "spike"}, true},
		{verify.Alert{Device: "a", Metric: "temperature", Time: at(44 * time.Second), Kind: "spike"}, true},      // end + 29 s
		{verify.Alert{Device: "a", Metric: "temperature", Time: at(46 * time.Second), Kind: "spike"}, false},     // end + 31 s
		{verify.Alert{Device: "a", Metric: "temperature", Time: at(9 * time.Second), Kind: "spike"}, false},      // before the start
		{verify.Alert{Device: "a", Metric: "pressure", Time: at(12 * time.Second), Kind: "spike"}, false},        // another metric
		{verify.Alert{Device: "b", Metric: "humidity", Time: at(100 * time.Second), Kind: "missing"}, true},      // a dropout has no metric
		{verify.Alert{Device: "skewed", Metric: "temperature", Time: at(62 * time.Second), Kind: "spike"}, true}, // device time: +60 s
		{verify.Alert{Device: "c", Metric: "temperature", Time: at(12 * time.Second), Kind: "drift"}, false},
	} {
		b, _ := json.Marshal(a.alert)
		s.Add(&verify.Record{PartitionKey: a.alert.Device, Data: b})
	}
	s.Add(&verify.Record{PartitionKey: "gw-1", Data: []byte(`{"device":"gw-1","metric":"agent.queue.depth","time":"2026-11-25T10:00:01Z","kind":"level_shift"}`)})
	s.Add(&verify.Record{PartitionKey: "x", Data: []byte(`not json`)})

	r := s.Report("alerts")
	if r.Alerts != 8 || r.Matched != 4 || r.HealthAlerts != 1 || r.BadRecords != 1 || r.Records != 10 {
		t.Errorf("alerts %d, matched %d, health %d, bad %d, records %d; want 8, 4, 1, 1, 10", r.Alerts, r.Matched, r.HealthAlerts, r.BadRecords, r.Records)
	}
	if r.Precision == nil || *r.Precision != 0.5 {
		t.Errorf("precision %v, want 0.5", r.Precision)
	}
	if r.Anomalies != 4 || r.Detected != 3 || r.Recall == nil || *r.Recall != 0.75 {
		t.Errorf("anomalies %d, detected %d, recall %v; want 4, 3, 0.75", r.Anomalies, r.Detected, r.Recall)
	}
	want := map[string][2]uint64{model.KindSpike: {2, 2}, model.KindLevelShift: {1, 0}, model.KindDropout: {1, 1}}
	for kind, w := range want {
		k := r.ByKind[kind]
		if k.Anomalies != w[0] || k.Detected != w[1] || k.Recall == nil || *k.Recall != float64(w[1])/float64(w[0]) {
			t.Errorf("%s: %d of %d detected, recall %v; want %d of %d", kind, k.Detected, k.Anomalies, k.Recall, w[1], w[0])
		}
	}
	if r.ByAlertKind["spike"] != 6 || r.ByAlertKind["missing"] != 1 {
		t.Errorf("by alert kind: %v", r.ByAlertKind)
	}
	// Undefined ratios are null, not NaN (which JSON cannot carry).
	empty := verify.NewAlertScorer(mustTruth(t, published("a", 1)), time.Second).Report("alerts")
	if b, err := json.Marshal(empty); err != nil || empty.Precision != nil || empty.Recall != nil {
		t.Errorf("empty report: %s, %v", b, err)
	}
}

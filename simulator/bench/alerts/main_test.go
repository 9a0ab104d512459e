package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/simulator/fleet"
	"github.com/tributary-iot/tributary/simulator/verify"
)

// TestRunFleet: a small fleet gets every anomaly kind, the detectors find
// most of them with few false alerts, and the same seed gives the same
// report.
func TestRunFleet(t *testing.T) {
	// 30 minutes: the detectors open no incident while they learn (about 8
	// minutes at 2 samples/s).
	o := options{Seeds: []int64{7}, Devices: 8, Rate: 2, AnomalyRate: 30, Duration: 30 * time.Minute, Tolerance: 30 * time.Second}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	r, err := runFleet(7, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range fleet.AnomalyKinds {
		if r.ByKind[k].Anomalies == 0 {
			t.Errorf("no %s injected: %+v", k, r.ByKind)
		}
	}
	if r.Precision == nil || *r.Precision < 0.5 || r.Recall == nil || *r.Recall < 0.6 {
		t.Errorf("%d alerts, %d matched, %d of %d anomalies detected: want precision >= 50%%, recall >= 60%%",
			r.Alerts, r.Matched, r.Detected, r.Anomalies)
	}
	again, err := runFleet(7, o)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, again) {
		t.Errorf("same seed, different reports:\n%+v\n%+v", r, again)
	}
	var b strings.Builder
	if err := writeTable(&b, o, []*verify.AlertReport{r}); err != nil || strings.Count(b.String(), "\n| ") != 3 {
		t.Errorf("table %q, %v: want a header and two rows", b.String(), err)
	}
}

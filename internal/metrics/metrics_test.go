package metrics_test

import (
	"testing"

	"github.com/tributary-iot/tributary/internal/buildinfo"
	"github.com/tributary-iot/tributary/internal/metrics"
)

func TestNewRegistry(t *testing.T) {
	reg := metrics.NewRegistry(buildinfo.Info{Version: "v1.2.3", GoVersion: "go1.26.0", Revision: "abc"})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
		if mf.GetName() != metrics.BuildInfoName {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%d build_info series", len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if m.GetGauge().GetValue() != 1 || len(labels) != 3 || labels["version"] != "v1.2.3" ||
			labels["goversion"] != "go1.26.0" || labels["revision"] != "abc" {
			t.Errorf("build_info %v = %v", labels, m.GetGauge().GetValue())
		}
	}
	for _, name := range []string{metrics.BuildInfoName, "go_goroutines", "process_start_time_seconds"} {
		if !seen[name] {
			t.Errorf("no %s", name)
		}
	}
}

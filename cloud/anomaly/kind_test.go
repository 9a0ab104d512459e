package anomaly_test

import (
	"testing"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

func TestKindText(t *testing.T) {
	want := map[anomaly.Kind]string{
		anomaly.KindSpike: "spike", anomaly.KindLevelShift: "level_shift", anomaly.KindDrift: "drift",
		anomaly.KindStuck: "stuck", anomaly.KindNoise: "noise", anomaly.KindMissing: "missing", anomaly.KindPattern: "pattern",
	}
	if len(anomaly.Kinds()) != len(want) {
		t.Fatalf("Kinds() = %v", anomaly.Kinds())
	}
	for _, k := range anomaly.Kinds() {
		b, err := k.MarshalText()
		if err != nil || string(b) != want[k] || k.String() != want[k] {
			t.Errorf("kind %d: %q, %v, String %q; want %q", k, b, err, k, want[k])
		}
		var back anomaly.Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("UnmarshalText(%q) = %v, %v", b, back, err)
		}
	}
	if _, err := anomaly.Kind(200).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown kind: no error")
	}
	var k anomaly.Kind
	if err := k.UnmarshalText([]byte("flood")); err == nil {
		t.Error(`UnmarshalText("flood"): no error`)
	}
}

package intake

import "testing"

func TestFilterReachesOthers(t *testing.T) {
	for _, tc := range []struct {
		filter, id string
		want       bool
	}{
		{"tributary/v1/devices/dev-1/cmd/+", "dev-1", false},
		{"tributary/v1/devices/dev-1/#", "dev-1", false},
		{"tributary/v1/devices/dev-2/cmd/+", "dev-1", true},
		{"tributary/v1/devices/+/telemetry", "dev-1", true},
		{"tributary/v1/devices/#", "dev-1", true},
		{"tributary/#", "dev-1", true},
		{"#", "dev-1", true},
		{"+/v1/devices/+/status", "dev-1", true},
		{"+/v1/devices/dev-1/status", "dev-1", false},
		{"tributary/v1/devices", "dev-1", false},
		{"tributary/v2/#", "dev-1", false},
		{"site/lights", "dev-1", false},
		{"$share/g/tributary/v1/devices/+/telemetry", "dev-1", true},
		{"$share/g/tributary/v1/devices/dev-1/cmd/+", "dev-1", false},
		{"tributary/v1/devices/dev-1/cmd/+", "", true},
	} {
		if got := filterReachesOthers(tc.filter, tc.id); got != tc.want {
			t.Errorf("filterReachesOthers(%q, %q) = %v, want %v", tc.filter, tc.id, got, tc.want)
		}
	}
}

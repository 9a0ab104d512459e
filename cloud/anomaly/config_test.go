package anomaly_test

import (
	"errors"
	"math"
	"testing"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  anomaly.Config
		want string // "" for valid
	}{
		{anomaly.Config{}, ""},
		{anomaly.Config{Warmup: 10, Scales: []int{1, 4}, Categories: 16, Refractory: 5, AlertThreshold: 0.9, AlertHoldoff: 3, Silence: 2.5}, ""},
		{anomaly.Config{Warmup: -1}, "anomaly: invalid config: Warmup -1 is negative"},
		{anomaly.Config{Scales: make([]int, 9)}, "anomaly: invalid config: 9 Scales, at most 8"},
		{anomaly.Config{Scales: []int{2, 0}}, "anomaly: invalid config: scale 0, want 1..65536"},
		{anomaly.Config{Categories: 5000}, "anomaly: invalid config: Categories 5000, want 0..4096"},
		{anomaly.Config{Refractory: -2}, "anomaly: invalid config: Refractory -2 is negative"},
		{anomaly.Config{AlertThreshold: 1.5}, "anomaly: invalid config: AlertThreshold 1.5, want 0..1"},
		{anomaly.Config{AlertThreshold: math.NaN()}, "anomaly: invalid config: AlertThreshold NaN, want 0..1"},
		{anomaly.Config{AlertHoldoff: -1}, "anomaly: invalid config: AlertHoldoff -1 is negative"},
		{anomaly.Config{Silence: 0.5}, "anomaly: invalid config: Silence 0.5, want 0 (the default) or 1..1048576 cadences"},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.cfg, err)
		case c.want != "" && (err == nil || err.Error() != c.want || !errors.Is(err, anomaly.ErrConfig)):
			t.Errorf("%+v: %v, want %q wrapping ErrConfig", c.cfg, err, c.want)
		}
	}
}

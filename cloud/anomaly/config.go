package anomaly

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes detectors and the alerts of a Registry. The zero Config
// means the defaults, and the defaults are meant for every series: nothing
// is tuned per series.
type Config struct {
	// Warmup is how many points a detector learns from before it scores
	// (its Score is 0 until then). Default 200. The pattern memory learns
	// for 104 downsampled steps of its own (312 points at scale 3) and
	// scores nothing before.
	Warmup int
	// Scales are the downsampling steps of the pattern memory, one memory
	// per step. Default {3, 6}.
	Scales []int
	// Categories bounds each pattern memory; when it is full the least
	// recently used category is forgotten. Default 64 (19 KB per scale).
	Categories int
	// Refractory is the least number of points after an alarm during
	// which a score no higher than 1.2 times the alarm's is withheld.
	// Default 20.
	Refractory int

	// AlertThreshold is the score from which a Registry raises an Alert.
	// Default 0.6, about the threshold NAB's optimiser picks for this
	// detector (0.61 in the standard profile).
	AlertThreshold float64
	// AlertHoldoff is the quiet period of an incident, in points: an
	// open incident resolves after this many points in a row that score
	// below half of AlertThreshold (and lie in its expected range), and
	// raises at most one update event per this many points unless its
	// peak rises. Default 60.
	AlertHoldoff int
	// Silence is how many learnt cadences (typical intervals between
	// points) without a point make Registry.Sweep call a series silent.
	// Default 5; at least 1.
	Silence float64
	// MinSilence is the least gap Sweep calls missing data, whatever the
	// cadence (default 30s): a live pipeline delivers points in batches
	// (gateway batching, consumer polling), so a fast series looks silent
	// for a second or two between batches without missing anything.
	MinSilence time.Duration
	// FutureMargin: Registry.ObserveReceived neither scores nor lets
	// advance a series' clock a point stamped more than this after its
	// receive time (a device clock ahead); it counts it in
	// RegistryStats.Future. Otherwise one such point would make every
	// later, correct point look late, blinding the series. Default
	// DefaultFutureMargin; negative disables the check.
	FutureMargin time.Duration

	// Constants are calibration constants of the detectors. The zero
	// value means the defaults, which leave-one-category-out
	// cross-validation on NAB chose (with Scales; see the package
	// documentation); they are one set for every series, not meant to be
	// tuned per series.
	Constants Constants
}

// Constants are the detectors' calibration constants that
// cross-validation chooses (Config.Constants), each scale-free: a
// surprisal (-log10 of a tail probability under each statistic's own
// running calibration) and a score. Zero fields take the defaults.
type Constants struct {
	// Full is the surprisal above a detector's offset that scores 1
	// (a one-in-10^Full event). Default 10.
	Full float64
	// Extreme is the score of a value just beyond every value the series
	// has shown (a new extreme), before the excess adds to it. Default
	// 0.1; negative: a new extreme is no evidence.
	Extreme float64
}

// DefaultFutureMargin is Config.FutureMargin's default.
const DefaultFutureMargin = 10 * time.Minute

// Limits of Config fields.
const (
	maxScales     = 8
	maxScale      = 1 << 16
	maxCategories = 4096
	maxSilence    = 1 << 20
)

// ErrConfig wraps every complaint of Config.Validate.
var ErrConfig = errors.New("anomaly: invalid config")

// Validate reports fields out of range (zero fields are fine: they take
// their defaults).
func (c Config) Validate() error {
	switch {
	case c.Warmup < 0:
		return fmt.Errorf("%w: Warmup %d is negative", ErrConfig, c.Warmup)
	case len(c.Scales) > maxScales:
		return fmt.Errorf("%w: %d Scales, at most %d", ErrConfig, len(c.Scales), maxScales)
	case c.Categories < 0 || c.Categories > maxCategories:
		return fmt.Errorf("%w: Categories %d, want 0..%d", ErrConfig, c.Categories, maxCategories)
	case c.Refractory < 0:
		return fmt.Errorf("%w: Refractory %d is negative", ErrConfig, c.Refractory)
	case !(c.AlertThreshold >= 0 && c.AlertThreshold <= 1):
		return fmt.Errorf("%w: AlertThreshold %v, want 0..1", ErrConfig, c.AlertThreshold)
	case c.AlertHoldoff < 0:
		return fmt.Errorf("%w: AlertHoldoff %d is negative", ErrConfig, c.AlertHoldoff)
	case !(c.Silence == 0 || c.Silence >= 1 && c.Silence <= maxSilence):
		return fmt.Errorf("%w: Silence %v, want 0 (the default) or 1..%d cadences", ErrConfig, c.Silence, maxSilence)
	}
	for _, s := range c.Scales {
		if s < 1 || s > maxScale {
			return fmt.Errorf("%w: scale %d, want 1..%d", ErrConfig, s, maxScale)
		}
	}
	return nil
}

// withDefaults fills zero fields (and fields Validate would reject).
func (c Config) withDefaults() Config {
	if c.Warmup <= 0 {
		c.Warmup = 200
	}
	scales := make([]int, 0, maxScales)
	for _, s := range c.Scales {
		if s >= 1 && s <= maxScale && len(scales) < maxScales {
			scales = append(scales, s)
		}
	}
	if len(scales) == 0 {
		scales = append(scales, 3, 6)
	}
	c.Scales = scales
	if c.Categories <= 0 || c.Categories > maxCategories {
		c.Categories = 64
	}
	if c.Refractory <= 0 {
		c.Refractory = 20
	}
	if !(c.AlertThreshold > 0 && c.AlertThreshold <= 1) {
		c.AlertThreshold = 0.6
	}
	if c.AlertHoldoff <= 0 {
		c.AlertHoldoff = 60
	}
	if c.MinSilence <= 0 {
		c.MinSilence = 30 * time.Second
	}
	if c.FutureMargin == 0 {
		c.FutureMargin = DefaultFutureMargin
	}
	if !(c.Silence >= 1 && c.Silence <= maxSilence) {
		c.Silence = 5
	}
	k := &c.Constants
	if !(k.Full > 0 && k.Full <= 100) {
		k.Full = 10
	}
	switch {
	case k.Extreme < 0:
		k.Extreme = 0
	case !(k.Extreme > 0 && k.Extreme <= 1):
		k.Extreme = 0.1
	}
	return c
}

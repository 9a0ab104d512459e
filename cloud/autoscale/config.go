package autoscale

import (
	"errors"
	"fmt"
	"time"
)

// Config is stream.autoscale in tributary-cloud's configuration.
type Config struct {
	// Enabled turns the autoscaler on (default off).
	Enabled bool `yaml:"enabled"`
	// MinShards and MaxShards bound the open shard count (defaults 1 and
	// 64).
	MinShards int `yaml:"min_shards"`
	MaxShards int `yaml:"max_shards"`
	// TargetUtilisation is the share of a shard's limits the autoscaler
	// aims for (default 0.7): it scales up when the stream needs more
	// shards than its load divided by this, and down when fewer would do.
	TargetUtilisation float64 `yaml:"target_utilisation"`
	// ScaleDownDelay is how long the load must have stayed low enough
	// for fewer shards before the stream is scaled down (default 15m).
	ScaleDownDelay time.Duration `yaml:"scale_down_delay"`
	// Cooldown is the least time between two reshards (default 1m).
	Cooldown time.Duration `yaml:"cooldown"`
	// Interval is how often the load is measured and a decision taken
	// (default 10s): rates are averaged over one interval.
	Interval time.Duration `yaml:"interval"`
}

// Defaults of Config.
const (
	DefaultMinShards         = 1
	DefaultMaxShards         = 64
	DefaultTargetUtilisation = 0.7
	DefaultScaleDownDelay    = 15 * time.Minute
	DefaultCooldown          = time.Minute
	DefaultInterval          = 10 * time.Second
	// MaxShardsLimit is the most shards the autoscaler manages (Kinesis's
	// default account quota in most regions is 500 or 1,000 shards; the
	// embedded store's is 1,000).
	MaxShardsLimit = 1000
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MinShards == 0 {
		c.MinShards = DefaultMinShards
	}
	if c.MaxShards == 0 {
		c.MaxShards = max(DefaultMaxShards, c.MinShards)
	}
	if c.TargetUtilisation == 0 {
		c.TargetUtilisation = DefaultTargetUtilisation
	}
	if c.ScaleDownDelay == 0 {
		c.ScaleDownDelay = DefaultScaleDownDelay
	}
	if c.Cooldown == 0 {
		c.Cooldown = DefaultCooldown
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	return c
}

// Validate reports every problem of a config with defaults applied, each
// naming its setting.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("stream.autoscale."+format, args...)) }
	if c.MinShards < 1 || c.MinShards > MaxShardsLimit {
		add("min_shards: %d: want 1..%d", c.MinShards, MaxShardsLimit)
	}
	if c.MaxShards < 1 || c.MaxShards > MaxShardsLimit {
		add("max_shards: %d: want 1..%d", c.MaxShards, MaxShardsLimit)
	} else if c.MaxShards < c.MinShards {
		add("max_shards: %d is below min_shards %d", c.MaxShards, c.MinShards)
	}
	if !(c.TargetUtilisation > 0 && c.TargetUtilisation <= 1) {
		add("target_utilisation: %v: want a share of the shard limits in (0, 1], such as 0.7", c.TargetUtilisation)
	}
	if c.ScaleDownDelay < 0 {
		add("scale_down_delay: must not be negative")
	}
	if c.Cooldown < 0 {
		add("cooldown: must not be negative")
	}
	if c.Interval < 100*time.Millisecond {
		add("interval: %v: want at least 100ms", c.Interval)
	}
	return errors.Join(errs...)
}

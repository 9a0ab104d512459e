package fleet

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/internal/brokerurl"
	"github.com/tributary-iot/tributary/internal/strictyaml"
	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/model"
)

// Sensor profiles, the values of Config.Sensors.
const (
	// SensorsBME280 gives every device a BME280 at 0x76 on I²C bus "1"
	// (temperature, humidity, pressure).
	SensorsBME280 = "bme280"
	// SensorsSHT3x gives every device an SHT3x at 0x44 on I²C bus "1"
	// (temperature, humidity).
	SensorsSHT3x = "sht3x"
	// SensorsMixed gives 6 devices in 10 a BME280 and 4 in 10 an SHT3x
	// plus an MCP3008 on SPI (voltage0, voltage1); every 100th device
	// also counts pulses (flow, flow.rate), at most MaxPulseCounters.
	SensorsMixed = "mixed"
)

// MaxPulseCounters bounds the pulse counters of the mixed profile: each
// one wakes its node at the pulse rate (about 10/s), so they are kept few.
const MaxPulseCounters = 100

// Limits of the configuration.
const (
	MinRate    float64 = 0.1 // samples per second per device
	MaxRate    float64 = 100
	MaxDevices         = 100_000
)

// AnomalyKinds are the kinds Config.Anomalies may list: the model's metric
// anomalies and dropout.
var AnomalyKinds = []string{
	model.KindSpike, model.KindLevelShift, model.KindDrift, model.KindStuck,
	model.KindNoiseBurst, model.KindDropout,
}

// Config says what fleet to run. The zero value is not valid: start from
// DefaultConfig. Durations and rates are as the flags of tributary-sim
// take them.
type Config struct {
	Broker   string        `yaml:"broker"`   // tcp://HOST:PORT
	Devices  int           `yaml:"devices"`  // number of devices, 1..MaxDevices
	Rate     float64       `yaml:"rate"`     // samples per second per device, MinRate..MaxRate
	Duration time.Duration `yaml:"duration"` // 0 runs until the context ends
	Seed     int64         `yaml:"seed"`     // every random choice derives from it
	Prefix   string        `yaml:"prefix"`   // device id = Prefix + 5-digit index
	Sensors  string        `yaml:"sensors"`  // SensorsBME280, SensorsSHT3x or SensorsMixed

	// ConnectRate bounds new MQTT connections per second, first
	// connections and reconnections alike, fleet-wide.
	ConnectRate float64 `yaml:"connect_rate"`

	// AnomalyRate is the expected number of anomalies per device-hour
	// (0: none), spread evenly over the Anomalies kinds.
	AnomalyRate float64 `yaml:"anomaly_rate"`
	// Anomalies lists the kinds to inject (AnomalyKinds); empty means all.
	Anomalies []string `yaml:"anomalies"`

	// StormEvery is the time between disconnect storms (0: none); each
	// storm severs the connections of StormFraction of the devices.
	StormEvery    time.Duration `yaml:"storm_every"`
	StormFraction float64       `yaml:"storm_fraction"`
	// SkewFraction of the devices have a clock off by Skew (which may be
	// negative).
	SkewFraction float64       `yaml:"skew_fraction"`
	Skew         time.Duration `yaml:"skew"`
	// MalformedRate is the expected number of malformed payloads per
	// device-hour (0: none).
	MalformedRate float64 `yaml:"malformed_rate"`

	// QoS of the telemetry publishes, 0 or 1.
	QoS int `yaml:"qos"`

	// Truth is the file the injected anomalies and faults are written to,
	// one JSON line each; "" writes none.
	Truth string `yaml:"truth"`
	// Summary is the file the end-of-run JSON summary is written to; ""
	// writes none.
	Summary string `yaml:"summary"`
	// StatsEvery is the interval of progress lines (0: none).
	StatsEvery time.Duration `yaml:"stats_every"`
	// LogFormat is "text" or "json" (for the binary's logger).
	LogFormat string `yaml:"log_format"`
}

// DefaultConfig returns the defaults of tributary-sim.
func DefaultConfig() Config {
	return Config{
		Broker:      "tcp://127.0.0.1:1883",
		Devices:     10,
		Rate:        1,
		Seed:        1,
		Prefix:      "sim-",
		Sensors:     SensorsBME280,
		ConnectRate: 2000,
		QoS:         1,
		StatsEvery:  10 * time.Second,
		LogFormat:   "text",
	}
}

// Errors.
var (
	// ErrConfig wraps every complaint about a Config.
	ErrConfig = errors.New("fleet: invalid config")
)

// Validate checks c and returns every problem at once, each telling what
// to fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

	if u, err := brokerurl.Parse(c.Broker); err != nil {
		bad("%v", err)
	} else if brokerurl.IsTLS(u) {
		bad("broker %q: the simulator connects without TLS: want tcp://HOST:PORT", c.Broker)
	}
	if c.Devices < 1 || c.Devices > MaxDevices {
		bad("devices %d: want 1..%d", c.Devices, MaxDevices)
	}
	if !(c.Rate >= MinRate && c.Rate <= MaxRate) {
		bad("rate %g: want %g..%g samples per second per device", c.Rate, MinRate, MaxRate)
	}
	if c.Duration < 0 {
		bad("duration %s is negative (0 runs until stopped)", c.Duration)
	}
	if err := protocol.CheckDeviceID(c.Prefix + "00000"); err != nil {
		bad("prefix %q does not make valid device ids: %v", c.Prefix, err)
	} else if len(c.Prefix)+5 > protocol.MaxDeviceIDBytes {
		bad("prefix %q is too long", c.Prefix)
	}
	switch c.Sensors {
	case SensorsBME280, SensorsSHT3x, SensorsMixed:
	default:
		bad("sensors %q: want %s, %s or %s", c.Sensors, SensorsBME280, SensorsSHT3x, SensorsMixed)
	}
	if !(c.ConnectRate > 0) || !finite(c.ConnectRate) {
		bad("connect rate %g: want a positive number of connections per second", c.ConnectRate)
	}
	if !(c.AnomalyRate >= 0) || !finite(c.AnomalyRate) {
		bad("anomaly rate %g: want events per device-hour >= 0", c.AnomalyRate)
	}
	seen := map[string]bool{}
	for _, k := range c.Anomalies {
		switch {
		case !slices.Contains(AnomalyKinds, k):
			bad("anomaly kind %q: want some of %s", k, strings.Join(AnomalyKinds, ", "))
		case seen[k]:
			bad("anomaly kind %q listed twice", k)
		}
		seen[k] = true
	}
	if c.StormEvery < 0 {
		bad("storm interval %s is negative", c.StormEvery)
	}
	if !(c.StormFraction >= 0 && c.StormFraction <= 1) {
		bad("storm fraction %g: want 0..1", c.StormFraction)
	}
	if c.StormEvery > 0 && c.StormFraction == 0 {
		bad("storms every %s sever no one: set a storm fraction above 0", c.StormEvery)
	}
	if !(c.SkewFraction >= 0 && c.SkewFraction <= 1) {
		bad("skew fraction %g: want 0..1", c.SkewFraction)
	}
	if c.SkewFraction > 0 && c.Skew == 0 {
		bad("skew fraction %g with no skew: set the clock offset (e.g. 30s or -2m)", c.SkewFraction)
	}
	if !(c.MalformedRate >= 0) || !finite(c.MalformedRate) {
		bad("malformed rate %g: want payloads per device-hour >= 0", c.MalformedRate)
	}
	if c.QoS != 0 && c.QoS != 1 {
		bad("qos %d: want 0 or 1", c.QoS)
	}
	if c.StatsEvery < 0 {
		bad("stats interval %s is negative (0: no progress lines)", c.StatsEvery)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log format %q: want text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// DeviceID returns the id of device i.
func (c *Config) DeviceID(i int) string {
	return fmt.Sprintf("%s%05d", c.Prefix, i)
}

// anomalyKinds returns the kinds to inject.
func (c *Config) anomalyKinds() []string {
	if len(c.Anomalies) == 0 {
		return AnomalyKinds
	}
	return c.Anomalies
}

// interval is the sampling interval.
func (c *Config) interval() time.Duration {
	return time.Duration(float64(time.Second) / c.Rate)
}

// LoadConfig strictly decodes the YAML file at path over base (usually
// DefaultConfig): keys it does not know, an empty file, a second document
// and type mismatches are errors; keys it leaves out keep base's values.
// It does not validate.
func LoadConfig(path string, base Config) (Config, error) {
	c := base
	if err := strictyaml.Load(path, &c); err != nil {
		return base, fmt.Errorf("fleet: %w", err)
	}
	return c, nil
}

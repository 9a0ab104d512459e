package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/brokerurl"
	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/strictyaml"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

// Defaults and bounds of Config. A zero field means its default.
const (
	DefaultKeepAlive           = 30 * time.Second
	DefaultConnectTimeout      = 10 * time.Second
	DefaultQoS                 = 1
	DefaultInterval            = time.Second
	DefaultBufferReadings      = 10_000
	DefaultMaxInflight         = 10
	DefaultBatchSamples        = 1
	DefaultReconnectBackoff    = time.Second
	DefaultMaxReconnectBackoff = time.Minute
	DefaultDrainTimeout        = 5 * time.Second

	MinInterval       = 10 * time.Millisecond
	MaxInterval       = 24 * time.Hour
	MaxBufferReadings = 10_000_000
	MaxMaxInflight    = 1000
	MaxBatchSamples   = 1000
	MaxKeepAlive      = 65535 * time.Second // MQTT's keep-alive is 16-bit seconds
)

// Config configures one node. It is decoded from YAML strictly (unknown
// keys are errors); every zero field means its default (see the Default*
// constants), so a Go caller can fill in only what it needs. Validate
// reports every problem at once.
type Config struct {
	// Device is the device id, the {device} of the MQTT topics
	// (protocol.DeviceIDPattern). Required.
	Device string `yaml:"device"`
	// Broker is the MQTT broker URL: tcp://host:port or ssl://host:port
	// (mqtt:// and mqtts:// are aliases). The port defaults to 1883 (tcp)
	// or 8883 (ssl). Required.
	Broker string `yaml:"broker"`
	// ClientID is the MQTT client id; "" means Device.
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS configures ssl:// brokers.
	TLS tlsfiles.Client `yaml:"tls"`
	// KeepAlive is the MQTT keep-alive; a dead connection is noticed
	// within about 1.5 times it. Default 30s.
	KeepAlive time.Duration `yaml:"keepalive"`
	// ConnectTimeout bounds dialling plus the MQTT handshake, and a publish
	// waiting to be written. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// QoS of telemetry, status and replies: 0 or 1; nil means 1. At QoS 0
	// a pack counts as published once written to the connection.
	QoS *int `yaml:"qos"`

	// Interval is the sampling interval of sensors that do not set their
	// own. Default 1s; MinInterval..MaxInterval.
	Interval time.Duration `yaml:"interval"`
	// Phase offsets every sensor's ticks from the interval boundaries of
	// the node's clock (ticks fall at k·interval + phase). Spreads a fleet
	// whose clocks agree. Default 0.
	Phase time.Duration `yaml:"phase"`

	// BufferReadings bounds the readings held in RAM while they cannot be
	// published (disconnected, or publishes failing). When full the oldest
	// pack is dropped and its readings counted in Stats.Dropped. Default
	// 10,000.
	BufferReadings int `yaml:"buffer_readings"`
	// MaxInflight bounds the packs published and not yet acknowledged.
	// Default 10.
	MaxInflight int `yaml:"max_inflight"`
	// BatchSamples is how many samples (one Sense of one sensor each) go
	// into one SenML pack. Default 1: every sample is published at once.
	BatchSamples int `yaml:"batch_samples"`
	// BatchDelay bounds how long a sample waits in an incomplete pack.
	// Default BatchSamples × Interval.
	BatchDelay time.Duration `yaml:"batch_delay"`

	// ReconnectBackoff is the first wait before reconnecting; it doubles up
	// to MaxReconnectBackoff; each wait is drawn from [d/2, d]. Defaults 1s and 1m.
	ReconnectBackoff    time.Duration `yaml:"reconnect_backoff"`
	MaxReconnectBackoff time.Duration `yaml:"max_reconnect_backoff"`
	// DrainTimeout bounds the flush of buffered readings on a clean stop.
	// Default 5s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`

	// Sensors lists the sensors to sample; each Spec's Interval, when set,
	// overrides Interval for that sensor.
	Sensors []sensor.Spec `yaml:"sensors"`
}

// LoadConfig reads and strictly decodes a YAML config file: unknown keys,
// a second document and type mismatches are errors. It does not validate:
// call Validate (New does).
func LoadConfig(path string) (Config, error) { return strictyaml.File[Config](path) }

// ParseConfig strictly decodes a YAML config (see LoadConfig).
func ParseConfig(b []byte) (Config, error) { return strictyaml.Bytes[Config](b) }

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	defaults.Set(&c.ClientID, c.Device)
	defaults.Set(&c.KeepAlive, DefaultKeepAlive)
	defaults.Set(&c.ConnectTimeout, DefaultConnectTimeout)
	if c.QoS == nil {
		q := DefaultQoS
		c.QoS = &q
	}
	defaults.Set(&c.Interval, DefaultInterval)
	defaults.Set(&c.BufferReadings, DefaultBufferReadings)
	defaults.Set(&c.MaxInflight, DefaultMaxInflight)
	defaults.Set(&c.BatchSamples, DefaultBatchSamples)
	if c.BatchSamples > 0 && c.Interval > 0 {
		defaults.Set(&c.BatchDelay, time.Duration(c.BatchSamples)*c.Interval)
	}
	defaults.Set(&c.ReconnectBackoff, DefaultReconnectBackoff)
	defaults.Set(&c.MaxReconnectBackoff, DefaultMaxReconnectBackoff)
	defaults.Set(&c.DrainTimeout, DefaultDrainTimeout)
	c.Sensors = append([]sensor.Spec(nil), c.Sensors...)
	for i := range c.Sensors {
		defaults.Set(&c.Sensors[i].Interval, c.Interval)
	}
	return c
}

// Validate checks the config and returns every problem, each saying what
// to fix, joined; nil if it is usable. An empty sensor list is valid here
// (sensors may be passed to New already open); New rejects a node with
// no sensors at all.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("node: config: "+format, a...))
	}

	if c.Device == "" {
		bad(`device is missing: set it to this node's id, e.g. "greenhouse-1"`)
	} else if err := protocol.CheckDeviceID(c.Device); err != nil {
		bad("device: %v", err)
	}
	if len(c.ClientID) > 65535 {
		bad("client_id is %d bytes; MQTT allows 65535", len(c.ClientID))
	}
	if c.Broker == "" {
		bad("broker is missing: set the MQTT broker URL, e.g. tcp://gateway.local:1883")
	} else if u, err := brokerurl.Parse(c.Broker); err != nil {
		bad("%v", err)
	} else if !brokerurl.IsTLS(u) && !c.TLS.IsZero() {
		bad("tls is set but broker %q is not TLS: use ssl://host:8883, or remove tls", c.Broker)
	}
	if err := c.TLS.Validate(); err != nil {
		bad("tls: %v", err)
	}
	if c.Password != "" && c.Username == "" {
		bad("password is set without username")
	}
	if c.KeepAlive < time.Second || c.KeepAlive > MaxKeepAlive {
		bad("keepalive %s is outside 1s..%s", c.KeepAlive, MaxKeepAlive)
	}
	if c.ConnectTimeout < 100*time.Millisecond {
		bad("connect_timeout %s is below 100ms", c.ConnectTimeout)
	}
	switch *c.QoS {
	case 0, 1:
	case 2:
		bad("qos 2 is not supported: use 1 (at least once, the default) or 0 (at most once)")
	default:
		bad("qos %d is not 0 or 1", *c.QoS)
	}
	checkInterval := func(what string, d time.Duration) {
		if d < MinInterval || d > MaxInterval {
			bad("%s %s is outside %s..%s", what, d, MinInterval, MaxInterval)
		}
	}
	checkInterval("interval", c.Interval)
	if c.Phase < 0 {
		bad("phase %s is negative", c.Phase)
	}
	if c.BufferReadings < 1 || c.BufferReadings > MaxBufferReadings {
		bad("buffer_readings %d is outside 1..%d", c.BufferReadings, MaxBufferReadings)
	}
	if c.MaxInflight < 1 || c.MaxInflight > MaxMaxInflight {
		bad("max_inflight %d is outside 1..%d", c.MaxInflight, MaxMaxInflight)
	}
	if c.BatchSamples < 1 || c.BatchSamples > MaxBatchSamples {
		bad("batch_samples %d is outside 1..%d", c.BatchSamples, MaxBatchSamples)
	}
	if c.BatchDelay < 0 {
		bad("batch_delay %s is negative", c.BatchDelay)
	}
	if c.ReconnectBackoff < time.Millisecond {
		bad("reconnect_backoff %s is below 1ms", c.ReconnectBackoff)
	}
	if c.MaxReconnectBackoff < c.ReconnectBackoff {
		bad("max_reconnect_backoff %s is below reconnect_backoff %s", c.MaxReconnectBackoff, c.ReconnectBackoff)
	}
	if c.DrainTimeout < 0 {
		bad("drain_timeout %s is negative", c.DrainTimeout)
	}
	if err := sensor.ValidateAll(c.Sensors); err != nil {
		errs = append(errs, err)
	}
	for i, s := range c.Sensors {
		if s.Interval < MinInterval || s.Interval > MaxInterval {
			errs = append(errs, &sensor.SpecError{Index: i + 1, Kind: s.Kind, Name: s.Name,
				Err: fmt.Errorf("interval %s is outside %s..%s", s.Interval, MinInterval, MaxInterval)})
		}
	}
	return errors.Join(errs...)
}

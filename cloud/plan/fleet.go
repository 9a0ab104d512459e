package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/strictyaml"
	"github.com/tributary-iot/tributary/protocol"
)

// Defaults of a Fleet.
const (
	DefaultRate          = 1.0                    // samples per second per device
	DefaultBatchAge      = time.Second            // the agent's cloud.batch_age
	DefaultBatchReadings = 5000                   // the agent's cloud.batch_readings
	DefaultRetention     = 24 * time.Hour         // Kinesis's default retention
	DefaultConsumers     = 1                      // tributary-cloud's own consumer (the monitor)
	DefaultPollInterval  = 200 * time.Millisecond // cloud/consumer's default on Kinesis
	DefaultHeadroom      = 0.25
	DefaultRegion        = "us-east-1"
	DefaultDeviceID      = "sim-00000"
	DefaultGatewayID     = "gw-00000"
	DevicesPerGateway    = 1000 // when gateways is not given
)

// DefaultMetrics is one BME280 sample, as the simulator and the firmware
// publish it: three readings.
var DefaultMetrics = []Metric{
	{Name: "temperature", Unit: "Cel", Value: 21.37},
	{Name: "humidity", Unit: "%RH", Value: 45.18},
	{Name: "pressure", Unit: "Pa", Value: 101325.47},
}

// Metric is one reading of a sample: its name, unit and a typical value
// (the encoder's size depends on it: 21.5 fits a float32, 21.37 needs a
// float64).
type Metric struct {
	Name  string  `yaml:"name" json:"name"`
	Unit  string  `yaml:"unit" json:"unit,omitempty"`
	Value float64 `yaml:"value" json:"value"`
}

// Fleet describes what a fleet sends and how its stream is read: the
// input of a plan (from flags, a YAML file, or a running cloud's traffic).
type Fleet struct {
	Devices  int      `yaml:"devices" json:"devices"`
	Rate     float64  `yaml:"rate" json:"rate"`         // samples per second per device
	Metrics  []Metric `yaml:"metrics" json:"metrics"`   // the readings of one sample
	Gateways int      `yaml:"gateways" json:"gateways"` // default: one per 1,000 devices
	DeviceID string   `yaml:"device_id" json:"device_id"`
	Gateway  string   `yaml:"gateway_id" json:"gateway_id"`

	// How the agent batches (cloud.batch_age, cloud.batch_readings): the
	// ingest writes one record per device per batch.
	BatchAge      time.Duration `yaml:"batch_age" json:"batch_age"`
	BatchReadings int           `yaml:"batch_readings" json:"batch_readings"`

	Retention      time.Duration `yaml:"retention" json:"retention"`
	Consumers      int           `yaml:"consumers" json:"consumers"` // consumer applications reading every record
	EnhancedFanOut bool          `yaml:"enhanced_fan_out" json:"enhanced_fan_out"`
	PollInterval   time.Duration `yaml:"poll_interval" json:"poll_interval"` // GetRecords per shard per consumer
	Partitions     int           `yaml:"partitions" json:"partitions"`       // Kafka partitions; default: as many as shards
	// Sample is a SenML pack file (JSON or CBOR), one sample of one
	// device as it publishes it: its readings replace Metrics (LoadSample).
	Sample   string   `yaml:"sample" json:"sample,omitempty"`
	Region   string   `yaml:"region" json:"region"`
	Headroom *float64 `yaml:"headroom" json:"headroom"` // 0.25: plan for 25% more than the load

	sample []protocol.Reading // LoadSample: the readings of Sample
}

// LoadSample reads Sample, if set, as the readings of one sample: a
// device's own SenML pack (JSON or CBOR, as published on MQTT), so that
// names, units, value kinds and values are the fleet's real ones.
func (f *Fleet) LoadSample() error {
	if f.Sample == "" {
		return nil
	}
	b, err := os.ReadFile(f.Sample)
	if err != nil {
		return fmt.Errorf("plan: sample: %w", err)
	}
	rs, err := protocol.DecodeSenML(b, protocol.DecodeOptions{Device: DefaultDeviceID})
	if err != nil {
		return fmt.Errorf("plan: sample %s: want one device's SenML pack (JSON or CBOR): %w", f.Sample, err)
	}
	if len(rs) == 0 {
		return fmt.Errorf("plan: sample %s: no readings", f.Sample)
	}
	f.sample = rs
	return nil
}

// readingsPerSample is the readings of one sample: Sample's, or Metrics.
func (f *Fleet) readingsPerSample() int {
	if f.sample != nil {
		return len(f.sample)
	}
	return len(f.Metrics)
}

// LoadFleet reads a fleet file strictly (unknown keys are errors); zero
// fields keep the values f already holds.
func LoadFleet(path string, f *Fleet) error {
	if err := strictyaml.Load(path, f); err != nil {
		return fmt.Errorf("plan: fleet %w", err)
	}
	return nil
}

// DecodeFleet decodes fleet YAML strictly into f.
func DecodeFleet(b []byte, f *Fleet) error {
	if err := strictyaml.Decode(b, f); err != nil {
		return fmt.Errorf("plan: fleet: %w", err)
	}
	return nil
}

// SetDefaults fills zero fields with their defaults.
func (f *Fleet) SetDefaults() {
	defaults.Set(&f.Rate, DefaultRate)
	if len(f.Metrics) == 0 {
		f.Metrics = append([]Metric(nil), DefaultMetrics...)
	}
	defaults.Set(&f.Gateways, max(1, (f.Devices+DevicesPerGateway-1)/DevicesPerGateway))
	defaults.Set(&f.DeviceID, DefaultDeviceID)
	defaults.Set(&f.Gateway, DefaultGatewayID)
	defaults.Set(&f.BatchAge, DefaultBatchAge)
	defaults.Set(&f.BatchReadings, DefaultBatchReadings)
	defaults.Set(&f.Retention, DefaultRetention)
	defaults.Set(&f.Consumers, DefaultConsumers)
	defaults.Set(&f.PollInterval, DefaultPollInterval)
	defaults.Set(&f.Region, DefaultRegion)
	if f.Headroom == nil {
		h := DefaultHeadroom
		f.Headroom = &h
	}
}

// Validate checks every field after SetDefaults; each error names the
// setting to fix.
func (f *Fleet) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if f.Devices <= 0 || f.Devices > 100_000_000 {
		add("devices: %d: want 1..100,000,000", f.Devices)
	}
	if !(f.Rate > 0 && f.Rate <= 1000) {
		add("rate: %v: want samples per second per device, above 0 and at most 1000", f.Rate)
	}
	if len(f.Metrics) > protocol.MaxPackRecords {
		add("metrics: %d readings per sample, at most %d", len(f.Metrics), protocol.MaxPackRecords)
	}
	for i, m := range f.Metrics {
		if !protocol.ValidName(m.Name) {
			add("metrics[%d].name: %q: want a SenML name (letters, digits, - : . / _; first a letter or digit)", i, m.Name)
		}
		if len(m.Unit) > protocol.MaxUnitBytes || math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			add("metrics[%d]: unit at most %d bytes and a finite value", i, protocol.MaxUnitBytes)
		}
	}
	if f.Gateways < 1 || f.Gateways > max(f.Devices, 1) {
		add("gateways: %d: want 1..devices", f.Gateways)
	}
	if err := protocol.CheckDeviceID(f.DeviceID); err != nil {
		add("device_id: %v", err)
	}
	if err := protocol.CheckDeviceID(f.Gateway); err != nil {
		add("gateway_id: %v", err)
	}
	if f.BatchAge <= 0 || f.BatchReadings <= 0 || f.BatchReadings > protocol.MaxBatchReadings {
		add("batch_age (%v) above 0 and batch_readings (%d) 1..%d: as in the agent's cloud settings", f.BatchAge, f.BatchReadings, protocol.MaxBatchReadings)
	}
	if f.Retention < time.Hour || f.Retention > 8760*time.Hour {
		add("retention: %v: want 1h..8760h (Kinesis keeps 24h to 365 days)", f.Retention)
	}
	if f.Consumers < 1 || f.Consumers > 1000 {
		add("consumers: %d: want 1..1000 applications reading the stream", f.Consumers)
	}
	if f.PollInterval <= 0 {
		add("poll_interval: %v: want above 0", f.PollInterval)
	}
	if f.Partitions < 0 {
		add("partitions: %d: want 0 (as many as shards) or more", f.Partitions)
	}
	if h := f.Headroom; h == nil || !(*h >= 0 && *h <= 10) {
		add("headroom: want 0..10 (0.25: plan for 25%% more than the load)")
	}
	if f.Region == "" {
		add("region: required")
	}
	return errors.Join(errs...)
}

// fleetJSON is Fleet with its durations as strings ("1s", "24h0m0s").
type fleetJSON struct {
	fleetAlias
	BatchAge     string `json:"batch_age"`
	Retention    string `json:"retention"`
	PollInterval string `json:"poll_interval"`
}

type fleetAlias Fleet

// MarshalJSON writes durations as Go duration strings, for scripts.
func (f Fleet) MarshalJSON() ([]byte, error) {
	return json.Marshal(fleetJSON{fleetAlias(f), f.BatchAge.String(), f.Retention.String(), f.PollInterval.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Fleet) UnmarshalJSON(b []byte) error {
	var j fleetJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Fleet(j.fleetAlias)
	for _, d := range []struct {
		s string
		p *time.Duration
	}{{j.BatchAge, &f.BatchAge}, {j.Retention, &f.Retention}, {j.PollInterval, &f.PollInterval}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("plan: fleet JSON: %w", err)
		}
		*d.p = v
	}
	return nil
}

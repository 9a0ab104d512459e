package sensor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/firmware/drivers/bme280"
	"github.com/tributary-iot/tributary/firmware/drivers/mcp3008"
	"github.com/tributary-iot/tributary/firmware/drivers/sht3x"
)

// Spec describes one sensor, as configured (YAML).
type Spec struct {
	Kind string `yaml:"kind"` // "bme280", "sht3x", "mcp3008", "pulse"
	// Name prefixes the measurement names: "room" gives "room.temperature".
	// For a pulse counter it names the total itself. Optional.
	Name string `yaml:"name"`
	// Bus is the I²C bus name ("" = first/default, "1" => /dev/i2c-1), the
	// SPI port name ("/dev/spidev0.0", "" = first) or the GPIO pin name
	// ("GPIO17", required).
	Bus string `yaml:"bus"`
	// Addr is the I²C address; 0 means the driver's default.
	Addr uint16 `yaml:"address"`
	// Interval is the sampling interval. Validated by the runtime that
	// samples, carried here.
	Interval time.Duration `yaml:"interval"`

	// Channels lists what an mcp3008 reads: at least one.
	Channels []Channel `yaml:"channels"`
	// VRef is an mcp3008's reference voltage; 0 means 3.3 V.
	VRef float64 `yaml:"vref"`

	// PulsesPerUnit is how many pulses make one Unit (e.g. 450 pulses per
	// litre with Unit "l"); 0 means 1.
	PulsesPerUnit float64 `yaml:"pulses_per_unit"`
	// Unit is the SenML unit a pulse counter's total is in; "" means
	// "count".
	Unit string `yaml:"unit"`
	// Debounce makes a pulse counter ignore edges closer than this to the
	// last counted one; 0 counts every edge.
	Debounce time.Duration `yaml:"debounce"`
}

// Channel is one measurement an mcp3008 makes.
type Channel struct {
	// Channel is the input, 0..7; with Differential, the pair of the
	// datasheet's table 5-2 (0: CH0+ CH1-, 1: CH0- CH1+, 2: CH2+ CH3-, ...).
	Channel      int    `yaml:"channel"`
	Differential bool   `yaml:"differential"`
	Name         string `yaml:"name"` // measurement name, required
	Unit         string `yaml:"unit"` // SenML unit; "" means "V"
	// Value = volts*Scale + Offset. Scale 0 means 1.
	Scale  float64 `yaml:"scale"`
	Offset float64 `yaml:"offset"`
}

// SpecError is a problem with one sensor's Spec, found by Validate or when
// opening it. Its message names the sensor:
//
//	sensor 2 (bme280 "room"): address 0x99 is not a BME280 address (0x76 or 0x77)
type SpecError struct {
	// Index is the sensor's 1-based position in the configured list, set by
	// ValidateAll (or by a caller that knows it); 0 leaves it out.
	Index int
	Kind  string
	Name  string
	Err   error
}

// Error prefixes each of the problems Err joins with the sensor's label.
func (e *SpecError) Error() string {
	prefix := "sensor"
	if e.Index > 0 {
		prefix += fmt.Sprintf(" %d", e.Index)
	}
	if l := label(e.Kind, e.Name); l != "" {
		prefix += " (" + l + ")"
	}
	prefix += ": "
	problems := []error{e.Err}
	if j, ok := e.Err.(interface{ Unwrap() []error }); ok {
		problems = j.Unwrap()
	}
	var b strings.Builder
	for i, p := range problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(prefix)
		b.WriteString(p.Error())
	}
	return b.String()
}

func (e *SpecError) Unwrap() error { return e.Err }

func (s Spec) errorf(format string, a ...any) error {
	return &SpecError{Kind: s.Kind, Name: s.Name, Err: fmt.Errorf(format, a...)}
}

const kinds = "bme280, sht3x, mcp3008 or pulse"

// Validate checks s and returns a *SpecError telling what to fix, or nil.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	switch s.Kind {
	case KindBME280, KindSHT3x, KindMCP3008, KindPulse:
	case "":
		bad("kind is missing (want %s)", kinds)
	default:
		bad("unknown kind %q (want %s)", s.Kind, kinds)
	}
	if s.Name != "" && !nameRE.MatchString(s.Name) {
		bad("name %q is not a valid SenML name (letters, digits and - : . / _, starting with a letter or digit)", s.Name)
	}

	// Fields that only one kind uses.
	if s.Addr != 0 && s.Kind != KindBME280 && s.Kind != KindSHT3x {
		bad("address 0x%02x is only for I2C sensors (bme280, sht3x)", s.Addr)
	}
	if s.Kind != KindMCP3008 {
		if len(s.Channels) > 0 {
			bad("channels are only for mcp3008")
		}
		if s.VRef != 0 {
			bad("vref is only for mcp3008")
		}
	}
	if s.Kind != KindPulse {
		if s.PulsesPerUnit != 0 {
			bad("pulses_per_unit is only for pulse")
		}
		if s.Unit != "" {
			bad("unit is only for pulse (mcp3008 channels have their own)")
		}
		if s.Debounce != 0 {
			bad("debounce is only for pulse")
		}
	}

	switch s.Kind {
	case KindBME280:
		if a := s.Addr; a != 0 && a != bme280.DefaultAddr && a != bme280.AltAddr {
			bad("address 0x%02x is not a BME280 address (0x76 or 0x77)", a)
		}
	case KindSHT3x:
		if a := s.Addr; a != 0 && a != sht3x.DefaultAddr && a != sht3x.AltAddr {
			bad("address 0x%02x is not an SHT3x address (0x44 or 0x45)", a)
		}
	case KindMCP3008:
		if len(s.Channels) == 0 {
			bad("channels are missing: list at least one (channel, name, unit, scale, offset)")
		}
		if s.VRef < 0 {
			bad("vref %g V is negative", s.VRef)
		}
		seen := map[string]bool{}
		for i, c := range s.Channels {
			where := fmt.Sprintf("channels entry %d", i+1)
			if c.Name != "" {
				where += fmt.Sprintf(" (%q)", c.Name)
			}
			if c.Channel < 0 || c.Channel >= mcp3008.Channels {
				what := "channel"
				if c.Differential {
					what = "differential pair"
				}
				bad("%s: %s %d is outside 0..7", where, what, c.Channel)
			}
			switch {
			case c.Name == "":
				bad("%s: name is missing", where)
			case !nameRE.MatchString(c.Name):
				bad("%s: name %q is not a valid SenML name (letters, digits and - : . / _, starting with a letter or digit)", where, c.Name)
			case seen[c.Name]:
				bad("%s: name %q is used twice", where, c.Name)
			}
			seen[c.Name] = true
			if strings.ContainsAny(c.Unit, " \t") {
				bad("%s: unit %q has spaces; use a SenML unit such as V, Cel or %%RH", where, c.Unit)
			}
		}
	case KindPulse:
		if s.Bus == "" {
			bad(`bus is missing: name the GPIO pin, e.g. "GPIO17"`)
		}
		if s.PulsesPerUnit < 0 {
			bad("pulses_per_unit %g is negative", s.PulsesPerUnit)
		}
		if s.Debounce < 0 {
			bad("debounce %s is negative", s.Debounce)
		}
		if strings.ContainsAny(s.Unit, " \t") {
			bad("unit %q has spaces; use a SenML unit such as count, l, m3 or Wh", s.Unit)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &SpecError{Kind: s.Kind, Name: s.Name, Err: errors.Join(errs...)}
}

// MetricNames returns the names of the measurements the sensor produces, in
// the order Sense returns them. It assumes s is valid.
func (s Spec) MetricNames() []string {
	var names []string
	switch s.Kind {
	case KindBME280:
		names = []string{"temperature", "humidity", "pressure"}
	case KindSHT3x:
		names = []string{"temperature", "humidity"}
	case KindMCP3008:
		for _, c := range s.Channels {
			names = append(names, c.Name)
		}
	case KindPulse:
		base := s.Name
		if base == "" {
			base = "pulses"
		}
		return []string{base, base + ".rate"}
	}
	if s.Name != "" {
		for i := range names {
			names[i] = s.Name + "." + names[i]
		}
	}
	return names
}

// ValidateAll validates every spec and checks that no two sensors produce
// a measurement of the same name. Each problem is a *SpecError with its
// 1-based Index; several are joined.
func ValidateAll(specs []Spec) error {
	var errs []error
	owner := map[string]int{} // metric name -> index of the first sensor
	for i, s := range specs {
		if err := s.Validate(); err != nil {
			var se *SpecError
			if errors.As(err, &se) {
				se.Index = i + 1
			}
			errs = append(errs, err)
			continue
		}
		for _, n := range s.MetricNames() {
			if j, dup := owner[n]; dup {
				o := specs[j]
				errs = append(errs, &SpecError{Index: i + 1, Kind: s.Kind, Name: s.Name,
					Err: fmt.Errorf("measurement %q is also produced by sensor %d (%s); give one of them a different name", n, j+1, label(o.Kind, o.Name))})
				continue
			}
			owner[n] = i
		}
	}
	return errors.Join(errs...)
}

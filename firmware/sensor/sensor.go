// Package sensor turns a configured sensor (a Spec) into named SenML
// measurements, whatever chip and bus it is on; the node runtime and the
// gateway agent sample through it.
//
// Open builds the driver that Spec.Kind names on the bus that a Buses
// implementation supplies: HostBuses for real hardware through periph's host
// drivers, or a simulator's buses with simulated chips. Kinds and their
// measurements (each name prefixed with Spec.Name + "." when Name is set):
//
//	bme280   temperature (Cel), humidity (%RH), pressure (Pa)   I²C, firmware/drivers/bme280
//	sht3x    temperature (Cel), humidity (%RH)                  I²C, firmware/drivers/sht3x
//	mcp3008  one measurement per Spec.Channels entry, named and  SPI, firmware/drivers/mcp3008
//	         scaled by it: value = volts·scale + offset
//	pulse    <name or "pulses">: the total (pulses ÷            GPIO, firmware/drivers/pulse
//	         pulses_per_unit) as a counter, with Sum set;
//	         <name or "pulses">.rate: units per second since
//	         the previous Sense (the unit's rate unit: l -> l/s,
//	         m3 -> m3/s, Wh -> W, count -> 1/s, ...)
//
// Units are SenML units (RFC 8428, RFC 8798). Names follow the SenML name
// rule ^[A-Za-z0-9][-:./_A-Za-z0-9]*$.
package sensor

import (
	"context"
	"fmt"
	"regexp"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
)

// Measurement is one value a sensor produced, named and with a SenML unit
// (RFC 8428 / RFC 8798 registry: "Cel", "Pa", "%RH", "V", "count", "m3",
// "W", "Wh"...).
type Measurement struct {
	Name  string
	Unit  string
	Value float64
	// Sum is set for counters: the SenML sum, the total since the sensor was
	// opened. Value then holds the same total, for consumers that only read
	// Value.
	Sum *float64
}

// Sensor is an opened sensor.
type Sensor interface {
	// Sense takes one sample of every measurement the sensor has.
	Sense(ctx context.Context) ([]Measurement, error)
	// String describes the sensor and where it is.
	String() string
	// Close stops the sensor (sleep mode, edge counting off). It leaves the
	// bus open: the Buses implementation owns it. Close is idempotent.
	Close() error
}

// Buses opens the buses a Spec names. Real hardware: HostBuses. The
// simulator supplies its own implementation with simulated chips.
type Buses interface {
	I2C(name string) (i2c.Bus, error)
	SPI(name string) (spi.Port, error)
	GPIO(name string) (gpio.PinIO, error)
}

// Sensor kinds, the values of Spec.Kind.
const (
	KindBME280  = "bme280"
	KindSHT3x   = "sht3x"
	KindMCP3008 = "mcp3008"
	KindPulse   = "pulse"
)

// nameRE is the SenML name rule (RFC 8428 section 4.5.1).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][-:./_A-Za-z0-9]*$`)

// Open validates s and opens the sensor it describes on b. ctx bounds the
// opening only; a pulse counter keeps counting until Close.
func Open(ctx context.Context, b Buses, s Spec) (Sensor, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, s.errorf("open: %w", err)
	}
	var sen Sensor
	var err error
	switch s.Kind {
	case KindBME280:
		sen, err = openBME280(b, s)
	case KindSHT3x:
		sen, err = openSHT3x(b, s)
	case KindMCP3008:
		sen, err = openMCP3008(b, s)
	case KindPulse:
		sen, err = openPulse(ctx, b, s)
	}
	if err != nil {
		return nil, &SpecError{Kind: s.Kind, Name: s.Name, Err: err}
	}
	return sen, nil
}

// label is how messages name a sensor: its kind and, if any, its name.
func label(kind, name string) string {
	switch {
	case name == "":
		return kind
	case kind == "":
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%s %q", kind, name)
}

// busName is how messages name a bus: "" is the default one.
func busName(bus string) string {
	if bus == "" {
		return "(default)"
	}
	return fmt.Sprintf("%q", bus)
}

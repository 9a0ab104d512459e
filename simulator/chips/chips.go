// Package chips simulates sensor chips behind periph's bus interfaces, so
// that the real firmware drivers run unchanged against values from a model.
//
// Each chip answers like the real part: register maps and calibration words
// (BME280), commands, CRCs and NACKs while busy (SHT3x), the bit-level SPI
// protocol (MCP3008), edges on a GPIO line (PulsePin). A chip reads true
// values from a Source (a *model.Device is one) at the times its Clock
// says, so a test or the fleet controls time; with Clock time.Now inside a
// testing/synctest bubble the drivers' sleeps and the chips' clock agree.
// Bus routes I²C transactions by address; Board hands buses out by name, as
// a node's configuration names them.
package chips

import (
	"errors"
	"time"
)

// Source supplies true values: the value of a metric at a time. A
// *model.Device implements it. Value must be safe for concurrent use.
type Source interface {
	Value(metric string, t time.Time) float64
}

// SourceFunc adapts a function to Source.
type SourceFunc func(metric string, t time.Time) float64

// Value calls f.
func (f SourceFunc) Value(metric string, t time.Time) float64 { return f(metric, t) }

// Clock tells a chip the time. Nil means time.Now.
type Clock func() time.Time

func (c Clock) orNow() Clock {
	if c == nil {
		return time.Now
	}
	return c
}

// Default metric names, those of the model's profiles.
const (
	MetricTemperature = "temperature"
	MetricHumidity    = "humidity"
	MetricPressure    = "pressure"
	MetricFlow        = "flow"
	// MCP3008 channel n reads MetricVoltagePrefix + n ("voltage0".."voltage7").
	MetricVoltagePrefix = "voltage"
)

// Errors. Bus and chip errors wrap them with details.
var (
	// ErrNACK means an I²C target did not acknowledge: nothing at the
	// address, a busy chip, or a command it refuses.
	ErrNACK = errors.New("chips: i2c NACK")
	// ErrClosed means the bus or port was closed.
	ErrClosed = errors.New("chips: closed")
	// ErrNotFound means the board has no bus or pin of that name.
	ErrNotFound = errors.New("chips: not found")
	// ErrAddressInUse means two targets were attached at one address.
	ErrAddressInUse = errors.New("chips: address in use")
	// ErrInputOnly is returned by Out and PWM on a PulsePin.
	ErrInputOnly = errors.New("chips: pulse pin is an input")
)

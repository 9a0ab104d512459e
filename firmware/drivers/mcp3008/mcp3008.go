// Package mcp3008 drives a Microchip MCP3008, an 8-channel 10-bit ADC on SPI.
//
// It follows the datasheet (DS21295) section 6.1 and figure 6-1 for 8-bit
// SPI transfers in mode 0: each conversion is one 3-byte transaction, out
// [0x01 (start bit), SGL/DIFF<<7 | D2 D1 D0<<4, 0x00] and in [_, _ _ _ _ _ 0
// B9 B8, B7..B0], so the result is (in[1]&0x03)<<8 | in[2], 0..1023.
// Single-ended inputs are channels 0..7; differential inputs are the eight
// pairs of table 5-2 (see ReadDiff). A code is VIN·1024/VREF.
//
// Limits: the clock must stay at or below 3.6 MHz (VDD = 5 V; 1.35 MHz at
// 2.7 V, the default); the driver does not check VDD.
package mcp3008

import (
	"errors"
	"fmt"
	"sync"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// Opts configures the converter. Zero fields take their defaults.
type Opts struct {
	VRef     float64          // volts on VREF; default 3.3
	MaxSpeed physic.Frequency // SPI clock; default 1.35 MHz, at most 3.6 MHz
}

// DefaultOpts holds the defaults.
var DefaultOpts = Opts{VRef: 3.3, MaxSpeed: 1350 * physic.KiloHertz}

// maxSpeed is the datasheet's fastest clock (VDD = 5 V).
const maxSpeed = 3600 * physic.KiloHertz

// Channels is the number of single-ended inputs and of differential pairs.
const Channels = 8

// ErrChannel means a channel or pair number outside 0..7.
var ErrChannel = errors.New("mcp3008: no such channel")

// Dev is a handle to one MCP3008.
type Dev struct {
	mu   sync.Mutex
	c    spi.Conn
	vref float64
}

// New connects to the converter on p in SPI mode 0 with 8-bit words.
func New(p spi.Port, opts *Opts) (*Dev, error) {
	o := DefaultOpts
	if opts != nil {
		if opts.VRef < 0 {
			return nil, fmt.Errorf("mcp3008: VRef %g V is negative", opts.VRef)
		}
		if opts.VRef > 0 {
			o.VRef = opts.VRef
		}
		if opts.MaxSpeed < 0 || opts.MaxSpeed > maxSpeed {
			return nil, fmt.Errorf("mcp3008: SPI speed %s is outside 0..%s", opts.MaxSpeed, maxSpeed)
		}
		if opts.MaxSpeed > 0 {
			o.MaxSpeed = opts.MaxSpeed
		}
	}
	c, err := p.Connect(o.MaxSpeed, spi.Mode0, 8)
	if err != nil {
		return nil, fmt.Errorf("mcp3008: connect %s: %w", p, err)
	}
	return &Dev{c: c, vref: o.VRef}, nil
}

// Read converts single-ended channel ch (0..7) and returns the code,
// 0..1023.
func (d *Dev) Read(ch int) (uint16, error) {
	if ch < 0 || ch >= Channels {
		return 0, fmt.Errorf("%w: %d (want 0..7)", ErrChannel, ch)
	}
	return d.convert(0x80 | byte(ch)<<4)
}

// ReadDiff converts differential pair pair (0..7) per datasheet table 5-2
// and returns the code, 0..1023: pair 0 is CH0+ CH1-, 1 is CH0- CH1+, 2 is
// CH2+ CH3-, 3 is CH2- CH3+, 4 is CH4+ CH5-, 5 is CH4- CH5+, 6 is CH6+ CH7-
// and 7 is CH6- CH7+. A negative difference reads 0.
func (d *Dev) ReadDiff(pair int) (uint16, error) {
	if pair < 0 || pair >= Channels {
		return 0, fmt.Errorf("%w: pair %d (want 0..7)", ErrChannel, pair)
	}
	return d.convert(byte(pair) << 4)
}

// Volts converts single-ended channel ch and returns code·VRef/1024.
func (d *Dev) Volts(ch int) (float64, error) {
	v, err := d.Read(ch)
	if err != nil {
		return 0, err
	}
	return d.ToVolts(v), nil
}

// ToVolts turns a code from Read or ReadDiff into volts: code·VRef/1024.
func (d *Dev) ToVolts(code uint16) float64 {
	return float64(code) * d.vref / 1024
}

func (d *Dev) convert(config byte) (uint16, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := []byte{0x01, config, 0x00}
	var r [3]byte
	if err := d.c.Tx(w, r[:]); err != nil {
		return 0, fmt.Errorf("mcp3008: transfer: %w", err)
	}
	return uint16(r[1]&0x03)<<8 | uint16(r[2]), nil
}

// Halt does nothing: the converter idles between conversions.
func (d *Dev) Halt() error { return nil }

// String names the device and where it is.
func (d *Dev) String() string {
	return fmt.Sprintf("MCP3008{%s}", d.c)
}

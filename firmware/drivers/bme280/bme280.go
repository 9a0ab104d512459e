// Package bme280 drives a Bosch BME280 temperature, pressure and humidity
// sensor over I²C.
//
// It follows the datasheet BST-BME280-DS002: New checks the chip id
// (register 0xD0 must read 0x60), reads the calibration blocks 0x88..0xA1
// and 0xE1..0xE7, then configures ctrl_hum (0xF2), ctrl_meas (0xF4, leaving
// the chip in sleep mode) and config (0xF5). Each Sense triggers one
// measurement in forced mode, waits the datasheet's maximum measurement time
// (appendix B), polls the status register (0xF3) until the measuring bit
// clears (a bounded number of times), burst-reads 0xF7..0xFE and compensates.
// Every register write is a single [register, value] transaction.
//
// Compensation uses the datasheet's fixed-point formulas (section 4.2.3): the
// int32 temperature formula, the int64 pressure formula and the int32
// humidity formula, exactly as Bosch's reference code computes them. They are
// exported as methods of Calibration (CompensateT, CompensateP, CompensateH),
// together with their inverses (RawT, RawP, RawH) and the register encoding
// (ParseCalibration, Calibration.Registers), so that a simulated chip can
// produce raw readings that this driver turns back into the wanted values.
//
// Limits: I²C only (no SPI), forced mode only (no normal mode with standby
// times), no soft reset. The BMP280 (chip id 0x56..0x58) has no humidity
// sensor and is rejected with ErrChipID.
package bme280

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
)

// DefaultAddr is the chip's address with SDO tied to ground; 0x77 is the
// alternative with SDO tied to VDDIO.
const DefaultAddr uint16 = 0x76

// AltAddr is the chip's address with SDO tied to VDDIO.
const AltAddr uint16 = 0x77

// Oversampling is the oversampling of one measurement (the osrs_t, osrs_p
// and osrs_h register fields). O1x..O16x carry the datasheet's field values
// 1..5. The zero value means the default, O1x, so that a zero Opts is valid;
// Off (skip the measurement, field value 0) is therefore a distinct value.
type Oversampling uint8

// Oversampling values.
const (
	O1x  Oversampling = 1
	O2x  Oversampling = 2
	O4x  Oversampling = 3
	O8x  Oversampling = 4
	O16x Oversampling = 5
	// Off skips the measurement; its value reads as NaN. Temperature cannot
	// be Off: pressure and humidity compensation need it.
	Off Oversampling = 0x80
)

// field returns the register field value: 0 (skipped) .. 5 (16x).
func (o Oversampling) field() uint8 {
	switch o {
	case 0:
		return uint8(O1x)
	case Off:
		return 0
	}
	return uint8(o)
}

// factor returns how many samples the chip takes: 0 when skipped.
func (o Oversampling) factor() int {
	f := o.field()
	if f == 0 {
		return 0
	}
	return 1 << (f - 1)
}

func (o Oversampling) valid() bool { return o <= O16x || o == Off }

func (o Oversampling) String() string {
	switch {
	case o == Off:
		return "Off"
	case o.valid():
		return fmt.Sprintf("%dx", o.factor())
	}
	return fmt.Sprintf("Oversampling(%d)", uint8(o))
}

// Filter is the IIR filter coefficient (the config register's filter field,
// datasheet values 0..4). The zero value is FilterOff.
type Filter uint8

// Filter values.
const (
	FilterOff Filter = 0
	F2        Filter = 1
	F4        Filter = 2
	F8        Filter = 3
	F16       Filter = 4
)

// Opts configures the chip. The zero value means 1x oversampling for each
// measurement and the filter off, the datasheet's recommendation for weather
// monitoring.
type Opts struct {
	Temperature Oversampling
	Pressure    Oversampling
	Humidity    Oversampling
	Filter      Filter
}

// DefaultOpts is used when New is given nil Opts.
var DefaultOpts = Opts{Temperature: O1x, Pressure: O1x, Humidity: O1x, Filter: FilterOff}

// Env is one compensated measurement. A measurement whose oversampling is
// Off is NaN.
type Env struct {
	Temperature float64 // °C
	Pressure    float64 // Pa
	Humidity    float64 // %RH
}

// Errors.
var (
	// ErrChipID means the device at the address is not a BME280.
	ErrChipID = errors.New("bme280: unexpected chip id")
	// ErrTimeout means the chip still reported a measurement in progress
	// after the datasheet's maximum time and a bounded number of polls.
	ErrTimeout = errors.New("bme280: measurement did not complete")
)

// Registers and values from the datasheet's memory map (section 5.3).
const (
	regCalib1   = 0x88
	regChipID   = 0xD0
	regCalib2   = 0xE1
	regCtrlHum  = 0xF2
	regStatus   = 0xF3
	regCtrlMeas = 0xF4
	regConfig   = 0xF5
	regData     = 0xF7

	chipID        = 0x60
	modeSleep     = 0x00
	modeForced    = 0x01
	statusMeasure = 0x08
)

// Polling after the maximum measurement time has elapsed.
const (
	maxPolls     = 10
	pollInterval = time.Millisecond
)

// Dev is a handle to one BME280.
type Dev struct {
	mu       sync.Mutex
	c        i2c.Dev
	opts     Opts
	cal      Calibration
	ctrlMeas byte          // ctrl_meas without the mode bits
	wait     time.Duration // maximum measurement time
}

// New checks that a BME280 answers at addr (0x76 or 0x77), reads its
// calibration and configures it from opts (nil means DefaultOpts), leaving
// it in sleep mode.
func New(bus i2c.Bus, addr uint16, opts *Opts) (*Dev, error) {
	if addr != DefaultAddr && addr != AltAddr {
		return nil, fmt.Errorf("bme280: address 0x%02x is not a BME280 address (0x76 or 0x77)", addr)
	}
	if opts == nil {
		opts = &DefaultOpts
	}
	o := *opts
	switch {
	case !o.Temperature.valid(), !o.Pressure.valid(), !o.Humidity.valid():
		return nil, fmt.Errorf("bme280: invalid oversampling %s/%s/%s (want O1x..O16x or Off)", o.Temperature, o.Pressure, o.Humidity)
	case o.Temperature == Off:
		return nil, errors.New("bme280: temperature oversampling cannot be Off: pressure and humidity compensation need the temperature")
	case o.Filter > F16:
		return nil, fmt.Errorf("bme280: invalid filter %d (want FilterOff..F16)", o.Filter)
	}
	d := &Dev{c: i2c.Dev{Bus: bus, Addr: addr}, opts: o}
	d.ctrlMeas = o.Temperature.field()<<5 | o.Pressure.field()<<2
	d.wait = measureTime(o)

	var id [1]byte
	if err := d.c.Tx([]byte{regChipID}, id[:]); err != nil {
		return nil, fmt.Errorf("bme280: read chip id at 0x%02x: %w", addr, err)
	}
	if id[0] != chipID {
		hint := ""
		if id[0] >= 0x56 && id[0] <= 0x58 {
			hint = " (a BMP280, which has no humidity sensor)"
		}
		return nil, fmt.Errorf("%w: found 0x%02x%s at 0x%02x, want 0x%02x", ErrChipID, id[0], hint, addr, chipID)
	}
	var b1 [26]byte
	var b2 [7]byte
	if err := d.c.Tx([]byte{regCalib1}, b1[:]); err != nil {
		return nil, fmt.Errorf("bme280: read calibration 0x88..0xA1: %w", err)
	}
	if err := d.c.Tx([]byte{regCalib2}, b2[:]); err != nil {
		return nil, fmt.Errorf("bme280: read calibration 0xE1..0xE7: %w", err)
	}
	d.cal = ParseCalibration(b1, b2)
	// ctrl_hum takes effect with the next ctrl_meas write; ctrl_meas in
	// sleep mode makes the chip honour the config write after it.
	for _, w := range [][]byte{
		{regCtrlHum, o.Humidity.field()},
		{regCtrlMeas, d.ctrlMeas | modeSleep},
		{regConfig, byte(o.Filter) << 2},
	} {
		if err := d.c.Tx(w, nil); err != nil {
			return nil, fmt.Errorf("bme280: write register 0x%02x: %w", w[0], err)
		}
	}
	return d, nil
}

// measureTime is the datasheet's maximum measurement time (appendix B):
// 1.25 ms + 2.3 ms per temperature sample + 2.3 ms per pressure and humidity
// sample plus 0.575 ms for each of them when enabled.
func measureTime(o Opts) time.Duration {
	us := 1250 + 2300*o.Temperature.factor()
	if n := o.Pressure.factor(); n > 0 {
		us += 2300*n + 575
	}
	if n := o.Humidity.factor(); n > 0 {
		us += 2300*n + 575
	}
	return time.Duration(us) * time.Microsecond
}

// Calibration returns the chip's calibration parameters.
func (d *Dev) Calibration() Calibration {
	return d.cal
}

// Sense takes one measurement in forced mode and stores it in e. On error, e
// is left untouched.
func (d *Dev) Sense(e *Env) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	// ctrl_hum is written before every measurement: a brown-out resets it
	// to "humidity skipped", and it only takes effect with the ctrl_meas
	// write that follows (datasheet 5.4.3). Because both are rewritten each
	// time, the data registers always hold a measurement that was asked
	// for, so 0x80000 / 0x8000 are ordinary raw values, never "skipped".
	if err := d.c.Tx([]byte{regCtrlHum, d.opts.Humidity.field()}, nil); err != nil {
		return fmt.Errorf("bme280: write ctrl_hum: %w", err)
	}
	if err := d.c.Tx([]byte{regCtrlMeas, d.ctrlMeas | modeForced}, nil); err != nil {
		return fmt.Errorf("bme280: start measurement: %w", err)
	}
	time.Sleep(d.wait)
	var status [1]byte
	for i := 0; ; i++ {
		if err := d.c.Tx([]byte{regStatus}, status[:]); err != nil {
			return fmt.Errorf("bme280: read status: %w", err)
		}
		if status[0]&statusMeasure == 0 {
			break
		}
		if i == maxPolls-1 {
			return fmt.Errorf("%w after %s and %d status polls", ErrTimeout, d.wait, maxPolls)
		}
		time.Sleep(pollInterval)
	}
	var b [8]byte
	if err := d.c.Tx([]byte{regData}, b[:]); err != nil {
		return fmt.Errorf("bme280: read data 0xF7..0xFE: %w", err)
	}
	adcP := int32(b[0])<<12 | int32(b[1])<<4 | int32(b[2])>>4
	adcT := int32(b[3])<<12 | int32(b[4])<<4 | int32(b[5])>>4
	adcH := int32(b[6])<<8 | int32(b[7])
	tFine, t := d.cal.CompensateT(adcT)
	p, h := math.NaN(), math.NaN()
	if d.opts.Temperature == Off {
		t = math.NaN() // t_fine still feeds P and H, as on the chip
	}
	if d.opts.Pressure != Off {
		p = d.cal.CompensateP(adcP, tFine)
	}
	if d.opts.Humidity != Off {
		h = d.cal.CompensateH(adcH, tFine)
	}
	*e = Env{Temperature: t, Pressure: p, Humidity: h}
	return nil
}

// Halt puts the chip in sleep mode. A later Sense wakes it again.
func (d *Dev) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.c.Tx([]byte{regCtrlMeas, d.ctrlMeas | modeSleep}, nil); err != nil {
		return fmt.Errorf("bme280: sleep: %w", err)
	}
	return nil
}

// String names the device and where it is.
func (d *Dev) String() string {
	return fmt.Sprintf("BME280{%s}", &d.c)
}

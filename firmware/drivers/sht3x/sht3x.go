// Package sht3x drives a Sensirion SHT3x-DIS (SHT30, SHT31, SHT35)
// temperature and humidity sensor over I²C.
//
// It follows the datasheet SHT3x-DIS (version 5 onwards): each Sense sends a
// single-shot measurement command with clock stretching disabled (0x2400,
// 0x240B or 0x2416 for high, medium or low repeatability), waits the
// datasheet's maximum measurement duration, then reads 6 bytes: temperature
// MSB, LSB, CRC, humidity MSB, LSB, CRC. While the sensor is still measuring
// it NACKs the read, so a failed read is retried a bounded number of times.
// Every 16-bit word is checked with the datasheet's CRC-8 (polynomial 0x31,
// init 0xFF); a mismatch is an error wrapping ErrCRC, never a reading.
// Conversion: T = -45 + 175·St/65535 °C, RH = 100·Srh/65535 %RH.
//
// New reads the status register (command 0xF32D, CRC-checked) to verify the
// sensor answers. Limits: no periodic mode, no heater, no alert limits.
package sht3x

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
)

// DefaultAddr is the sensor's address with ADDR tied low; 0x45 is the
// alternative with ADDR tied high.
const DefaultAddr uint16 = 0x44

// AltAddr is the sensor's address with ADDR tied high.
const AltAddr uint16 = 0x45

// Repeatability selects the single-shot measurement command: higher
// repeatability is less noisy and takes longer. The zero value is High.
type Repeatability uint8

// Repeatability values.
const (
	High   Repeatability = 0 // command 0x2400, up to 15.5 ms
	Medium Repeatability = 1 // command 0x240B, up to 6.5 ms
	Low    Repeatability = 2 // command 0x2416, up to 4.5 ms
)

func (r Repeatability) String() string {
	switch r {
	case High:
		return "High"
	case Medium:
		return "Medium"
	case Low:
		return "Low"
	}
	return fmt.Sprintf("Repeatability(%d)", uint8(r))
}

// single-shot commands with clock stretching disabled (datasheet table 9)
// and their maximum durations (table 4, the largest value across datasheet
// revisions).
var measure = [...]struct {
	cmd  [2]byte
	wait time.Duration
}{
	High:   {[2]byte{0x24, 0x00}, 15500 * time.Microsecond},
	Medium: {[2]byte{0x24, 0x0B}, 6500 * time.Microsecond},
	Low:    {[2]byte{0x24, 0x16}, 4500 * time.Microsecond},
}

// Opts configures the sensor. The zero value means High repeatability.
type Opts struct {
	Repeatability Repeatability
}

// DefaultOpts is used when New is given nil Opts.
var DefaultOpts = Opts{Repeatability: High}

// Env is one measurement.
type Env struct {
	Temperature float64 // °C
	Humidity    float64 // %RH
}

// Errors.
var (
	// ErrCRC means a word read from the sensor failed its CRC-8 check; the
	// error wrapping it says which word.
	ErrCRC = errors.New("sht3x: CRC mismatch")
	// ErrNotReady means the sensor kept NACKing the result read after the
	// datasheet's maximum measurement time and a bounded number of retries.
	ErrNotReady = errors.New("sht3x: measurement not ready")
)

// Reading the result: tries after the measurement time, and the pause
// between them.
const (
	readTries     = 5
	retryInterval = time.Millisecond
)

var cmdStatus = []byte{0xF3, 0x2D}

// Dev is a handle to one SHT3x.
type Dev struct {
	mu   sync.Mutex
	c    i2c.Dev
	opts Opts
}

// New checks that an SHT3x answers at addr (0x44 or 0x45) by reading its
// status register, and returns a handle configured by opts (nil means
// DefaultOpts).
func New(bus i2c.Bus, addr uint16, opts *Opts) (*Dev, error) {
	if addr != DefaultAddr && addr != AltAddr {
		return nil, fmt.Errorf("sht3x: address 0x%02x is not an SHT3x address (0x44 or 0x45)", addr)
	}
	if opts == nil {
		opts = &DefaultOpts
	}
	if opts.Repeatability > Low {
		return nil, fmt.Errorf("sht3x: invalid repeatability %d (want High, Medium or Low)", opts.Repeatability)
	}
	d := &Dev{c: i2c.Dev{Bus: bus, Addr: addr}, opts: *opts}
	if _, err := d.Status(); err != nil {
		return nil, err
	}
	return d, nil
}

// Status reads the status register (datasheet table 18): alert, heater,
// reset and checksum flags.
func (d *Dev) Status() (uint16, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.c.Tx(cmdStatus, nil); err != nil {
		return 0, fmt.Errorf("sht3x: status command at 0x%02x: %w", d.c.Addr, err)
	}
	var b [3]byte
	if err := d.c.Tx(nil, b[:]); err != nil {
		return 0, fmt.Errorf("sht3x: read status at 0x%02x: %w", d.c.Addr, err)
	}
	if err := check("status", b[:]); err != nil {
		return 0, err
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

// Sense takes one single-shot measurement and stores it in e. On error, e is
// left untouched.
func (d *Dev) Sense(e *Env) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := measure[d.opts.Repeatability]
	if err := d.c.Tx(m.cmd[:], nil); err != nil {
		return fmt.Errorf("sht3x: measurement command: %w", err)
	}
	time.Sleep(m.wait)
	var b [6]byte
	var err error
	for i := 0; i < readTries; i++ {
		if i > 0 {
			time.Sleep(retryInterval)
		}
		if err = d.c.Tx(nil, b[:]); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%w after %s and %d reads: %w", ErrNotReady, m.wait, readTries, err)
	}
	if err := check("temperature", b[0:3]); err != nil {
		return err
	}
	if err := check("humidity", b[3:6]); err != nil {
		return err
	}
	st := float64(uint16(b[0])<<8 | uint16(b[1]))
	srh := float64(uint16(b[3])<<8 | uint16(b[4]))
	*e = Env{
		Temperature: -45 + 175*st/65535,
		Humidity:    100 * srh / 65535,
	}
	return nil
}

// check verifies the CRC of one word: b is MSB, LSB, CRC.
func check(word string, b []byte) error {
	if got := CRC8(b[:2]); got != b[2] {
		return fmt.Errorf("%w in %s word 0x%02x%02x: sensor sent CRC 0x%02x, computed 0x%02x", ErrCRC, word, b[0], b[1], b[2], got)
	}
	return nil
}

// CRC8 is the datasheet's checksum (section 4.12): polynomial 0x31
// (x⁸+x⁵+x⁴+1), initial value 0xFF, no reflection, no final XOR.
// CRC8([]byte{0xBE, 0xEF}) is 0x92.
func CRC8(b []byte) byte {
	crc := byte(0xFF)
	for _, x := range b {
		crc ^= x
		for range 8 {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x31
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Halt does nothing: in single-shot mode the sensor sleeps between
// measurements by itself.
func (d *Dev) Halt() error { return nil }

// String names the device and where it is.
func (d *Dev) String() string {
	return fmt.Sprintf("SHT3x{%s}", &d.c)
}

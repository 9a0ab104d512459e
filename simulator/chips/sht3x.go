package chips

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/firmware/drivers/sht3x"
)

// SHT3x commands (datasheet SHT3x-DIS, section 4).
const (
	shtFetch      = 0xE000
	shtBreak      = 0x3093
	shtSoftReset  = 0x30A2
	shtHeaterOn   = 0x306D
	shtHeaterOff  = 0x3066
	shtStatus     = 0xF32D
	shtClearState = 0x3041
	shtART        = 0x2B32

	// Status register bits (datasheet table 18).
	shtStatusAlert   = 1 << 15
	shtStatusHeater  = 1 << 13
	shtStatusRHAlert = 1 << 11
	shtStatusTAlert  = 1 << 10
	shtStatusReset   = 1 << 4
	shtStatusCommand = 1 << 1

	// shtResetTime is how long the sensor is unreachable after a soft
	// reset (datasheet table 4, max 1.5 ms).
	shtResetTime = 1500 * time.Microsecond
)

// shtDuration is the maximum measurement duration per repeatability
// (datasheet table 4): high, medium, low.
var shtDuration = [3]time.Duration{15 * time.Millisecond, 6 * time.Millisecond, 4 * time.Millisecond}

// shtPeriodic maps periodic-mode commands to (period, repeatability).
var shtPeriodic = map[uint16]struct {
	period time.Duration
	rep    int
}{
	0x2032: {2 * time.Second, 0}, 0x2024: {2 * time.Second, 1}, 0x202F: {2 * time.Second, 2},
	0x2130: {time.Second, 0}, 0x2126: {time.Second, 1}, 0x212D: {time.Second, 2},
	0x2236: {500 * time.Millisecond, 0}, 0x2220: {500 * time.Millisecond, 1}, 0x222B: {500 * time.Millisecond, 2},
	0x2334: {250 * time.Millisecond, 0}, 0x2322: {250 * time.Millisecond, 1}, 0x2329: {250 * time.Millisecond, 2},
	0x2737: {100 * time.Millisecond, 0}, 0x2721: {100 * time.Millisecond, 1}, 0x272A: {100 * time.Millisecond, 2},
	shtART: {250 * time.Millisecond, 0},
}

// SHT3xOpts configures a simulated SHT3x. The zero value (or nil) means the
// default metric names.
type SHT3xOpts struct {
	// Metric names read from the Source; empty means MetricTemperature and
	// MetricHumidity.
	Temperature, Humidity string
}

// SHT3x simulates a Sensirion SHT3x-DIS on I²C. It is a Target; attach it
// to a Bus at 0x44 or 0x45.
//
// Commands are 2-byte writes. Single shot without clock stretching
// (0x2400, 0x240B, 0x2416) measures for the datasheet's maximum duration
// (15, 6, 4 ms): any transaction before it ends is NACKed, and afterwards a
// read returns temperature MSB, LSB, CRC, humidity MSB, LSB, CRC (CRC-8,
// polynomial 0x31, init 0xFF) once; a read with nothing to return is
// NACKed. Single shot with clock stretching (0x2C06, 0x2C0D, 0x2C10)
// returns the measurement on the next read at once, as if the clock had
// been stretched. Periodic mode (0x20xx..0x27xx, ART 0x2B32), fetch data
// (0xE000) and break (0x3093) are supported, as are status (0xF32D, 2 bytes
// + CRC), clear status (0x3041), soft reset (0x30A2: unreachable for
// 1.5 ms) and the heater flag (0x306D, 0x3066; it does not warm the
// reading). Unknown commands are NACKed and set the status's command bit.
//
// A measurement reads the Source when it starts: St = (T+45)·65535/175 and
// Srh = RH·65535/100, rounded and clamped to 16 bits; NaN reads 0xFFFF.
type SHT3x struct {
	mu     sync.Mutex
	src    Source
	clock  Clock
	mT, mH string

	status  uint16
	busyTil int64 // Unix ns: NACK everything before (measuring, resetting)

	out    [6]byte // what the next read returns
	outLen int     // 0: nothing to read (NACK)

	// Periodic mode.
	periodic    bool
	perStart    int64
	perPeriod   int64
	perDuration int64
	perFetched  int64 // index of the last fetched measurement, -1 for none

	corrupt int // corrupt the CRC of this many more reads
}

var _ Target = (*SHT3x)(nil)

// NewSHT3x returns a powered-on SHT3x (status 0x8010: alert pending, reset
// detected) reading values from src at the times clock gives.
func NewSHT3x(src Source, clock Clock, opts *SHT3xOpts) *SHT3x {
	var o SHT3xOpts
	if opts != nil {
		o = *opts
	}
	c := &SHT3x{src: src, clock: clock.orNow(), mT: o.Temperature, mH: o.Humidity}
	if c.mT == "" {
		c.mT = MetricTemperature
	}
	if c.mH == "" {
		c.mH = MetricHumidity
	}
	c.reset()
	return c
}

func (c *SHT3x) reset() {
	c.status = shtStatusAlert | shtStatusReset
	c.outLen = 0
	c.periodic = false
}

// PowerCycle simulates a brown-out: the sensor is unreachable for its
// power-up time (1 ms) and comes back in its power-on state (status
// 0x8010, single shot mode, nothing to read).
func (c *SHT3x) PowerCycle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	c.busyTil = c.clock().UnixNano() + int64(time.Millisecond)
}

// CorruptCRC makes the next n reads carry a wrong CRC in their first word,
// as a noisy bus would.
func (c *SHT3x) CorruptCRC(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corrupt = n
}

// Tx implements Target.
func (c *SHT3x) Tx(w, r []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock().UnixNano()
	if now < c.busyTil {
		return fmt.Errorf("%w: sht3x busy for %s", ErrNACK, time.Duration(c.busyTil-now))
	}
	switch len(w) {
	case 0:
	case 2:
		if err := c.command(uint16(w[0])<<8|uint16(w[1]), now); err != nil {
			return err
		}
		if c.busyTil > now && len(r) > 0 {
			return fmt.Errorf("%w: sht3x read while measuring", ErrNACK)
		}
	default:
		// Commands with data (alert limits) are not simulated.
		c.status |= shtStatusCommand
		return fmt.Errorf("%w: sht3x: unsupported %d-byte write", ErrNACK, len(w))
	}
	if len(r) == 0 {
		return nil
	}
	if c.outLen == 0 {
		return fmt.Errorf("%w: sht3x has no data to read", ErrNACK)
	}
	n := copy(r, c.out[:c.outLen])
	for i := n; i < len(r); i++ {
		r[i] = 0xFF // the bus idles high
	}
	if c.corrupt > 0 {
		c.corrupt--
		r[min(2, len(r)-1)] ^= 0xA5
	}
	c.outLen = 0
	return nil
}

func (c *SHT3x) command(cmd uint16, now int64) error {
	if c.periodic {
		switch cmd {
		case shtFetch:
			c.fetch(now)
			return nil
		case shtBreak:
			c.periodic = false
			c.outLen = 0
			return nil
		case shtSoftReset, shtStatus, shtClearState, shtHeaterOn, shtHeaterOff:
		default:
			c.status |= shtStatusCommand
			return fmt.Errorf("%w: sht3x: command 0x%04X in periodic mode (send break 0x3093 first)", ErrNACK, cmd)
		}
	}
	c.status &^= shtStatusCommand
	switch cmd {
	case 0x2400, 0x240B, 0x2416: // single shot, no clock stretching
		rep := 0 // high
		switch cmd {
		case 0x240B:
			rep = 1
		case 0x2416:
			rep = 2
		}
		c.sample(now)
		c.busyTil = now + int64(shtDuration[rep])
	case 0x2C06, 0x2C0D, 0x2C10: // single shot, clock stretching
		c.sample(now)
	case shtStatus:
		c.out[0], c.out[1] = byte(c.status>>8), byte(c.status)
		c.out[2] = sht3x.CRC8(c.out[0:2])
		c.outLen = 3
	case shtClearState:
		c.status &^= shtStatusAlert | shtStatusRHAlert | shtStatusTAlert | shtStatusReset
	case shtSoftReset:
		c.reset()
		c.busyTil = now + int64(shtResetTime)
	case shtHeaterOn:
		c.status |= shtStatusHeater
	case shtHeaterOff:
		c.status &^= shtStatusHeater
	case shtFetch, shtBreak: // not in periodic mode: nothing to do
		c.outLen = 0
	default:
		p, ok := shtPeriodic[cmd]
		if !ok {
			c.status |= shtStatusCommand
			return fmt.Errorf("%w: sht3x: unknown command 0x%04X", ErrNACK, cmd)
		}
		c.periodic = true
		c.perStart, c.perPeriod = now, int64(p.period)
		c.perDuration = int64(shtDuration[p.rep])
		c.perFetched = -1
		c.outLen = 0
	}
	return nil
}

// fetch loads the latest periodic measurement not fetched yet, if any.
func (c *SHT3x) fetch(now int64) {
	c.outLen = 0
	elapsed := now - c.perStart - c.perDuration
	if elapsed < 0 {
		return
	}
	k := elapsed / c.perPeriod
	if k <= c.perFetched {
		return
	}
	c.perFetched = k
	c.sample(c.perStart + k*c.perPeriod)
}

// sample measures the Source at ns into the output buffer.
func (c *SHT3x) sample(ns int64) {
	at := time.Unix(0, ns)
	st := shtWord(c.src.Value(c.mT, at), 45, 175)
	srh := shtWord(c.src.Value(c.mH, at), 0, 100)
	c.out = [6]byte{byte(st >> 8), byte(st), 0, byte(srh >> 8), byte(srh), 0}
	c.out[2] = sht3x.CRC8(c.out[0:2])
	c.out[5] = sht3x.CRC8(c.out[3:5])
	c.outLen = 6
}

// shtWord is round((v+offset)·65535/span) clamped to 16 bits.
func shtWord(v, offset, span float64) uint16 {
	if math.IsNaN(v) {
		return 0xFFFF
	}
	x := math.Round((v + offset) * 65535 / span)
	return uint16(min(max(x, 0), 65535))
}

package chips

import (
	"math"
	"sync"
	"time"
)

// BME280 registers and values (datasheet BST-BME280-DS002, section 5.3).
const (
	bmeRegCalib1   = 0x88
	bmeRegChipID   = 0xD0
	bmeRegReset    = 0xE0
	bmeRegCalib2   = 0xE1
	bmeRegCtrlHum  = 0xF2
	bmeRegStatus   = 0xF3
	bmeRegCtrlMeas = 0xF4
	bmeRegConfig   = 0xF5
	bmeRegData     = 0xF7

	bmeChipID        = 0x60
	bmeResetCmd      = 0xB6
	bmeStatusMeasure = 0x08
	bmeSkipped20     = 0x80000
	bmeSkipped16     = 0x8000
	bmeMax20         = 1<<20 - 1
	// normalCatchUp bounds the conversions materialised at once in normal
	// mode; older ones have no visible effect through the IIR filter.
	normalCatchUp = 64
)

// BME280Opts configures a simulated BME280. The zero value (or nil) means
// DefaultBME280Calibration and the default metric names.
type BME280Opts struct {
	Calibration *BME280Calibration
	// Metric names read from the Source; empty means MetricTemperature,
	// MetricPressure and MetricHumidity.
	Temperature, Pressure, Humidity string
}

// BME280 simulates a Bosch BME280 on I²C: chip id 0x60, calibration
// registers, ctrl_hum/ctrl_meas/config, status and the data registers
// 0xF7..0xFE. It is a Target; attach it to a Bus at 0x76 or 0x77.
//
// Behaviour follows the datasheet: after power-on or a soft reset (0xB6 to
// 0xE0) the chip sleeps with data registers at 0x80000/0x8000; ctrl_hum
// takes effect at the next ctrl_meas write; forced mode measures once and
// returns to sleep; normal mode measures every t_measure + t_standby;
// status bit 3 is set while measuring, for the datasheet's typical
// measurement time; a skipped measurement reads 0x80000 (0x8000 for
// humidity); with the IIR filter off, temperature and pressure have 16 +
// (osrs − 1) bits of resolution, with it on 20 bits, filtered by
// (old·(c−1) + new)/c. Register writes are [register, value] pairs; a
// trailing register byte sets the read pointer, and reads auto-increment.
//
// A measurement reads the Source at the moment it starts and produces the
// raw readings that the datasheet's compensation turns back into those
// values (see BME280Calibration). A NaN value reads as a skipped one.
// Limits: no SPI, no NVM-copy delay (status bit 0 stays 0).
type BME280 struct {
	mu         sync.Mutex
	src        Source
	clock      Clock
	cal        BME280Calibration
	calib1     [26]byte
	calib2     [7]byte
	mT, mP, mH string

	ptr      byte
	ctrlHum  byte // as written
	osrsH    byte // in effect
	ctrlMeas byte // as written; mode bits read back 00 after a forced measurement
	config   byte
	data     [8]byte // 0xF7..0xFE

	// Forced mode: a measurement in progress.
	forced             bool
	measStart, measEnd int64 // Unix ns

	// Normal mode: measurement k starts at normalStart + k·period.
	normalStart     int64
	normalDone      int64 // index of the last measurement in data, -1 for none
	normalMeasuring bool

	// IIR filter state, in raw units.
	filtT, filtP           float64
	filtTValid, filtPValid bool
}

var _ Target = (*BME280)(nil)

// NewBME280 returns a powered-on BME280 reading values from src at the
// times clock gives.
func NewBME280(src Source, clock Clock, opts *BME280Opts) *BME280 {
	var o BME280Opts
	if opts != nil {
		o = *opts
	}
	c := &BME280{src: src, clock: clock.orNow(), cal: DefaultBME280Calibration,
		mT: o.Temperature, mP: o.Pressure, mH: o.Humidity}
	if o.Calibration != nil {
		c.cal = *o.Calibration
	}
	if c.mT == "" {
		c.mT = MetricTemperature
	}
	if c.mP == "" {
		c.mP = MetricPressure
	}
	if c.mH == "" {
		c.mH = MetricHumidity
	}
	c.calib1, c.calib2 = c.cal.registers()
	c.reset()
	return c
}

// PowerCycle simulates a brown-out: the chip comes back in its power-on
// state (sleep, control registers 0, data registers skipped), losing the
// driver's configuration.
func (c *BME280) PowerCycle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
}

// Calibration returns the chip's calibration words.
func (c *BME280) Calibration() BME280Calibration { return c.cal }

func (c *BME280) reset() {
	c.ptr = 0
	c.ctrlHum, c.osrsH, c.ctrlMeas, c.config = 0, 0, 0, 0
	c.forced, c.normalMeasuring = false, false
	c.filtTValid, c.filtPValid = false, false
	c.setData(bmeSkipped20, bmeSkipped20, bmeSkipped16)
}

// Tx implements Target.
func (c *BME280) Tx(w, r []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock().UnixNano()
	c.update(now)
	for len(w) >= 2 {
		c.write(w[0], w[1], now)
		w = w[2:]
	}
	if len(w) == 1 {
		c.ptr = w[0]
	}
	for i := range r {
		r[i] = c.read(c.ptr)
		c.ptr++
	}
	return nil
}

func (c *BME280) read(reg byte) byte {
	switch {
	case reg >= bmeRegCalib1 && reg < bmeRegCalib1+26:
		return c.calib1[reg-bmeRegCalib1]
	case reg >= bmeRegCalib2 && reg < bmeRegCalib2+7:
		return c.calib2[reg-bmeRegCalib2]
	case reg >= bmeRegData:
		return c.data[reg-bmeRegData]
	}
	switch reg {
	case bmeRegChipID:
		return bmeChipID
	case bmeRegCtrlHum:
		return c.ctrlHum
	case bmeRegStatus:
		if c.forced || (c.ctrlMeas&0x03 == 0x03 && c.normalMeasuring) {
			return bmeStatusMeasure
		}
		return 0
	case bmeRegCtrlMeas:
		return c.ctrlMeas
	case bmeRegConfig:
		return c.config
	}
	return 0 // reset register and reserved addresses
}

func (c *BME280) write(reg, v byte, now int64) {
	switch reg {
	case bmeRegReset:
		if v == bmeResetCmd {
			c.reset()
		}
	case bmeRegCtrlHum:
		c.ctrlHum = v & 0x07
	case bmeRegConfig:
		c.config = v &^ 0x02 // bit 1 is reserved
	case bmeRegCtrlMeas:
		c.ctrlMeas = v
		c.osrsH = c.ctrlHum & 0x07
		switch v & 0x03 {
		case 0x01, 0x02: // forced
			c.forced = true
			c.measStart = now
			c.measEnd = now + int64(c.measureTime())
		case 0x03: // normal
			c.forced = false
			c.normalStart = now
			c.normalDone = -1
		default: // sleep; a forced measurement in progress completes
		}
	}
	// The other registers are read-only.
}

// update completes measurements whose time has come.
func (c *BME280) update(now int64) {
	if c.forced && now >= c.measEnd {
		c.forced = false
		c.measure(c.measStart)
		c.ctrlMeas &^= 0x03 // back to sleep
	}
	if c.ctrlMeas&0x03 != 0x03 {
		return
	}
	tm := int64(c.measureTime())
	period := tm + int64(c.standby())
	elapsed := now - c.normalStart
	c.normalMeasuring = elapsed%period < tm
	last := (elapsed - tm) / period // last completed measurement
	if elapsed < tm || last <= c.normalDone {
		return
	}
	for k := max(c.normalDone+1, last-normalCatchUp+1); k <= last; k++ {
		c.measure(c.normalStart + k*period)
	}
	c.normalDone = last
}

// osrsFactor maps an osrs field to its number of samples (0 = skipped).
func osrsFactor(f byte) int {
	if f == 0 {
		return 0
	}
	return 1 << (min(f, 5) - 1)
}

// measureTime is the datasheet's typical measurement time (appendix B):
// 1 ms + 2 ms per temperature sample + 2 ms per pressure and humidity
// sample + 0.5 ms each when enabled.
func (c *BME280) measureTime() time.Duration {
	us := 1000 + 2000*osrsFactor(c.ctrlMeas>>5&7)
	if n := osrsFactor(c.ctrlMeas >> 2 & 7); n > 0 {
		us += 2000*n + 500
	}
	if n := osrsFactor(c.osrsH); n > 0 {
		us += 2000*n + 500
	}
	return time.Duration(us) * time.Microsecond
}

// standby is t_standby of the config register (datasheet table 27).
func (c *BME280) standby() time.Duration {
	return [8]time.Duration{
		500 * time.Microsecond, 62500 * time.Microsecond, 125 * time.Millisecond, 250 * time.Millisecond,
		500 * time.Millisecond, time.Second, 10 * time.Millisecond, 20 * time.Millisecond,
	}[c.config>>5]
}

// measure runs one measurement sampling the Source at ns and stores the raw
// readings in the data registers.
func (c *BME280) measure(ns int64) {
	at := time.Unix(0, ns)
	osT, osP := c.ctrlMeas>>5&7, c.ctrlMeas>>2&7
	filter := c.config >> 2 & 7
	coef := 1.0
	if filter > 0 {
		coef = float64(int(1) << min(filter, 4))
	}
	// Resolution of temperature and pressure: 20 bits with the filter,
	// else 16 + (osrs − 1).
	shift := func(osrs byte) uint {
		if filter > 0 {
			return 0
		}
		return uint(5 - min(osrs, 5))
	}
	adcT, adcP, adcH := int32(bmeSkipped20), int32(bmeSkipped20), int32(bmeSkipped16)
	tv := c.src.Value(c.mT, at)
	if osT == 0 || math.IsNaN(tv) {
		c.setData(adcP, adcT, adcH)
		return
	}
	adcT = c.cal.rawT(tv, shift(osT), bmeMax20)
	tFine := c.cal.tFine(adcT)
	if osP != 0 {
		if pv := c.src.Value(c.mP, at); !math.IsNaN(pv) {
			adcP = c.cal.rawP(pv, tFine, shift(osP), bmeMax20)
		}
	}
	if c.osrsH != 0 {
		if hv := c.src.Value(c.mH, at); !math.IsNaN(hv) {
			adcH = c.cal.rawH(hv, tFine)
		}
	}
	if filter > 0 {
		// The filter starts from the first measurement after a reset.
		if !c.filtTValid {
			c.filtT, c.filtTValid = float64(adcT), true
		}
		c.filtT = (c.filtT*(coef-1) + float64(adcT)) / coef
		adcT = int32(math.Round(c.filtT))
		if adcP != bmeSkipped20 {
			if !c.filtPValid {
				c.filtP, c.filtPValid = float64(adcP), true
			}
			c.filtP = (c.filtP*(coef-1) + float64(adcP)) / coef
			adcP = int32(math.Round(c.filtP))
		}
	}
	c.setData(adcP, adcT, adcH)
}

func (c *BME280) setData(adcP, adcT, adcH int32) {
	c.data = [8]byte{
		byte(adcP >> 12), byte(adcP >> 4), byte(adcP<<4) & 0xF0,
		byte(adcT >> 12), byte(adcT >> 4), byte(adcT<<4) & 0xF0,
		byte(adcH >> 8), byte(adcH),
	}
}

package bme280

import "encoding/binary"

// Calibration holds the factory trimming parameters of one chip, named as in
// the datasheet (T1 is dig_T1, H4 is dig_H4, ...).
//
// The chip stores them in two register blocks: 0x88..0xA1 (26 bytes: T1..P9,
// one reserved byte at 0xA0, H1 at 0xA1) and 0xE1..0xE7 (7 bytes: H2..H6,
// with H4 and H5 packed as 12-bit signed values sharing register 0xE5).
// ParseCalibration decodes those bytes; Registers encodes them back, which
// is what a simulated chip needs.
type Calibration struct {
	T1 uint16
	T2 int16
	T3 int16

	P1 uint16
	P2 int16
	P3 int16
	P4 int16
	P5 int16
	P6 int16
	P7 int16
	P8 int16
	P9 int16

	H1 uint8
	H2 int16
	H3 uint8
	H4 int16 // 12-bit signed: -2048..2047
	H5 int16 // 12-bit signed: -2048..2047
	H6 int8
}

// ParseCalibration decodes the calibration registers: b1 is the content of
// 0x88..0xA1 and b2 the content of 0xE1..0xE7, as read by burst reads.
func ParseCalibration(b1 [26]byte, b2 [7]byte) Calibration {
	le := binary.LittleEndian
	s := func(i int) int16 { return int16(le.Uint16(b1[i:])) }
	return Calibration{
		T1: le.Uint16(b1[0:]),
		T2: s(2),
		T3: s(4),
		P1: le.Uint16(b1[6:]),
		P2: s(8),
		P3: s(10),
		P4: s(12),
		P5: s(14),
		P6: s(16),
		P7: s(18),
		P8: s(20),
		P9: s(22),
		// b1[24] is register 0xA0, reserved.
		H1: b1[25],
		H2: int16(le.Uint16(b2[0:])),
		H3: b2[2],
		// 0xE4 holds H4[11:4], 0xE5[3:0] holds H4[3:0]; 0xE6 holds H5[11:4],
		// 0xE5[7:4] holds H5[3:0]. The upper byte carries the sign.
		H4: int16(int8(b2[3]))<<4 | int16(b2[4]&0x0F),
		H5: int16(int8(b2[5]))<<4 | int16(b2[4]>>4),
		H6: int8(b2[6]),
	}
}

// Registers encodes c as the chip stores it: b1 for 0x88..0xA1 and b2 for
// 0xE1..0xE7. It is the inverse of ParseCalibration for H4 and H5 within
// their 12-bit range; the reserved byte 0xA0 is zero.
func (c *Calibration) Registers() (b1 [26]byte, b2 [7]byte) {
	le := binary.LittleEndian
	for i, v := range []uint16{
		c.T1, uint16(c.T2), uint16(c.T3),
		c.P1, uint16(c.P2), uint16(c.P3), uint16(c.P4), uint16(c.P5),
		uint16(c.P6), uint16(c.P7), uint16(c.P8), uint16(c.P9),
	} {
		le.PutUint16(b1[2*i:], v)
	}
	b1[25] = c.H1
	le.PutUint16(b2[0:], uint16(c.H2))
	b2[2] = c.H3
	b2[3] = byte(c.H4 >> 4)
	b2[4] = byte(c.H4&0x0F) | byte(c.H5&0x0F)<<4
	b2[5] = byte(c.H5 >> 4)
	b2[6] = byte(c.H6)
	return b1, b2
}

// CompensateT converts a raw 20-bit temperature reading with the datasheet's
// int32 formula (BST-BME280-DS002 section 4.2.3). It returns t_fine, which
// CompensateP and CompensateH need, and the temperature in °C with the
// formula's 0.01 °C resolution.
func (c *Calibration) CompensateT(adcT int32) (tFine int32, degC float64) {
	t1, t2, t3 := int32(c.T1), int32(c.T2), int32(c.T3)
	var1 := (((adcT >> 3) - (t1 << 1)) * t2) >> 11
	x := (adcT >> 4) - t1
	var2 := (((x * x) >> 12) * t3) >> 14
	tFine = var1 + var2
	t := (tFine*5 + 128) >> 8
	return tFine, float64(t) / 100
}

// CompensateP converts a raw 20-bit pressure reading with the datasheet's
// int64 formula. tFine comes from CompensateT on the temperature reading of
// the same measurement. The result is in Pa with 1/256 Pa resolution (the
// formula's Q24.8 output); it is 0 for a calibration that would divide by 0.
func (c *Calibration) CompensateP(adcP, tFine int32) float64 {
	return float64(uint32(c.compensateP(adcP, tFine))) / 256
}

// compensateP is the int64 formula before its final conversion to uint32,
// which wraps for readings far outside the physical range. simulator/chips
// keeps its own copy of the datasheet formulas on purpose, to test these.
func (c *Calibration) compensateP(adcP, tFine int32) int64 {
	var1 := int64(tFine) - 128000
	var2 := var1 * var1 * int64(c.P6)
	var2 += (var1 * int64(c.P5)) << 17
	var2 += int64(c.P4) << 35
	var1 = ((var1 * var1 * int64(c.P3)) >> 8) + ((var1 * int64(c.P2)) << 12)
	var1 = ((int64(1) << 47) + var1) * int64(c.P1) >> 33
	if var1 == 0 {
		return 0
	}
	p := 1048576 - int64(adcP)
	p = (((p << 31) - var2) * 3125) / var1
	var1 = (int64(c.P9) * (p >> 13) * (p >> 13)) >> 25
	var2 = (int64(c.P8) * p) >> 19
	return ((p + var1 + var2) >> 8) + (int64(c.P7) << 4)
}

// CompensateH converts a raw 16-bit humidity reading with the datasheet's
// int32 formula. tFine comes from CompensateT on the temperature reading of
// the same measurement. The result is in %RH, clamped to 0..100 by the
// formula, with 1/1024 %RH resolution (the formula's Q22.10 output).
func (c *Calibration) CompensateH(adcH, tFine int32) float64 {
	h1, h2, h3 := int32(c.H1), int32(c.H2), int32(c.H3)
	h4, h5, h6 := int32(c.H4), int32(c.H5), int32(c.H6)
	v := tFine - 76800
	v = ((((adcH << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15) *
		(((((((v*h6)>>10)*(((v*h3)>>11)+32768))>>10)+2097152)*h2 + 8192) >> 14)
	v -= ((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4
	v = max(v, 0)
	v = min(v, 419430400)
	return float64(uint32(v)>>12) / 1024
}

// Raw readings are 20 bits (temperature, pressure) or 16 bits (humidity).
const (
	maxRaw20 = 1<<20 - 1
	maxRaw16 = 1<<16 - 1
)

// RawT returns the raw temperature reading whose compensated value is
// closest to degC: the inverse of CompensateT, for simulated chips. The
// result is clamped to the 20-bit range.
func (c *Calibration) RawT(degC float64) int32 {
	return invert(maxRaw20, degC, func(adc int32) float64 {
		_, t := c.CompensateT(adc)
		return t
	})
}

// RawP returns the raw pressure reading whose compensated value (with this
// tFine) is closest to pa: the inverse of CompensateP, for simulated chips.
func (c *Calibration) RawP(pa float64, tFine int32) int32 {
	return invert(maxRaw20, pa, func(adc int32) float64 { return float64(c.compensateP(adc, tFine)) / 256 })
}

// RawH returns the raw humidity reading whose compensated value (with this
// tFine) is closest to rh: the inverse of CompensateH, for simulated chips.
func (c *Calibration) RawH(rh float64, tFine int32) int32 {
	return invert(maxRaw16, rh, func(adc int32) float64 { return c.CompensateH(adc, tFine) })
}

// invert finds by bisection the adc in 0..hi whose f(adc) is closest to want.
// f must be monotonic over 0..hi, rising or falling; the compensation
// formulas are, for the calibrations chips ship with.
func invert(hi int32, want float64, f func(int32) float64) int32 {
	lo := int32(0)
	rising := f(hi) >= f(lo)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if (f(mid) < want) == rising {
			lo = mid
		} else {
			hi = mid
		}
	}
	if abs(f(lo)-want) <= abs(f(hi)-want) {
		return lo
	}
	return hi
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

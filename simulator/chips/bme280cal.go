package chips

import "encoding/binary"

// BME280Calibration is the factory trimming of one simulated BME280, named
// as in the datasheet (T1 is dig_T1, ...). The chip serves it from
// registers 0x88..0xA1 and 0xE1..0xE7 and uses it, through the datasheet's
// fixed-point compensation formulas, to turn true values into raw readings.
//
// This package implements those formulas itself rather than importing the
// driver's, so that the driver is tested against an independent
// implementation of the datasheet.
type BME280Calibration struct {
	T1                             uint16
	T2, T3                         int16
	P1                             uint16
	P2, P3, P4, P5, P6, P7, P8, P9 int16
	H1                             uint8
	H2                             int16
	H3                             uint8
	H4, H5                         int16 // 12-bit signed: -2048..2047
	H6                             int8
}

// DefaultBME280Calibration is a realistic calibration: the temperature and
// pressure words of the datasheet's worked example, humidity words as a
// real part carries them.
var DefaultBME280Calibration = BME280Calibration{
	T1: 27504, T2: 26435, T3: -1000,
	P1: 36477, P2: -10685, P3: 3024, P4: 2855, P5: 140, P6: -7, P7: 15500, P8: -14600, P9: 6000,
	H1: 75, H2: 362, H3: 0, H4: 324, H5: 50, H6: 30,
}

// PerturbedBME280Calibration returns DefaultBME280Calibration with every
// word moved by a few percent, deterministically from seed, the way parts
// differ from one another. The result keeps the formulas monotonic.
func PerturbedBME280Calibration(seed uint64) BME280Calibration {
	c := DefaultBME280Calibration
	x := seed
	// d returns a deviation in [-span, span].
	d := func(span int) int {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		return int(z%uint64(2*span+1)) - span
	}
	c.T1 = uint16(int(c.T1) + d(800))
	c.T2 = int16(int(c.T2) + d(500))
	c.T3 = int16(int(c.T3) + d(30))
	c.P1 = uint16(int(c.P1) + d(800))
	c.P2 = int16(int(c.P2) + d(200))
	c.P3 = int16(int(c.P3) + d(60))
	c.P4 = int16(int(c.P4) + d(500))
	c.P5 = int16(int(c.P5) + d(20))
	c.P6 = int16(int(c.P6) + d(2))
	c.P7 = int16(int(c.P7) + d(300))
	c.P8 = int16(int(c.P8) + d(300))
	c.P9 = int16(int(c.P9) + d(200))
	c.H1 = uint8(int(c.H1) + d(5))
	c.H2 = int16(int(c.H2) + d(10))
	c.H3 = uint8(d(1) + 1)
	c.H4 = int16(int(c.H4) + d(15))
	c.H5 = int16(int(c.H5) + d(5))
	c.H6 = int8(int(c.H6) + d(3))
	return c
}

// registers encodes c as the chip stores it: 0x88..0xA1 and 0xE1..0xE7
// (datasheet table 16). 0xA0 is reserved and reads 0.
func (c *BME280Calibration) registers() (b1 [26]byte, b2 [7]byte) {
	le := binary.LittleEndian
	words := [12]uint16{c.T1, uint16(c.T2), uint16(c.T3), c.P1, uint16(c.P2), uint16(c.P3),
		uint16(c.P4), uint16(c.P5), uint16(c.P6), uint16(c.P7), uint16(c.P8), uint16(c.P9)}
	for i, w := range words {
		le.PutUint16(b1[2*i:], w)
	}
	b1[25] = c.H1
	le.PutUint16(b2[0:], uint16(c.H2))
	b2[2] = c.H3
	b2[3] = byte(c.H4 >> 4)                      // 0xE4: H4[11:4]
	b2[4] = byte(c.H4&0x0F) | byte(c.H5&0x0F)<<4 // 0xE5: H5[3:0] H4[3:0]
	b2[5] = byte(c.H5 >> 4)                      // 0xE6: H5[11:4]
	b2[6] = byte(c.H6)
	return b1, b2
}

// tFine is the datasheet's BME280_compensate_T_int32 up to t_fine; the
// temperature in 0.01 °C is (t_fine·5 + 128) >> 8.
func (c *BME280Calibration) tFine(adcT int32) int32 {
	var1 := (((adcT >> 3) - (int32(c.T1) << 1)) * int32(c.T2)) >> 11
	var2 := (((((adcT >> 4) - int32(c.T1)) * ((adcT >> 4) - int32(c.T1))) >> 12) * int32(c.T3)) >> 14
	return var1 + var2
}

// centiC is the compensated temperature in 0.01 °C.
func centiC(tFine int32) int32 { return (tFine*5 + 128) >> 8 }

// pressureQ8 is the datasheet's BME280_compensate_P_int64: Pa in Q24.8.
// Like tFine and humidityQ10 it repeats the driver's formula on purpose:
// an independent copy is what lets the simulator catch driver bugs.
func (c *BME280Calibration) pressureQ8(adcP, tFine int32) uint32 {
	var1 := int64(tFine) - 128000
	var2 := var1 * var1 * int64(c.P6)
	var2 = var2 + ((var1 * int64(c.P5)) << 17)
	var2 = var2 + (int64(c.P4) << 35)
	var1 = ((var1 * var1 * int64(c.P3)) >> 8) + ((var1 * int64(c.P2)) << 12)
	var1 = (((int64(1) << 47) + var1) * int64(c.P1)) >> 33
	if var1 == 0 {
		return 0
	}
	p := 1048576 - int64(adcP)
	p = (((p << 31) - var2) * 3125) / var1
	var1 = (int64(c.P9) * (p >> 13) * (p >> 13)) >> 25
	var2 = (int64(c.P8) * p) >> 19
	p = ((p + var1 + var2) >> 8) + (int64(c.P7) << 4)
	return uint32(p)
}

// humidityQ10 is the datasheet's bme280_compensate_H_int32: %RH in Q22.10.
func (c *BME280Calibration) humidityQ10(adcH, tFine int32) uint32 {
	v := tFine - 76800
	v = ((((adcH << 14) - (int32(c.H4) << 20) - (int32(c.H5) * v)) + 16384) >> 15) *
		(((((((v*int32(c.H6))>>10)*(((v*int32(c.H3))>>11)+32768))>>10)+2097152)*int32(c.H2) + 8192) >> 14)
	v = v - (((((v >> 15) * (v >> 15)) >> 7) * int32(c.H1)) >> 4)
	if v < 0 {
		v = 0
	}
	if v > 419430400 {
		v = 419430400
	}
	return uint32(v >> 12)
}

// Raw reading search. A raw reading is searched on a grid of step 2^shift
// (the chip's resolution for the current settings) in 0..hi.

// rawT returns the raw temperature whose compensated value is closest to
// degC: first by the 0.01 °C result the driver reports, then by t_fine.
func (c *BME280Calibration) rawT(degC float64, shift uint, hi int32) int32 {
	want := degC * 5120 // t_fine units
	step := int32(1) << shift
	n := hi >> shift      // grid points 0..n
	lo, up := int32(0), n // t_fine rises with adc_T
	for lo < up {
		mid := lo + (up-lo)/2
		if float64(c.tFine(mid*step)) < want {
			lo = mid + 1
		} else {
			up = mid
		}
	}
	best, bestErr, bestFine := lo, 0.0, 0.0
	for k := max(lo-2, 0); k <= min(lo+2, n); k++ {
		tf := c.tFine(k * step)
		e := abs(float64(centiC(tf))/100 - degC)
		f := abs(float64(tf) - want)
		if k == max(lo-2, 0) || e < bestErr || (e == bestErr && f < bestFine) {
			best, bestErr, bestFine = k, e, f
		}
	}
	return best * step
}

// rawP returns the raw pressure whose compensated value is closest to pa.
func (c *BME280Calibration) rawP(pa float64, tFine int32, shift uint, hi int32) int32 {
	want := pa * 256
	step := int32(1) << shift
	n := hi >> shift
	lo, up := int32(0), n // pressure falls as adc_P rises
	for lo < up {
		mid := lo + (up-lo)/2
		if float64(c.pressureQ8(mid*step, tFine)) > want {
			lo = mid + 1
		} else {
			up = mid
		}
	}
	return nearest(lo, n, step, want, func(adc int32) float64 { return float64(c.pressureQ8(adc, tFine)) })
}

// rawH returns the raw humidity (16 bits) whose compensated value is
// closest to rh.
func (c *BME280Calibration) rawH(rh float64, tFine int32) int32 {
	want := rh * 1024
	lo, up := int32(0), int32(0xFFFF) // humidity rises with adc_H
	for lo < up {
		mid := lo + (up-lo)/2
		if float64(c.humidityQ10(mid, tFine)) < want {
			lo = mid + 1
		} else {
			up = mid
		}
	}
	return nearest(lo, 0xFFFF, 1, want, func(adc int32) float64 { return float64(c.humidityQ10(adc, tFine)) })
}

// nearest returns the grid point near k (0..n, times step) whose f is
// closest to want.
func nearest(k, n, step int32, want float64, f func(int32) float64) int32 {
	best, bestErr := int32(-1), 0.0
	for j := max(k-2, 0); j <= min(k+2, n); j++ {
		if e := abs(f(j*step) - want); best < 0 || e < bestErr {
			best, bestErr = j, e
		}
	}
	return best * step
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

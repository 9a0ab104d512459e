package bme280_test

import (
	"testing"

	"github.com/tributary-iot/tributary/firmware/drivers/bme280"
)

// FuzzCalibration feeds arbitrary register contents and raw readings: the
// decoder must round-trip and compensation must neither panic nor leave its
// documented ranges.
func FuzzCalibration(f *testing.F) {
	b1, b2 := datasheetCal.Registers()
	f.Add(b1[:], b2[:], int32(exampleAdcT), int32(exampleAdcP), int32(exampleAdcH))
	f.Add(make([]byte, 26), make([]byte, 7), int32(0), int32(0), int32(0))
	f.Fuzz(func(t *testing.T, r1, r2 []byte, adcT, adcP, adcH int32) {
		if len(r1) < 26 || len(r2) < 7 {
			return
		}
		var b1 [26]byte
		var b2 [7]byte
		copy(b1[:], r1)
		copy(b2[:], r2)
		c := bme280.ParseCalibration(b1, b2)
		g1, g2 := c.Registers()
		b1[24] = 0 // reserved register 0xA0 is not kept
		if g1 != b1 || g2 != b2 {
			t.Errorf("Registers(ParseCalibration(% x, % x)) = % x, % x", b1, b2, g1, g2)
		}
		// Raw readings are 20 and 16 bits wide.
		adcT &= 1<<20 - 1
		adcP &= 1<<20 - 1
		adcH &= 1<<16 - 1
		tFine, _ := c.CompensateT(adcT)
		_ = c.CompensateP(adcP, tFine)
		if h := c.CompensateH(adcH, tFine); h < 0 || h > 100 {
			t.Errorf("CompensateH = %v, outside 0..100", h)
		}
	})
}

package chips

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tributary-iot/tributary/firmware/drivers/bme280"
)

// The chip's compensation formulas are written from the datasheet
// independently of the driver's; they must agree on every input.
func TestCompensationMatchesDriver(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for seed := range uint64(20) {
		c := PerturbedBME280Calibration(seed)
		d := bme280.Calibration(c)
		for range 5000 {
			adcT, adcP, adcH := r.Int32N(1<<20), r.Int32N(1<<20), r.Int32N(1<<16)
			tf := c.tFine(adcT)
			dtf, degC := d.CompensateT(adcT)
			if tf != dtf || float64(centiC(tf))/100 != degC {
				t.Fatalf("cal %d adc_T %d: chip t_fine %d, driver %d %v", seed, adcT, tf, dtf, degC)
			}
			if got, want := float64(c.pressureQ8(adcP, tf))/256, d.CompensateP(adcP, tf); got != want {
				t.Fatalf("cal %d adc_P %d: chip %v Pa, driver %v", seed, adcP, got, want)
			}
			if got, want := float64(c.humidityQ10(adcH, tf))/1024, d.CompensateH(adcH, tf); got != want {
				t.Fatalf("cal %d adc_H %d: chip %v %%RH, driver %v", seed, adcH, got, want)
			}
		}
	}
}

// TestInversionAccuracy sweeps the physical ranges and reports the worst
// error of raw → compensated against the wanted value, per resolution.
func TestInversionAccuracy(t *testing.T) {
	for _, tc := range []struct {
		shift      uint // 4: 16 bits (1x, filter off) .. 0: 20 bits
		tolT, tolP float64
	}{{4, 0.0051, 1.6}, {3, 0.0051, 0.8}, {0, 0.0051, 0.1}} {
		var worstT, worstP, worstH float64
		for seed := range uint64(4) {
			c := PerturbedBME280Calibration(seed)
			for degC := -40.0; degC <= 85; degC += 0.0731 {
				adcT := c.rawT(degC, tc.shift, bmeMax20)
				worstT = max(worstT, math.Abs(float64(centiC(c.tFine(adcT)))/100-degC))
			}
			for _, degC := range []float64{-40, -10, 0, 15, 25, 40, 60, 85} {
				tf := c.tFine(c.rawT(degC, tc.shift, bmeMax20))
				for pa := 30_000.0; pa <= 110_000; pa += 197.3 {
					adcP := c.rawP(pa, tf, tc.shift, bmeMax20)
					worstP = max(worstP, math.Abs(float64(c.pressureQ8(adcP, tf))/256-pa))
				}
				for rh := 0.0; rh <= 100; rh += 0.77 {
					adcH := c.rawH(rh, tf)
					worstH = max(worstH, math.Abs(float64(c.humidityQ10(adcH, tf))/1024-rh))
				}
			}
		}
		t.Logf("%d-bit T/P: worst %.4f °C, %.3f Pa, %.4f %%RH", 20-tc.shift, worstT, worstP, worstH)
		if worstT > tc.tolT || worstP > tc.tolP || worstH > 0.01 {
			t.Errorf("%d-bit: worst %.4f °C, %.3f Pa, %.4f %%RH exceed %.4f, %.1f, 0.01", 20-tc.shift, worstT, worstP, worstH, tc.tolT, tc.tolP)
		}
	}
}

func BenchmarkInvert(b *testing.B) {
	c := DefaultBME280Calibration
	i := 0
	for b.Loop() {
		i++
		tf := c.tFine(c.rawT(20+float64(i%100)/10, 4, bmeMax20))
		_ = c.rawP(100000+float64(i%1000), tf, 4, bmeMax20)
		_ = c.rawH(50, tf)
	}
}

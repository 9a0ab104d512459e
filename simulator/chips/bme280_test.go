package chips_test

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/firmware/drivers/bme280"
	"github.com/tributary-iot/tributary/simulator/chips"
	"github.com/tributary-iot/tributary/simulator/model"
)

// rd reads n registers from reg.
func rd(t *testing.T, c chips.Target, reg byte, n int) []byte {
	t.Helper()
	r := make([]byte, n)
	if err := c.Tx([]byte{reg}, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func wr(t *testing.T, c chips.Target, regval ...byte) {
	t.Helper()
	if err := c.Tx(regval, nil); err != nil {
		t.Fatal(err)
	}
}

// raw decodes the data registers 0xF7..0xFE.
func raw(b []byte) (adcP, adcT, adcH int32) {
	return int32(b[0])<<12 | int32(b[1])<<4 | int32(b[2])>>4,
		int32(b[3])<<12 | int32(b[4])<<4 | int32(b[5])>>4,
		int32(b[6])<<8 | int32(b[7])
}

func TestBME280Registers(t *testing.T) {
	clk := newManualClock()
	c := chips.NewBME280(constant{"temperature": 21.5, "pressure": 100_000, "humidity": 40}, clk.Now, nil)

	if id := rd(t, c, 0xD0, 1); id[0] != 0x60 {
		t.Errorf("chip id 0x%02x, want 0x60", id[0])
	}
	// DefaultBME280Calibration encoded by hand from the datasheet's table
	// 16: little-endian words T1..P9, 0xA0 reserved, H1; then H2 (LE), H3,
	// 0xE4 = H4[11:4], 0xE5 = H5[3:0]<<4 | H4[3:0], 0xE6 = H5[11:4], H6.
	want1 := []byte{
		0x70, 0x6B, 0x43, 0x67, 0x18, 0xFC, // T1 27504, T2 26435, T3 -1000
		0x7D, 0x8E, 0x43, 0xD6, 0xD0, 0x0B, 0x27, 0x0B, 0x8C, 0x00, // P1 36477, P2 -10685, P3 3024, P4 2855, P5 140
		0xF9, 0xFF, 0x8C, 0x3C, 0xF8, 0xC6, 0x70, 0x17, // P6 -7, P7 15500, P8 -14600, P9 6000
		0x00, 0x4B, // reserved, H1 75
	}
	want2 := []byte{0x6A, 0x01, 0x00, 0x14, 0x24, 0x03, 0x1E} // H2 362, H3 0, H4 324, H5 50, H6 30
	if got := rd(t, c, 0x88, 26); !bytes.Equal(got, want1) {
		t.Errorf("0x88..0xA1 = % X\nwant        % X", got, want1)
	}
	if got := rd(t, c, 0xE1, 7); !bytes.Equal(got, want2) {
		t.Errorf("0xE1..0xE7 = % X\nwant        % X", got, want2)
	}
	// And the driver's decoder agrees with the chip's calibration.
	var b1 [26]byte
	var b2 [7]byte
	copy(b1[:], want1)
	copy(b2[:], want2)
	if got, want := bme280.ParseCalibration(b1, b2), chips.DefaultBME280Calibration; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("driver parses %+v, chip has %+v", got, want)
	}

	// Power-on: sleep, control registers 0, data registers at the skipped
	// values.
	if got := rd(t, c, 0xF2, 4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("ctrl_hum, status, ctrl_meas, config = % X, want zeros", got)
	}
	if got := rd(t, c, 0xF7, 8); !bytes.Equal(got, []byte{0x80, 0, 0, 0x80, 0, 0, 0x80, 0}) {
		t.Errorf("data after power-on = % X", got)
	}

	// Forced mode with 1x everywhere: 8 ms typical measurement.
	wr(t, c, 0xF2, 0x01, 0xF4, 0x25) // pairs in one write, as the datasheet allows
	if st := rd(t, c, 0xF3, 1); st[0] != 0x08 {
		t.Errorf("status during measurement 0x%02x, want 0x08", st[0])
	}
	if got := rd(t, c, 0xF7, 8); !bytes.Equal(got, []byte{0x80, 0, 0, 0x80, 0, 0, 0x80, 0}) {
		t.Errorf("data changed before the measurement ended: % X", got)
	}
	clk.Advance(7999 * time.Microsecond)
	if st := rd(t, c, 0xF3, 1); st[0] != 0x08 {
		t.Errorf("status at 7.999 ms 0x%02x, want 0x08", st[0])
	}
	clk.Advance(time.Microsecond)
	if st := rd(t, c, 0xF3, 2); st[0] != 0 || st[1] != 0x24 {
		t.Errorf("status, ctrl_meas after the measurement = % X, want 00 24 (back to sleep)", st)
	}
	adcP, adcT, adcH := raw(rd(t, c, 0xF7, 8))
	if adcT&0xF != 0 || adcP&0xF != 0 {
		t.Errorf("adc_T 0x%05X, adc_P 0x%05X: want 16-bit resolution (filter off, 1x)", adcT, adcP)
	}
	cal := bme280.Calibration(chips.DefaultBME280Calibration)
	tFine, degC := cal.CompensateT(adcT)
	if !near(degC, 21.5, 0.01) || !near(cal.CompensateP(adcP, tFine), 100_000, 1.5) || !near(cal.CompensateH(adcH, tFine), 40, 0.01) {
		t.Errorf("compensated %v °C %v Pa %v %%RH, want 21.5, 100000, 40", degC, cal.CompensateP(adcP, tFine), cal.CompensateH(adcH, tFine))
	}

	// Burst read from 0xF2 runs through ctrl_hum, status, ctrl_meas, config
	// and the reserved 0xF6 into the data: auto-increment.
	if got := rd(t, c, 0xF2, 6); got[0] != 1 || got[2] != 0x24 || got[4] != 0 || got[5] != byte(adcP>>12) {
		t.Errorf("burst from 0xF2 = % X", got)
	}

	// Reset: back to power-on state.
	wr(t, c, 0xE0, 0xB6)
	if got := rd(t, c, 0xF2, 4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("control registers after reset = % X", got)
	}
	if got := rd(t, c, 0xF7, 8); !bytes.Equal(got, []byte{0x80, 0, 0, 0x80, 0, 0, 0x80, 0}) {
		t.Errorf("data after reset = % X", got)
	}
	// Another value to 0xE0 is no reset.
	wr(t, c, 0xF2, 0x03)
	wr(t, c, 0xE0, 0xB5)
	if got := rd(t, c, 0xF2, 1); got[0] != 3 {
		t.Errorf("ctrl_hum = %d after writing 0xB5 to 0xE0, want 3", got[0])
	}
	// Read-only registers ignore writes.
	wr(t, c, 0xD0, 0x12, 0x88, 0)
	if rd(t, c, 0xD0, 1)[0] != 0x60 || rd(t, c, 0x88, 1)[0] != 0x70 {
		t.Error("a write changed a read-only register")
	}
}

func TestBME280CtrlHumNeedsCtrlMeas(t *testing.T) {
	clk := newManualClock()
	c := chips.NewBME280(constant{"temperature": 21.5, "pressure": 100_000, "humidity": 40}, clk.Now, nil)
	// ctrl_meas first: humidity still off, pressure skipped (osrs_p 0).
	wr(t, c, 0xF4, 0x21)
	wr(t, c, 0xF2, 0x01) // no effect until the next ctrl_meas write
	clk.Advance(10 * time.Millisecond)
	adcP, adcT, adcH := raw(rd(t, c, 0xF7, 8))
	if adcH != 0x8000 || adcP != 0x80000 || adcT == 0x80000 {
		t.Errorf("raw P 0x%X T 0x%X H 0x%X: want P and H skipped, T measured", adcP, adcT, adcH)
	}
	wr(t, c, 0xF4, 0x21)
	clk.Advance(10 * time.Millisecond)
	if _, _, adcH := raw(rd(t, c, 0xF7, 8)); adcH == 0x8000 {
		t.Error("humidity still skipped after ctrl_meas write")
	}
	// Temperature skipped: everything reads skipped.
	wr(t, c, 0xF4, 0x05)
	clk.Advance(10 * time.Millisecond)
	if adcP, adcT, _ := raw(rd(t, c, 0xF7, 8)); adcT != 0x80000 || adcP != 0x80000 {
		t.Errorf("osrs_t 0: raw T 0x%X P 0x%X, want 0x80000", adcT, adcP)
	}
}

// TestBME280PowerCycle: after a brown-out the chip has lost ctrl_hum; the
// driver rewrites ctrl_hum before every measurement, so the next Sense
// reads humidity again instead of silently losing it.
func TestBME280PowerCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := chips.NewBME280(constant{"temperature": 21.5, "pressure": 100_000, "humidity": 40}, nil, nil)
		d, err := bme280.New(c2bus(t, c), 0x76, nil)
		if err != nil {
			t.Fatal(err)
		}
		var e bme280.Env
		if err := d.Sense(&e); err != nil || !near(e.Humidity, 40, 0.01) {
			t.Fatalf("before: %+v, %v", e, err)
		}
		c.PowerCycle()
		if got := rd(t, c, 0xF2, 4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
			t.Errorf("control registers after a power cycle = % X", got)
		}
		if err := d.Sense(&e); err != nil || !near(e.Humidity, 40, 0.01) || !near(e.Temperature, 21.5, 0.01) {
			t.Errorf("driver after a power cycle: %+v, %v; want humidity 40 again", e, err)
		}
	})
}

func c2bus(t *testing.T, c chips.Target) *chips.Bus {
	t.Helper()
	bus := chips.NewBus("i2c-1")
	if err := bus.Attach(0x76, c); err != nil {
		t.Fatal(err)
	}
	return bus
}

func TestBME280ResolutionAndFilter(t *testing.T) {
	clk := newManualClock()
	src := constant{"temperature": 20, "pressure": 95_000, "humidity": 50}
	c := chips.NewBME280(src, clk.Now, nil)
	cal := bme280.Calibration(chips.DefaultBME280Calibration)
	measure := func(ctrlMeas byte) (degC, pa float64, adcT, adcP int32) {
		wr(t, c, 0xF4, ctrlMeas)
		clk.Advance(time.Second)
		adcP, adcT, _ = raw(rd(t, c, 0xF7, 8))
		tFine, degC := cal.CompensateT(adcT)
		return degC, cal.CompensateP(adcP, tFine), adcT, adcP
	}
	// 16x oversampling, filter off: 20 bits, pressure to a fraction of a Pa.
	if _, pa, _, _ := measure(0xB5); !near(pa, 95_000, 0.2) {
		t.Errorf("16x: %v Pa, want 95000 ± 0.2", pa)
	}
	// 2x: 17 bits.
	if _, _, adcT, adcP := measure(2<<5 | 2<<2 | 1); adcT&7 != 0 || adcP&7 != 0 {
		t.Errorf("2x: raw T 0x%X P 0x%X, want 17 bits", adcT, adcP)
	}
	// Filter coefficient 16: a step from 20 °C to 30 °C shows 1/16 of it
	// in the first measurement after, the rest later.
	wr(t, c, 0xF5, 4<<2)
	measure(0x25)
	src["temperature"] = 30
	degC, _, _, _ := measure(0x25)
	if degC < 20.4 || degC > 20.9 {
		t.Errorf("filtered step: %v °C, want about 20.6", degC)
	}
	for range 200 {
		degC, _, _, _ = measure(0x25)
	}
	if !near(degC, 30, 0.01) {
		t.Errorf("filter settled at %v °C, want 30", degC)
	}
}

func TestBME280NormalMode(t *testing.T) {
	clk := newManualClock()
	temp := 10.0
	var mu sync.Mutex
	c := chips.NewBME280(chips.SourceFunc(func(m string, at time.Time) float64 {
		mu.Lock()
		defer mu.Unlock()
		return map[string]float64{"temperature": temp, "pressure": 100_000, "humidity": 50}[m]
	}), clk.Now, nil)
	cal := bme280.Calibration(chips.DefaultBME280Calibration)
	wr(t, c, 0xF5, 0x00)             // t_sb 0.5 ms, filter off
	wr(t, c, 0xF2, 0x01, 0xF4, 0x27) // 1x, normal mode: 8 ms + 0.5 ms
	if st := rd(t, c, 0xF3, 1); st[0] != 0x08 {
		t.Errorf("status at start 0x%02x, want measuring", st[0])
	}
	clk.Advance(8200 * time.Microsecond)
	if st := rd(t, c, 0xF3, 1); st[0] != 0 {
		t.Errorf("status in standby 0x%02x, want 0", st[0])
	}
	for _, want := range []float64{10, 11, 12} {
		mu.Lock()
		temp = want
		mu.Unlock()
		clk.Advance(8500 * time.Microsecond)
		_, adcT, _ := raw(rd(t, c, 0xF7, 8))
		if _, got := cal.CompensateT(adcT); !near(got, want, 0.01) {
			t.Errorf("normal mode: %v °C, want %v", got, want)
		}
	}
	if rd(t, c, 0xF4, 1)[0]&3 != 3 {
		t.Error("normal mode did not stay normal")
	}
}

// TestBME280Driver runs the real driver against the simulated chip, with
// values from the model, and compares with the model's truth.
func TestBME280Driver(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   *bme280.Opts
		cal    *chips.BME280Calibration
		tolPa  float64
		filter bool
	}{
		{name: "defaults", tolPa: 1.5},
		{name: "16x", opts: &bme280.Opts{Temperature: bme280.O16x, Pressure: bme280.O16x, Humidity: bme280.O16x}, tolPa: 0.2},
		{name: "perturbed calibration", cal: ptr(chips.PerturbedBME280Calibration(7)), tolPa: 1.5},
		{name: "other perturbed calibration", cal: ptr(chips.PerturbedBME280Calibration(8)), opts: &bme280.Opts{Pressure: bme280.O4x}, tolPa: 0.5},
		{name: "pressure and humidity off", opts: &bme280.Opts{Pressure: bme280.Off, Humidity: bme280.Off}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dev := device(t, 11, "node-7", time.Now())
				bus := chips.NewBus("i2c-1")
				if err := bus.Attach(0x76, chips.NewBME280(dev, nil, &chips.BME280Opts{Calibration: tc.cal})); err != nil {
					t.Fatal(err)
				}
				d, err := bme280.New(bus, 0x76, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				var worstT, worstP, worstH float64
				for i := range 300 {
					at := time.Now()
					var e bme280.Env
					if err := d.Sense(&e); err != nil {
						t.Fatalf("sample %d: %v", i, err)
					}
					wantT := dev.Value(model.Temperature, at)
					worstT = max(worstT, math.Abs(e.Temperature-wantT))
					if tc.opts != nil && tc.opts.Pressure == bme280.Off {
						if !math.IsNaN(e.Pressure) || !math.IsNaN(e.Humidity) {
							t.Fatalf("skipped measurements read %v Pa, %v %%RH", e.Pressure, e.Humidity)
						}
						continue
					}
					worstP = max(worstP, math.Abs(e.Pressure-dev.Value(model.Pressure, at)))
					worstH = max(worstH, math.Abs(e.Humidity-dev.Value(model.Humidity, at)))
					time.Sleep(7 * time.Minute) // cover the diurnal range
				}
				t.Logf("worst errors: %.4f °C, %.3f Pa, %.4f %%RH", worstT, worstP, worstH)
				if worstT > 0.01 || worstP > tc.tolPa || worstH > 0.01 {
					t.Errorf("worst errors %.4f °C, %.3f Pa, %.4f %%RH; want ≤ 0.01, %.1f, 0.01", worstT, worstP, worstH, tc.tolPa)
				}
			})
		})
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkBME280Sense runs the real driver's Sense against the simulated
// chip. Sense sleeps the datasheet's measurement time (9.3 ms at 1x), so
// many run in parallel and the figure that matters is cpu-ns/op: process
// CPU time (user + system) per Sense, which includes the model's values.
func BenchmarkBME280Sense(b *testing.B) {
	f, err := model.NewFleet(1, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(256)
	var n sync.Mutex
	next := 0
	start := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		n.Lock()
		next++
		id := fmt.Sprint("node-", next)
		n.Unlock()
		bus := chips.NewBus("i2c-1")
		if err := bus.Attach(0x76, chips.NewBME280(f.Device(id), nil, nil)); err != nil {
			b.Error(err)
			return
		}
		d, err := bme280.New(bus, 0x76, nil)
		if err != nil {
			b.Error(err)
			return
		}
		var e bme280.Env
		for pb.Next() {
			if err := d.Sense(&e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkBME280Chip is the chip's share: the bus transactions of one
// Sense (trigger, status poll, burst read) on a clock that jumps past the
// measurement time, model values included.
func BenchmarkBME280Chip(b *testing.B) {
	clk := newManualClock()
	f, err := model.NewFleet(1, t0)
	if err != nil {
		b.Fatal(err)
	}
	bus := chips.NewBus("i2c-1")
	if err := bus.Attach(0x76, chips.NewBME280(f.Device("n"), clk.Now, nil)); err != nil {
		b.Fatal(err)
	}
	_ = bus.Tx(0x76, []byte{0xF2, 0x01}, nil)
	trigger, status, data := []byte{0xF4, 0x25}, []byte{0xF3}, []byte{0xF7}
	var st [1]byte
	var buf [8]byte
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		_ = bus.Tx(0x76, trigger, nil)
		clk.Advance(10 * time.Millisecond)
		_ = bus.Tx(0x76, status, st[:])
		_ = bus.Tx(0x76, data, buf[:])
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user + system CPU time in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

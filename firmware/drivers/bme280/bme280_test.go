package bme280_test

import (
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/tributary-iot/tributary/firmware/drivers/bme280"
	"github.com/tributary-iot/tributary/firmware/drivers/drivertest"
)

// datasheetCal is the worked example of the BMP280 datasheet (section 3.12),
// whose temperature and pressure formulas the BME280 shares, completed with
// humidity parameters read from a real BME280.
var datasheetCal = bme280.Calibration{
	T1: 27504, T2: 26435, T3: -1000,
	P1: 36477, P2: -10685, P3: 3024, P4: 2855, P5: 140, P6: -7, P7: 15500, P8: -14600, P9: 6000,
	H1: 75, H2: 362, H3: 0, H4: 313, H5: 50, H6: 30,
}

const (
	exampleAdcT = 519888
	exampleAdcP = 415148
	exampleAdcH = 30000
)

func TestCompensateDatasheetExample(t *testing.T) {
	c := datasheetCal
	tFine, degC := c.CompensateT(exampleAdcT)
	if tFine != 128422 {
		t.Errorf("t_fine = %d, want 128422", tFine)
	}
	if degC != 25.08 {
		t.Errorf("T = %v °C, want 25.08", degC)
	}
	p := c.CompensateP(exampleAdcP, tFine)
	// The datasheet's 100653.27 Pa comes from the double formula with an
	// unrounded t_fine; the int64 formula gives 25767233/256 Pa.
	if math.Abs(p-100653.27) > 0.05 {
		t.Errorf("P = %v Pa, want 100653.27 ± 0.05", p)
	}
	if want := 25767233.0 / 256; p != want {
		t.Errorf("P = %v Pa, want exactly %v (int64 formula, Q24.8)", p, want)
	}
}

// Reference: the datasheet's double-precision formulas (section 8.1), an
// independent oracle for the fixed-point ones.
func refT(c bme280.Calibration, adcT int32) (tFine, degC float64) {
	a, t1 := float64(adcT), float64(c.T1)
	v1 := (a/16384 - t1/1024) * float64(c.T2)
	v2 := (a/131072 - t1/8192) * (a/131072 - t1/8192) * float64(c.T3)
	return v1 + v2, (v1 + v2) / 5120
}

func refP(c bme280.Calibration, adcP int32, tFine float64) float64 {
	v1 := tFine/2 - 64000
	v2 := v1 * v1 * float64(c.P6) / 32768
	v2 += v1 * float64(c.P5) * 2
	v2 = v2/4 + float64(c.P4)*65536
	v1 = (float64(c.P3)*v1*v1/524288 + float64(c.P2)*v1) / 524288
	v1 = (1 + v1/32768) * float64(c.P1)
	p := 1048576 - float64(adcP)
	p = (p - v2/4096) * 6250 / v1
	v1 = float64(c.P9) * p * p / 2147483648
	v2 = p * float64(c.P8) / 32768
	return p + (v1+v2+float64(c.P7))/16
}

func refH(c bme280.Calibration, adcH int32, tFine float64) float64 {
	h := tFine - 76800
	h = (float64(adcH) - (float64(c.H4)*64 + float64(c.H5)/16384*h)) *
		(float64(c.H2) / 65536 * (1 + float64(c.H6)/67108864*h*(1+float64(c.H3)/67108864*h)))
	h *= 1 - float64(c.H1)*h/524288
	return min(max(h, 0), 100)
}

func TestCompensateMatchesDoubleFormulas(t *testing.T) {
	c := datasheetCal
	for _, tc := range []struct {
		name             string
		adcT, adcP, adcH int32
	}{
		{"datasheet example", exampleAdcT, exampleAdcP, exampleAdcH},
		{"cold, high pressure", 400000, 300000, 20000},
		{"hot, low pressure", 650000, 500000, 40000},
		{"freezing, humid", 460000, 420000, 38000},
		{"dry", 520000, 415000, 22000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tFine, degC := c.CompensateT(tc.adcT)
			rtFine, rT := refT(c, tc.adcT)
			if math.Abs(degC-rT) > 0.01 {
				t.Errorf("T = %v, double formula %v", degC, rT)
			}
			if p, rp := c.CompensateP(tc.adcP, tFine), refP(c, tc.adcP, float64(tFine)); math.Abs(p-rp) > 0.1 {
				t.Errorf("P = %v, double formula %v", p, rp)
			}
			if h, rh := c.CompensateH(tc.adcH, tFine), refH(c, tc.adcH, rtFine); math.Abs(h-rh) > 0.05 {
				t.Errorf("H = %v, double formula %v", h, rh)
			}
		})
	}
}

func TestCompensateHClamps(t *testing.T) {
	c := datasheetCal
	tFine, _ := c.CompensateT(exampleAdcT)
	if h := c.CompensateH(0, tFine); h != 0 {
		t.Errorf("H(0) = %v, want 0", h)
	}
	if h := c.CompensateH(65535, tFine); h != 100 {
		t.Errorf("H(65535) = %v, want 100", h)
	}
}

func TestCompensatePZeroP1(t *testing.T) {
	c := datasheetCal
	c.P1 = 0
	if p := c.CompensateP(exampleAdcP, 128422); p != 0 {
		t.Errorf("P with dig_P1 = 0: %v, want 0 (no division by zero)", p)
	}
}

func TestParseCalibration(t *testing.T) {
	for _, tc := range []struct {
		name string
		b2   [7]byte
		want bme280.Calibration // only the H fields are checked
	}{
		{
			name: "positive H4 H5",
			b2:   [7]byte{0x6A, 0x01, 0x00, 0x13, 0x9A, 0x03, 0x1E},
			want: bme280.Calibration{H2: 362, H3: 0, H4: 0x13A, H5: 0x039, H6: 30},
		},
		{
			name: "negative H2 H4 H5 H6",
			b2:   [7]byte{0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 0x80, 0x80},
			want: bme280.Calibration{H2: -2, H3: 0xFF, H4: -1, H5: -2048, H6: -128},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := bme280.ParseCalibration([26]byte{}, tc.b2)
			if got.H2 != tc.want.H2 || got.H3 != tc.want.H3 || got.H4 != tc.want.H4 || got.H5 != tc.want.H5 || got.H6 != tc.want.H6 {
				t.Errorf("got H2..H6 = %d %d %d %d %d, want %d %d %d %d %d",
					got.H2, got.H3, got.H4, got.H5, got.H6,
					tc.want.H2, tc.want.H3, tc.want.H4, tc.want.H5, tc.want.H6)
			}
		})
	}
}

func TestCalibrationRegistersRoundTrip(t *testing.T) {
	for _, c := range []bme280.Calibration{
		datasheetCal,
		{T1: 65535, T2: -32768, T3: 32767, P1: 1, P9: -1, H1: 255, H2: -32768, H3: 255, H4: -2048, H5: 2047, H6: -128},
		{H4: 2047, H5: -2048, H6: 127},
	} {
		b1, b2 := c.Registers()
		if got := bme280.ParseCalibration(b1, b2); got != c {
			t.Errorf("ParseCalibration(Registers(%+v)) = %+v", c, got)
		}
	}
	// Little-endian layout from the datasheet's table 16.
	b1, _ := datasheetCal.Registers()
	if b1[0] != 0x70 || b1[1] != 0x6B { // dig_T1 = 27504 = 0x6B70
		t.Errorf("dig_T1 bytes = %#x %#x, want 0x70 0x6b", b1[0], b1[1])
	}
	if b1[25] != 75 {
		t.Errorf("dig_H1 byte (0xA1) = %d, want 75", b1[25])
	}
}

func TestRawInvertsCompensation(t *testing.T) {
	c := datasheetCal
	for _, want := range []float64{-40, -5.5, 0, 25.08, 60, 85} {
		adc := c.RawT(want)
		if _, got := c.CompensateT(adc); math.Abs(got-want) > 0.01 {
			t.Errorf("CompensateT(RawT(%v)) = %v", want, got)
		}
	}
	tFine, _ := c.CompensateT(exampleAdcT)
	for _, want := range []float64{30000, 80000, 100653.27, 110000} {
		adc := c.RawP(want, tFine)
		if got := c.CompensateP(adc, tFine); math.Abs(got-want) > 0.2 {
			t.Errorf("CompensateP(RawP(%v)) = %v", want, got)
		}
	}
	for _, want := range []float64{0, 12.5, 50, 99.9, 100} {
		adc := c.RawH(want, tFine)
		if got := c.CompensateH(adc, tFine); math.Abs(got-want) > 0.02 {
			t.Errorf("CompensateH(RawH(%v)) = %v", want, got)
		}
	}
}

const addr = bme280.DefaultAddr

// initOps is the traffic of New with opts giving ctrl_hum, ctrl_meas and
// config register values hum, meas and cfg.
func initOps(cal bme280.Calibration, hum, meas, cfg byte) []i2ctest.IO {
	b1, b2 := cal.Registers()
	return []i2ctest.IO{
		{Addr: addr, W: []byte{0xD0}, R: []byte{0x60}},
		{Addr: addr, W: []byte{0x88}, R: b1[:]},
		{Addr: addr, W: []byte{0xE1}, R: b2[:]},
		{Addr: addr, W: []byte{0xF2, hum}},
		{Addr: addr, W: []byte{0xF4, meas}},
		{Addr: addr, W: []byte{0xF5, cfg}},
	}
}

// data encodes raw readings as registers 0xF7..0xFE.
func data(adcP, adcT, adcH int32) []byte {
	return []byte{
		byte(adcP >> 12), byte(adcP >> 4), byte(adcP << 4),
		byte(adcT >> 12), byte(adcT >> 4), byte(adcT << 4),
		byte(adcH >> 8), byte(adcH),
	}
}

var errNACK = drivertest.ErrNACK

func TestNew(t *testing.T) {
	ok := initOps(datasheetCal, 0x01, 0x24, 0x00)
	for _, tc := range []struct {
		name    string
		addr    uint16
		opts    *bme280.Opts
		ops     []i2ctest.IO
		fail    []int // transaction numbers that fail
		wantErr error
		wantMsg []string
	}{
		{name: "default opts", addr: addr, ops: ok},
		{name: "zero opts mean 1x", addr: addr, opts: &bme280.Opts{}, ops: ok},
		{
			name: "16x filter 16", addr: addr,
			opts: &bme280.Opts{Temperature: bme280.O2x, Pressure: bme280.O16x, Humidity: bme280.O4x, Filter: bme280.F16},
			ops:  initOps(datasheetCal, 0x03, 2<<5|5<<2, 4<<2),
		},
		{
			name: "humidity and pressure off", addr: addr,
			opts: &bme280.Opts{Pressure: bme280.Off, Humidity: bme280.Off},
			ops:  initOps(datasheetCal, 0x00, 0x20, 0x00),
		},
		{
			name: "alternative address", addr: 0x77,
			ops: func() []i2ctest.IO {
				ops := initOps(datasheetCal, 0x01, 0x24, 0x00)
				for i := range ops {
					ops[i].Addr = 0x77
				}
				return ops
			}(),
		},
		{
			name: "BMP280 chip id", addr: addr,
			ops:     []i2ctest.IO{{Addr: addr, W: []byte{0xD0}, R: []byte{0x58}}},
			wantErr: bme280.ErrChipID, wantMsg: []string{"found 0x58", "BMP280"},
		},
		{
			name: "unknown chip id", addr: addr,
			ops:     []i2ctest.IO{{Addr: addr, W: []byte{0xD0}, R: []byte{0xFF}}},
			wantErr: bme280.ErrChipID, wantMsg: []string{"found 0xff", "want 0x60"},
		},
		{name: "NACK on chip id", addr: addr, fail: []int{0}, wantErr: errNACK, wantMsg: []string{"chip id"}},
		{name: "NACK on calibration", addr: addr, ops: ok[:1], fail: []int{1}, wantErr: errNACK, wantMsg: []string{"calibration"}},
		{name: "NACK on config write", addr: addr, ops: ok[:5], fail: []int{5}, wantErr: errNACK, wantMsg: []string{"0xf5"}},
		{name: "bad address", addr: 0x40, wantMsg: []string{"0x40 is not a BME280 address"}},
		{name: "temperature off", addr: addr, opts: &bme280.Opts{Temperature: bme280.Off}, wantMsg: []string{"temperature oversampling cannot be Off"}},
		{name: "bad oversampling", addr: addr, opts: &bme280.Opts{Humidity: 6}, wantMsg: []string{"invalid oversampling"}},
		{name: "bad filter", addr: addr, opts: &bme280.Opts{Filter: 5}, wantMsg: []string{"invalid filter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := drivertest.NewFaultyI2C(tc.ops, errNACK, tc.fail...)
			d, err := bme280.New(bus, tc.addr, tc.opts)
			if drivertest.CheckErr(t, "New", err, tc.wantErr, tc.wantMsg...) {
				if d != nil {
					t.Errorf("New returned a Dev with an error")
				}
			} else if got := d.Calibration(); got != datasheetCal {
				t.Errorf("Calibration() = %+v, want %+v", got, datasheetCal)
			}
			if err := bus.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSense(t *testing.T) {
	c := datasheetCal
	tFine, wantT := c.CompensateT(exampleAdcT)
	wantP := c.CompensateP(exampleAdcP, tFine)
	wantH := c.CompensateH(exampleAdcH, tFine)
	nan := math.NaN()
	hum := func(h byte) i2ctest.IO { return i2ctest.IO{Addr: addr, W: []byte{0xF2, h}} }
	start := func(meas byte) i2ctest.IO { return i2ctest.IO{Addr: addr, W: []byte{0xF4, meas}} }
	status := func(s byte) i2ctest.IO { return i2ctest.IO{Addr: addr, W: []byte{0xF3}, R: []byte{s}} }
	read := func(b []byte) i2ctest.IO { return i2ctest.IO{Addr: addr, W: []byte{0xF7}, R: b} }
	example := data(exampleAdcP, exampleAdcT, exampleAdcH)
	busy := make([]i2ctest.IO, 10)
	for i := range busy {
		busy[i] = status(0x08)
	}

	for _, tc := range []struct {
		name     string
		opts     *bme280.Opts
		init     [2]byte      // ctrl_hum and ctrl_meas written by New; zero for 1x
		ops      []i2ctest.IO // after New
		fail     []int        // transaction numbers after New that fail
		want     bme280.Env
		wantErr  error
		wantWait time.Duration // minimum time Sense must take
	}{
		{
			name:     "datasheet example",
			ops:      []i2ctest.IO{hum(0x01), start(0x25), status(0x00), read(example)},
			want:     bme280.Env{Temperature: wantT, Pressure: wantP, Humidity: wantH},
			wantWait: 9300 * time.Microsecond,
		},
		{
			name:     "still measuring twice",
			ops:      []i2ctest.IO{hum(0x01), start(0x25), status(0x08), status(0x09), status(0x01), read(example)},
			want:     bme280.Env{Temperature: wantT, Pressure: wantP, Humidity: wantH},
			wantWait: 9300*time.Microsecond + 2*time.Millisecond,
		},
		{
			name:     "16x everything waits longer",
			opts:     &bme280.Opts{Temperature: bme280.O16x, Pressure: bme280.O16x, Humidity: bme280.O16x},
			init:     [2]byte{0x05, 0xB4},
			ops:      []i2ctest.IO{hum(0x05), start(0xB5), status(0x00), read(example)},
			want:     bme280.Env{Temperature: wantT, Pressure: wantP, Humidity: wantH},
			wantWait: 112800 * time.Microsecond,
		},
		{
			name: "pressure and humidity off",
			opts: &bme280.Opts{Pressure: bme280.Off, Humidity: bme280.Off},
			init: [2]byte{0x00, 0x20},
			ops:  []i2ctest.IO{hum(0x00), start(0x21), status(0x00), read(data(0x80000, exampleAdcT, 0x8000))},
			want: bme280.Env{Temperature: wantT, Pressure: nan, Humidity: nan},
		},
		{
			name:    "never finishes",
			ops:     append([]i2ctest.IO{hum(0x01), start(0x25)}, busy...),
			wantErr: bme280.ErrTimeout,
		},
		{name: "NACK on start", fail: []int{0}, wantErr: errNACK},
		{name: "NACK on status", ops: []i2ctest.IO{hum(0x01), start(0x25)}, fail: []int{2}, wantErr: errNACK},
		{name: "NACK on data", ops: []i2ctest.IO{hum(0x01), start(0x25), status(0x00)}, fail: []int{3}, wantErr: errNACK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hum, meas := byte(0x01), byte(0x24) // 1x, sleep mode
				if tc.init != [2]byte{} {
					hum, meas = tc.init[0], tc.init[1]
				}
				init := initOps(c, hum, meas, 0)
				fail := make([]int, len(tc.fail))
				for i, n := range tc.fail {
					fail[i] = n + len(init)
				}
				bus := drivertest.NewFaultyI2C(append(init, tc.ops...), errNACK, fail...)
				d, err := bme280.New(bus, addr, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				sentinel := bme280.Env{Temperature: -1, Pressure: -1, Humidity: -1}
				e := sentinel
				t0 := time.Now()
				err = d.Sense(&e)
				took := time.Since(t0)
				if drivertest.CheckErr(t, "Sense", err, tc.wantErr) {
					if e != sentinel {
						t.Errorf("Sense filled %+v despite the error", e)
					}
				} else if !same(e.Temperature, tc.want.Temperature) || !same(e.Pressure, tc.want.Pressure) || !same(e.Humidity, tc.want.Humidity) {
					t.Errorf("Sense = %+v, want %+v", e, tc.want)
				}
				if took < tc.wantWait {
					t.Errorf("Sense took %s, want at least the datasheet maximum %s", took, tc.wantWait)
				}
				if err := bus.Close(); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

func TestHaltAndString(t *testing.T) {
	ops := append(initOps(datasheetCal, 0x01, 0x24, 0x00), i2ctest.IO{Addr: addr, W: []byte{0xF4, 0x24}})
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	d, err := bme280.New(bus, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
	if s := d.String(); !strings.Contains(s, "BME280") || !strings.Contains(s, "118") && !strings.Contains(s, "0x76") {
		t.Errorf("String() = %q, want the chip and its address", s)
	}
}

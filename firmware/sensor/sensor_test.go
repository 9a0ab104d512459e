package sensor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/tributary-iot/tributary/firmware/drivers/bme280"
	"github.com/tributary-iot/tributary/firmware/drivers/sht3x"
	"github.com/tributary-iot/tributary/firmware/sensor"
)

// fakeBuses hands out the fakes it holds, by name.
type fakeBuses struct {
	i2c  map[string]i2c.Bus
	spi  map[string]spi.Port
	gpio map[string]gpio.PinIO
}

var _ sensor.Buses = (*fakeBuses)(nil)

var errNoBus = errors.New("no such bus")

func (f *fakeBuses) I2C(name string) (i2c.Bus, error)     { return lookup(f.i2c, name) }
func (f *fakeBuses) SPI(name string) (spi.Port, error)    { return lookup(f.spi, name) }
func (f *fakeBuses) GPIO(name string) (gpio.PinIO, error) { return lookup(f.gpio, name) }

func lookup[T any](m map[string]T, name string) (T, error) {
	v, ok := m[name]
	if !ok {
		return v, errNoBus
	}
	return v, nil
}

type want struct {
	name, unit string
	value      float64
	sum        bool
}

// senseCheck senses once and checks the measurements against wants.
func senseCheck(t *testing.T, s sensor.Sensor, wants ...want) {
	t.Helper()
	got, err := s.Sense(t.Context())
	if err != nil {
		t.Fatalf("Sense: %v", err)
	}
	if len(got) != len(wants) {
		t.Fatalf("got %d measurements %+v, want %d", len(got), got, len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.Name != w.name || g.Unit != w.unit || math.Abs(g.Value-w.value) > 1e-9 {
			t.Errorf("measurement %d = {%s %s %v}, want {%s %s %v}", i, g.Name, g.Unit, g.Value, w.name, w.unit, w.value)
		}
		switch {
		case w.sum && (g.Sum == nil || *g.Sum != g.Value):
			t.Errorf("measurement %s: Sum = %v, want the total %v", g.Name, g.Sum, g.Value)
		case !w.sum && g.Sum != nil:
			t.Errorf("measurement %s: Sum = %v, want nil", g.Name, *g.Sum)
		}
	}
}

// closeAll closes each of cs in order, failing the test on an error.
func closeAll(t *testing.T, cs ...io.Closer) {
	t.Helper()
	for i, c := range cs {
		if err := c.Close(); err != nil {
			t.Errorf("Close %d (%T): %v", i, c, err)
		}
	}
}

var cal = bme280.Calibration{
	T1: 27504, T2: 26435, T3: -1000,
	P1: 36477, P2: -10685, P3: 3024, P4: 2855, P5: 140, P6: -7, P7: 15500, P8: -14600, P9: 6000,
	H1: 75, H2: 362, H3: 0, H4: 313, H5: 50, H6: 30,
}

func bme280Ops(a uint16) []i2ctest.IO {
	b1, b2 := cal.Registers()
	return []i2ctest.IO{
		{Addr: a, W: []byte{0xD0}, R: []byte{0x60}},
		{Addr: a, W: []byte{0x88}, R: b1[:]},
		{Addr: a, W: []byte{0xE1}, R: b2[:]},
		{Addr: a, W: []byte{0xF2, 0x01}},
		{Addr: a, W: []byte{0xF4, 0x24}},
		{Addr: a, W: []byte{0xF5, 0x00}},
		// Sense: adc_P 415148, adc_T 519888, adc_H 30000.
		{Addr: a, W: []byte{0xF2, 0x01}},
		{Addr: a, W: []byte{0xF4, 0x25}},
		{Addr: a, W: []byte{0xF3}, R: []byte{0x00}},
		{Addr: a, W: []byte{0xF7}, R: []byte{0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x75, 0x30}},
		// Close: sleep mode.
		{Addr: a, W: []byte{0xF4, 0x24}},
	}
}

func TestOpenBME280(t *testing.T) {
	for _, tc := range []struct {
		spec   sensor.Spec
		addr   uint16
		prefix string
	}{
		{sensor.Spec{Kind: "bme280", Bus: "1"}, 0x76, ""},
		{sensor.Spec{Kind: "bme280", Bus: "1", Name: "room", Addr: 0x77}, 0x77, "room."},
	} {
		t.Run(tc.spec.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				bus := &i2ctest.Playback{Ops: bme280Ops(tc.addr), DontPanic: true}
				s, err := sensor.Open(t.Context(), &fakeBuses{i2c: map[string]i2c.Bus{"1": bus}}, tc.spec)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(s.String(), "bme280") || !strings.Contains(s.String(), "BME280{") {
					t.Errorf("String() = %q", s.String())
				}
				tFine, degC := cal.CompensateT(519888)
				senseCheck(t, s,
					want{tc.prefix + "temperature", "Cel", degC, false},
					want{tc.prefix + "humidity", "%RH", cal.CompensateH(30000, tFine), false},
					want{tc.prefix + "pressure", "Pa", cal.CompensateP(415148, tFine), false},
				)
				if degC != 25.08 {
					t.Errorf("temperature %v, want 25.08", degC)
				}
				closeAll(t, s, s, bus) // idempotent: one sleep-mode write
			})
		})
	}
}

func TestOpenSHT3x(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := sht3x.DefaultAddr
		bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
			{Addr: a, W: []byte{0xF3, 0x2D}},
			{Addr: a, R: []byte{0x80, 0x10, 0xE1}},
			{Addr: a, W: []byte{0x24, 0x00}},
			{Addr: a, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA2}},
			{Addr: a, W: []byte{0x24, 0x00}},
			{Addr: a, R: []byte{0x66, 0x66, 0x93, 0x80, 0x00, 0xA3}}, // bad CRC
		}}
		s, err := sensor.Open(t.Context(), &fakeBuses{i2c: map[string]i2c.Bus{"": bus}}, sensor.Spec{Kind: "sht3x", Name: "attic"})
		if err != nil {
			t.Fatal(err)
		}
		senseCheck(t, s,
			want{"attic.temperature", "Cel", 25, false},
			want{"attic.humidity", "%RH", 100 * 32768.0 / 65535, false},
		)
		got, err := s.Sense(t.Context())
		if !errors.Is(err, sht3x.ErrCRC) || got != nil {
			t.Errorf("Sense with a bad CRC = %v, %v; want no measurements and ErrCRC", got, err)
		}
		closeAll(t, s, bus)
	})
}

func TestOpenMCP3008(t *testing.T) {
	xfer := func(config, hi, lo byte) conntest.IO {
		return conntest.IO{W: []byte{0x01, config, 0x00}, R: []byte{0, hi, lo}}
	}
	port := &spitest.Playback{Playback: conntest.Playback{DontPanic: true, Ops: []conntest.IO{
		xfer(0x80, 0x02, 0x00), // ch0: 512 -> 2.5 V
		xfer(0xB0, 0x01, 0x00), // ch3: 256 -> 1.25 V
		xfer(0x50, 0x00, 0x80), // pair 5 (CH4- CH5+): 128 -> 0.625 V
	}}}
	spec := sensor.Spec{Kind: "mcp3008", Name: "adc", Bus: "/dev/spidev0.0", VRef: 5, Channels: []sensor.Channel{
		{Channel: 0, Name: "battery", Scale: 2},                                   // divider: 5 V
		{Channel: 3, Name: "soil", Unit: "%RH", Scale: 40, Offset: -10},           // 40 %RH
		{Channel: 5, Differential: true, Name: "bridge", Unit: "Pa", Scale: 1000}, // 625 Pa
	}}
	s, err := sensor.Open(t.Context(), &fakeBuses{spi: map[string]spi.Port{"/dev/spidev0.0": port}}, spec)
	if err != nil {
		t.Fatal(err)
	}
	senseCheck(t, s,
		want{"adc.battery", "V", 5, false},
		want{"adc.soil", "%RH", 40, false},
		want{"adc.bridge", "Pa", 625, false},
	)
	closeAll(t, s, port)
}

func TestOpenPulse(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		spec                 sensor.Spec
		total1, rate1        float64 // after 900 edges in 9 s
		total2, rate2        float64 // after 450 more in 1 s
		totalName, unit, rUn string
	}{
		{
			name:   "water meter",
			spec:   sensor.Spec{Kind: "pulse", Name: "water", Bus: "GPIO17", PulsesPerUnit: 450, Unit: "l"},
			total1: 2, rate1: 2.0 / 9, total2: 3, rate2: 1,
			totalName: "water", unit: "l", rUn: "l/s",
		},
		{
			name:   "energy meter",
			spec:   sensor.Spec{Kind: "pulse", Name: "mains", Bus: "GPIO17", PulsesPerUnit: 1, Unit: "Wh"},
			total1: 900, rate1: 900.0 / 9 * 3600, total2: 1350, rate2: 450 * 3600,
			totalName: "mains", unit: "Wh", rUn: "W",
		},
		{
			name:   "raw pulses",
			spec:   sensor.Spec{Kind: "pulse", Bus: "GPIO17"},
			total1: 900, rate1: 100, total2: 1350, rate2: 450,
			totalName: "pulses", unit: "count", rUn: "1/s",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pin := &gpiotest.Pin{N: "GPIO17", EdgesChan: make(chan gpio.Level)}
				s, err := sensor.Open(t.Context(), &fakeBuses{gpio: map[string]gpio.PinIO{"GPIO17": pin}}, tc.spec)
				if err != nil {
					t.Fatal(err)
				}
				edges := func(n int, every time.Duration) {
					for range n {
						time.Sleep(every)
						pin.EdgesChan <- gpio.Low
					}
					synctest.Wait()
				}
				edges(900, 10*time.Millisecond)
				senseCheck(t, s, want{tc.totalName, tc.unit, tc.total1, true}, want{tc.totalName + ".rate", tc.rUn, tc.rate1, false})
				edges(450, 2*time.Millisecond)
				time.Sleep(100 * time.Millisecond)
				senseCheck(t, s, want{tc.totalName, tc.unit, tc.total2, true}, want{tc.totalName + ".rate", tc.rUn, tc.rate2, false})
				closeAll(t, s, s)
			})
		})
	}
}

func TestOpenErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	wrongChip := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x58}}}}
	buses := &fakeBuses{
		i2c:  map[string]i2c.Bus{"1": wrongChip},
		gpio: map[string]gpio.PinIO{"GPIO4": &gpiotest.Pin{N: "GPIO4"}}, // no EdgesChan: In fails
	}
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		spec    sensor.Spec
		wantErr error
		wantMsg string
	}{
		{name: "invalid spec", spec: sensor.Spec{Kind: "bme280", Addr: 0x99}, wantMsg: "sensor (bme280): address 0x99 is not a BME280 address"},
		{name: "cancelled", ctx: cancelled, spec: sensor.Spec{Kind: "bme280", Bus: "1"}, wantErr: context.Canceled},
		{name: "no I2C bus", spec: sensor.Spec{Kind: "sht3x", Name: "x", Bus: "7"}, wantErr: errNoBus, wantMsg: `sensor (sht3x "x"): open I2C bus "7"`},
		{name: "no default I2C bus", spec: sensor.Spec{Kind: "bme280"}, wantErr: errNoBus, wantMsg: `open I2C bus (default)`},
		{name: "no SPI port", spec: sensor.Spec{Kind: "mcp3008", Bus: "SPI9.9", Channels: []sensor.Channel{{Name: "a"}}}, wantErr: errNoBus, wantMsg: `open SPI port "SPI9.9"`},
		{name: "no pin", spec: sensor.Spec{Kind: "pulse", Bus: "GPIO99"}, wantErr: errNoBus, wantMsg: `open GPIO pin "GPIO99"`},
		{name: "pin refuses edges", spec: sensor.Spec{Kind: "pulse", Bus: "GPIO4"}, wantMsg: "pulse: configure GPIO4"},
		{name: "wrong chip", spec: sensor.Spec{Kind: "bme280", Name: "room", Bus: "1"}, wantErr: bme280.ErrChipID, wantMsg: `sensor (bme280 "room"): bme280: unexpected chip id: found 0x58`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			s, err := sensor.Open(ctx, buses, tc.spec)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Open error %q does not wrap %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Open error %q does not say %q", err, tc.wantMsg)
			}
			var se *sensor.SpecError
			if !errors.As(err, &se) {
				t.Errorf("Open error %q is not a *SpecError", err)
			}
		})
	}
}

func TestSenseCancelled(t *testing.T) {
	port := &spitest.Playback{Playback: conntest.Playback{DontPanic: true}}
	s, err := sensor.Open(t.Context(), &fakeBuses{spi: map[string]spi.Port{"": port}},
		sensor.Spec{Kind: "mcp3008", Channels: []sensor.Channel{{Name: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got, err := s.Sense(ctx); !errors.Is(err, context.Canceled) || got != nil {
		t.Errorf("Sense(cancelled) = %v, %v; want context.Canceled and no bus traffic", got, err)
	}
}

func ExampleSpecError() {
	err := sensor.ValidateAll([]sensor.Spec{
		{Kind: "sht3x", Name: "attic"},
		{Kind: "bme280", Name: "room", Addr: 0x99},
	})
	fmt.Println(err)
	// Output: sensor 2 (bme280 "room"): address 0x99 is not a BME280 address (0x76 or 0x77)
}

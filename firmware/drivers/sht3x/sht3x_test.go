package sht3x_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/tributary-iot/tributary/firmware/drivers/drivertest"
	"github.com/tributary-iot/tributary/firmware/drivers/sht3x"
)

func TestCRC8(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want byte
	}{
		{[]byte{0xBE, 0xEF}, 0x92}, // datasheet table 20
		{[]byte{0x66, 0x66}, 0x93},
		{[]byte{0x80, 0x00}, 0xA2},
		{[]byte{0x00, 0x00}, 0x81},
		{[]byte{0xFF, 0xFF}, 0xAC},
		{nil, 0xFF},
	} {
		if got := sht3x.CRC8(tc.in); got != tc.want {
			t.Errorf("CRC8(% x) = %#02x, want %#02x", tc.in, got, tc.want)
		}
	}
}

const addr = sht3x.DefaultAddr

// statusOps is what New sends: the status command, then a 3-byte read.
var statusOps = []i2ctest.IO{
	{Addr: addr, W: []byte{0xF3, 0x2D}},
	{Addr: addr, R: []byte{0x80, 0x10, 0xE1}},
}

var errNACK = drivertest.ErrNACK

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		addr    uint16
		opts    *sht3x.Opts
		ops     []i2ctest.IO
		fail    []int // transaction numbers that fail
		wantErr error
		wantMsg string
	}{
		{name: "default", addr: addr, ops: statusOps},
		{name: "alternative address", addr: 0x45, opts: &sht3x.Opts{Repeatability: sht3x.Low}, ops: []i2ctest.IO{
			{Addr: 0x45, W: []byte{0xF3, 0x2D}},
			{Addr: 0x45, R: []byte{0x00, 0x00, 0x81}},
		}},
		{name: "bad status CRC", addr: addr, ops: []i2ctest.IO{
			{Addr: addr, W: []byte{0xF3, 0x2D}},
			{Addr: addr, R: []byte{0x80, 0x10, 0xE2}},
		}, wantErr: sht3x.ErrCRC, wantMsg: "status word 0x8010"},
		{name: "absent", addr: addr, fail: []int{0}, wantErr: errNACK, wantMsg: "status command at 0x44"},
		{name: "NACK on status read", addr: addr, ops: statusOps[:1], fail: []int{1}, wantErr: errNACK},
		{name: "bad address", addr: 0x40, wantMsg: "0x40 is not an SHT3x address"},
		{name: "bad repeatability", addr: addr, opts: &sht3x.Opts{Repeatability: 3}, wantMsg: "invalid repeatability"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := drivertest.NewFaultyI2C(tc.ops, errNACK, tc.fail...)
			d, err := sht3x.New(bus, tc.addr, tc.opts)
			if drivertest.CheckErr(t, "New", err, tc.wantErr, tc.wantMsg) && d != nil {
				t.Error("New returned a Dev with an error")
			}
			if err := bus.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSense(t *testing.T) {
	cmd := func(b ...byte) i2ctest.IO { return i2ctest.IO{Addr: addr, W: b} }
	read := func(b ...byte) i2ctest.IO { return i2ctest.IO{Addr: addr, R: b} }
	good := read(0x66, 0x66, 0x93, 0x80, 0x00, 0xA2) // 25 °C, 50.0008 %RH
	for _, tc := range []struct {
		name     string
		rep      sht3x.Repeatability
		ops      []i2ctest.IO // after New
		fail     []int        // transaction numbers after New that fail
		want     sht3x.Env
		wantErr  error
		wantMsg  string
		wantWait time.Duration
	}{
		{
			name: "high", rep: sht3x.High,
			ops:      []i2ctest.IO{cmd(0x24, 0x00), good},
			want:     sht3x.Env{Temperature: 25, Humidity: 100 * 32768.0 / 65535},
			wantWait: 15 * time.Millisecond,
		},
		{
			name: "medium", rep: sht3x.Medium,
			ops:      []i2ctest.IO{cmd(0x24, 0x0B), good},
			want:     sht3x.Env{Temperature: 25, Humidity: 100 * 32768.0 / 65535},
			wantWait: 6 * time.Millisecond,
		},
		{
			name: "low, extremes", rep: sht3x.Low,
			ops:      []i2ctest.IO{cmd(0x24, 0x16), read(0x00, 0x00, 0x81, 0xFF, 0xFF, 0xAC)},
			want:     sht3x.Env{Temperature: -45, Humidity: 100},
			wantWait: 4 * time.Millisecond,
		},
		{
			name: "not ready twice", rep: sht3x.High,
			ops:      []i2ctest.IO{cmd(0x24, 0x00), good},
			fail:     []int{1, 2},
			want:     sht3x.Env{Temperature: 25, Humidity: 100 * 32768.0 / 65535},
			wantWait: 17 * time.Millisecond,
		},
		{
			name: "never ready", rep: sht3x.High,
			ops:     []i2ctest.IO{cmd(0x24, 0x00)},
			fail:    []int{1, 2, 3, 4, 5},
			wantErr: sht3x.ErrNotReady,
		},
		{
			name: "NACK on command", rep: sht3x.High,
			fail:    []int{0},
			wantErr: errNACK, wantMsg: "measurement command",
		},
		{
			name: "bad CRC in temperature word", rep: sht3x.High,
			ops:     []i2ctest.IO{cmd(0x24, 0x00), read(0x66, 0x66, 0x94, 0x80, 0x00, 0xA2)},
			wantErr: sht3x.ErrCRC, wantMsg: "temperature word 0x6666",
		},
		{
			name: "bad CRC in humidity word", rep: sht3x.High,
			ops:     []i2ctest.IO{cmd(0x24, 0x00), read(0x66, 0x66, 0x93, 0x80, 0x01, 0xA2)},
			wantErr: sht3x.ErrCRC, wantMsg: "humidity word 0x8001",
		},
		{
			name: "all ones from a floating bus", rep: sht3x.High,
			ops:     []i2ctest.IO{cmd(0x24, 0x00), read(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)},
			wantErr: sht3x.ErrCRC, wantMsg: "temperature word",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fail := make([]int, len(tc.fail))
				for i, n := range tc.fail {
					fail[i] = n + len(statusOps)
				}
				bus := drivertest.NewFaultyI2C(append(slices.Clone(statusOps), tc.ops...), errNACK, fail...)
				d, err := sht3x.New(bus, addr, &sht3x.Opts{Repeatability: tc.rep})
				if err != nil {
					t.Fatal(err)
				}
				sentinel := sht3x.Env{Temperature: -1, Humidity: -1}
				e := sentinel
				t0 := time.Now()
				err = d.Sense(&e)
				took := time.Since(t0)
				if drivertest.CheckErr(t, "Sense", err, tc.wantErr, tc.wantMsg) {
					if e != sentinel {
						t.Errorf("Sense filled %+v despite the error", e)
					}
				} else if math.Abs(e.Temperature-tc.want.Temperature) > 1e-9 || math.Abs(e.Humidity-tc.want.Humidity) > 1e-9 {
					t.Errorf("Sense = %+v, want %+v", e, tc.want)
				}
				if took < tc.wantWait {
					t.Errorf("Sense took %s, want at least %s (datasheet maximum)", took, tc.wantWait)
				}
				if err := bus.Close(); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

func TestStatusAndString(t *testing.T) {
	bus := &i2ctest.Playback{Ops: append(append([]i2ctest.IO{}, statusOps...), statusOps...), DontPanic: true}
	d, err := sht3x.New(bus, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Status()
	if err != nil || s != 0x8010 {
		t.Errorf("Status() = %#04x, %v; want 0x8010", s, err)
	}
	if err := bus.Close(); err != nil {
		t.Error(err)
	}
	if got := d.String(); !strings.HasPrefix(got, "SHT3x{") {
		t.Errorf("String() = %q", got)
	}
}

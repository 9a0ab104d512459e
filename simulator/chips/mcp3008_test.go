package chips_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"

	"github.com/tributary-iot/tributary/firmware/drivers/mcp3008"
	"github.com/tributary-iot/tributary/simulator/chips"
	"github.com/tributary-iot/tributary/simulator/model"
)

// volts gives channel n the value n·0.4 + 0.1 V: codes 31, 155, 279, ...
var volts = constant{}

func init() {
	for n := range 8 {
		volts[fmt.Sprint("voltage", n)] = float64(n)*0.4 + 0.1
	}
}

func code(v float64) uint16 { return uint16(math.Round(v * 1024 / 3.3)) }

func connect(t *testing.T, p spi.Port) spi.Conn {
	t.Helper()
	c, err := p.Connect(1350*physic.KiloHertz, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMCP3008Frames(t *testing.T) {
	c := connect(t, chips.NewMCP3008(volts, nil, nil))
	if c.Duplex() != conn.Full {
		t.Errorf("Duplex() = %s", c.Duplex())
	}
	if l, ok := c.(conn.Limits); !ok || l.MaxTxSize() != 4096 {
		t.Error("no MaxTxSize of 4096")
	}
	for ch := range 8 {
		want := code(volts[fmt.Sprint("voltage", ch)])
		// Datasheet figure 6-1: out [0x01, SGL D2 D1 D0 0000, 0x00], in
		// [?, 00000 null B9 B8, B7..B0].
		r := make([]byte, 3)
		if err := c.Tx([]byte{0x01, 0x80 | byte(ch)<<4, 0x00}, r); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r, []byte{0, byte(want >> 8), byte(want)}) {
			t.Errorf("channel %d: in % X, want 00 %02X %02X", ch, r, want>>8, want&0xFF)
		}
		// Other alignment: start bit at clock 3, so the null bit is clock 9
		// and B9..B0 clocks 10..19, then B1..B4 LSB first.
		r = make([]byte, 3)
		if err := c.Tx([]byte{0x18 | byte(ch), 0x00, 0x00}, r); err != nil {
			t.Fatal(err)
		}
		lsbFirst := byte(0)
		for i := range 4 { // B1..B4 on clocks 20..23
			lsbFirst = lsbFirst<<1 | byte(want>>(i+1)&1)
		}
		if wantR := []byte{0, byte(want >> 4), byte(want&0xF)<<4 | lsbFirst}; !bytes.Equal(r, wantR) {
			t.Errorf("channel %d, early start bit: in % X, want % X", ch, r, wantR)
		}
	}
	// Differential pairs (table 5-2): pair 3 is CH2- CH3+: 1.3-0.9 = 0.4 V.
	// Pair 2 is CH2+ CH3-: negative, reads 0.
	for pair, want := range map[byte]uint16{3: code(0.4), 2: 0} {
		r := make([]byte, 3)
		if err := c.Tx([]byte{0x01, pair << 4, 0}, r); err != nil {
			t.Fatal(err)
		}
		if got := uint16(r[1]&3)<<8 | uint16(r[2]); got != want {
			t.Errorf("pair %d: code %d, want %d", pair, got, want)
		}
	}
	// No start bit: nothing comes back.
	r := []byte{0xAA, 0xAA, 0xAA}
	if err := c.Tx([]byte{0, 0, 0}, r); err != nil || !bytes.Equal(r, []byte{0, 0, 0}) {
		t.Errorf("no start bit: % X, %v", r, err)
	}
	// A frame split over packets with chip select kept low.
	r1, r2 := make([]byte, 2), make([]byte, 1)
	err := c.TxPackets([]spi.Packet{
		{W: []byte{0x01, 0x90}, R: r1, KeepCS: true},
		{W: []byte{0x00}, R: r2},
	})
	if want := code(0.5); err != nil || uint16(r1[1]&3)<<8|uint16(r2[0]) != want {
		t.Errorf("packets: % X % X, %v; want code %d", r1, r2, err, want)
	}
	// Without KeepCS the second packet is a new frame: no start bit.
	err = c.TxPackets([]spi.Packet{{W: []byte{0x01, 0x90}, R: r1}, {W: []byte{0x00}, R: r2}})
	if err != nil || r2[0] != 0 {
		t.Errorf("packets without KeepCS: % X, %v", r2, err)
	}
	if err := c.Tx([]byte{1, 2, 3}, make([]byte, 2)); err == nil {
		t.Error("Tx with different lengths succeeded")
	}
}

func TestMCP3008Codes(t *testing.T) {
	for v, want := range map[float64]uint16{-0.2: 0, 0: 0, 3.3 / 2048: 1, 1.65: 512, 3.299: 1023, 3.3: 1023, 5: 1023, math.NaN(): 0} {
		c := connect(t, chips.NewMCP3008(constant{"voltage0": v}, nil, nil))
		r := make([]byte, 3)
		if err := c.Tx([]byte{1, 0x80, 0}, r); err != nil {
			t.Fatal(err)
		}
		if got := uint16(r[1]&3)<<8 | uint16(r[2]); got != want {
			t.Errorf("%v V: code %d, want %d", v, got, want)
		}
	}
}

func TestMCP3008Connect(t *testing.T) {
	for name, tc := range map[string]struct {
		f    physic.Frequency
		mode spi.Mode
		bits int
	}{
		"too fast":    {4 * physic.MegaHertz, spi.Mode0, 8},
		"mode 1":      {physic.MegaHertz, spi.Mode1, 8},
		"half duplex": {physic.MegaHertz, spi.Mode0 | spi.HalfDuplex, 8},
		"no CS":       {physic.MegaHertz, spi.Mode0 | spi.NoCS, 8},
		"16 bits":     {physic.MegaHertz, spi.Mode0, 16},
	} {
		if _, err := chips.NewMCP3008(volts, nil, nil).Connect(tc.f, tc.mode, tc.bits); err == nil {
			t.Errorf("%s: Connect succeeded", name)
		}
	}
	p := chips.NewMCP3008(volts, nil, &chips.MCP3008Opts{Name: "SPI0.0"})
	if p.String() != "SPI0.0" {
		t.Errorf("String() = %q", p.String())
	}
	c, err := p.Connect(0, spi.Mode3, 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Connect(physic.MegaHertz, spi.Mode0, 8); err == nil {
		t.Error("second Connect succeeded")
	}
	if err := p.LimitSpeed(physic.MegaHertz); err != nil {
		t.Error(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Tx([]byte{1, 0x80, 0}, make([]byte, 3)); !errors.Is(err, chips.ErrClosed) {
		t.Errorf("Tx after Close: %v, want ErrClosed", err)
	}
}

// TestMCP3008Driver runs the real driver against the simulated chip with
// model values.
func TestMCP3008Driver(t *testing.T) {
	clk := newManualClock()
	dev := device(t, 5, "node-3", t0)
	chip := chips.NewMCP3008(dev, clk.Now, &chips.MCP3008Opts{VRef: 3.3})
	d, err := mcp3008.New(chip, &mcp3008.Opts{VRef: 3.3})
	if err != nil {
		t.Fatal(err)
	}
	lsb := 3.3 / 1024
	for i := range 500 {
		at := clk.Now()
		ch := i % 8
		want := dev.Value(fmt.Sprint(model.Voltage, ch), at)
		got, err := d.Volts(ch)
		if err != nil {
			t.Fatal(err)
		}
		if !near(got, want, lsb) {
			t.Fatalf("sample %d channel %d: %v V, want %v ± 1 LSB", i, ch, got, want)
		}
		code, err := d.ReadDiff(ch)
		if err != nil {
			t.Fatal(err)
		}
		plus, minus := ch&^1, ch|1
		if ch&1 == 1 {
			plus, minus = minus, plus
		}
		wantDiff := max(dev.Value(fmt.Sprint(model.Voltage, plus), at)-dev.Value(fmt.Sprint(model.Voltage, minus), at), 0)
		if !near(d.ToVolts(code), wantDiff, lsb) {
			t.Fatalf("sample %d pair %d: %v V, want %v ± 1 LSB", i, ch, d.ToVolts(code), wantDiff)
		}
		clk.Advance(3 * time.Minute)
	}
}

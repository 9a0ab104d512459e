package mcp3008_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"

	"github.com/tributary-iot/tributary/firmware/drivers/drivertest"
	"github.com/tributary-iot/tributary/firmware/drivers/mcp3008"
)

// port records how the driver connects, then plays back Ops.
type port struct {
	spitest.Playback
	freq  physic.Frequency
	mode  spi.Mode
	bits  int
	err   error // returned by Connect when set
	txErr error // returned by every Tx when set
}

func (p *port) Connect(f physic.Frequency, m spi.Mode, bits int) (spi.Conn, error) {
	p.freq, p.mode, p.bits = f, m, bits
	if p.err != nil {
		return nil, p.err
	}
	c, err := p.Playback.Connect(f, m, bits)
	if err != nil || p.txErr == nil {
		return c, err
	}
	return failConn{c, p.txErr}, nil
}

type failConn struct {
	spi.Conn
	err error
}

func (c failConn) Tx(w, r []byte) error { return c.err }

func newPort(ops ...conntest.IO) *port {
	return &port{Playback: spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}}
}

func xfer(config, hi, lo byte) conntest.IO {
	return conntest.IO{W: []byte{0x01, config, 0x00}, R: []byte{0xFF, hi, lo}}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     *mcp3008.Opts
		wantFreq physic.Frequency
		wantMsg  string
	}{
		{name: "defaults", wantFreq: 1350 * physic.KiloHertz},
		{name: "zero opts", opts: &mcp3008.Opts{}, wantFreq: 1350 * physic.KiloHertz},
		{name: "5 V part at full speed", opts: &mcp3008.Opts{VRef: 5, MaxSpeed: 3600 * physic.KiloHertz}, wantFreq: 3600 * physic.KiloHertz},
		{name: "too fast", opts: &mcp3008.Opts{MaxSpeed: 4 * physic.MegaHertz}, wantMsg: "outside"},
		{name: "negative vref", opts: &mcp3008.Opts{VRef: -1}, wantMsg: "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPort()
			d, err := mcp3008.New(p, tc.opts)
			if drivertest.CheckErr(t, "New", err, nil, tc.wantMsg) {
				return
			}
			if p.freq != tc.wantFreq || p.mode != spi.Mode0 || p.bits != 8 {
				t.Errorf("Connect(%s, %v, %d), want (%s, Mode0, 8)", p.freq, p.mode, p.bits, tc.wantFreq)
			}
			if !strings.HasPrefix(d.String(), "MCP3008{") {
				t.Errorf("String() = %q", d.String())
			}
		})
	}
	connErr := errors.New("spi: busy")
	p := newPort()
	p.err = connErr
	if _, err := mcp3008.New(p, nil); !errors.Is(err, connErr) {
		t.Errorf("New with a failing Connect: %v, want %v", err, connErr)
	}
}

// Figure 6-1: out [0x01, SGL/DIFF D2 D1 D0 x x x x, x]; in [?, ? ? ? ? ? 0 B9 B8, B7..B0].
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		ch   int
		diff bool
		xfer conntest.IO
		want uint16
	}{
		{"ch0 zero", 0, false, xfer(0x80, 0x00, 0x00), 0},
		{"ch0 full scale", 0, false, xfer(0x80, 0x03, 0xFF), 1023},
		{"ch1 mid", 1, false, xfer(0x90, 0x02, 0x00), 512},
		{"ch5 ignores high bits", 5, false, xfer(0xD0, 0xFC|0x01, 0x23), 0x123},
		{"ch7", 7, false, xfer(0xF0, 0x01, 0x00), 256},
		{"pair 0 CH0+ CH1-", 0, true, xfer(0x00, 0x00, 0x40), 64},
		{"pair 1 CH0- CH1+", 1, true, xfer(0x10, 0x00, 0x01), 1},
		{"pair 6 CH6+ CH7-", 6, true, xfer(0x60, 0x03, 0x00), 768},
		{"pair 7 CH6- CH7+", 7, true, xfer(0x70, 0x00, 0x00), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPort(tc.xfer)
			d, err := mcp3008.New(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got uint16
			if tc.diff {
				got, err = d.ReadDiff(tc.ch)
			} else {
				got, err = d.Read(tc.ch)
			}
			if err != nil || got != tc.want {
				t.Errorf("got %d, %v; want %d", got, err, tc.want)
			}
			if err := p.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestBadChannel(t *testing.T) {
	d, err := mcp3008.New(newPort(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []int{-1, 8, 100} {
		if _, err := d.Read(ch); !errors.Is(err, mcp3008.ErrChannel) {
			t.Errorf("Read(%d) error = %v, want ErrChannel", ch, err)
		}
		if _, err := d.ReadDiff(ch); !errors.Is(err, mcp3008.ErrChannel) {
			t.Errorf("ReadDiff(%d) error = %v, want ErrChannel", ch, err)
		}
		if _, err := d.Volts(ch); !errors.Is(err, mcp3008.ErrChannel) {
			t.Errorf("Volts(%d) error = %v, want ErrChannel", ch, err)
		}
	}
}

func TestBusError(t *testing.T) {
	busErr := errors.New("spi: transfer failed")
	p := newPort()
	p.txErr = busErr
	d, err := mcp3008.New(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(0); !errors.Is(err, busErr) {
		t.Errorf("Read error = %v, want %v", err, busErr)
	}
}

func TestVolts(t *testing.T) {
	for _, tc := range []struct {
		vref float64
		xfer conntest.IO
		want float64
	}{
		{0, xfer(0x80, 0x02, 0x00), 1.65}, // default 3.3 V, 512/1024
		{5, xfer(0x80, 0x03, 0xFF), 5 * 1023.0 / 1024},
		{5, xfer(0x80, 0x00, 0x00), 0},
	} {
		p := newPort(tc.xfer)
		d, err := mcp3008.New(p, &mcp3008.Opts{VRef: tc.vref})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := d.Volts(0); err != nil || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("VRef %g: Volts = %v, %v; want %v", tc.vref, got, err, tc.want)
		}
	}
}

package chips_test

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/firmware/drivers/sht3x"
	"github.com/tributary-iot/tributary/simulator/chips"
	"github.com/tributary-iot/tributary/simulator/model"
)

func cmd(t *testing.T, c chips.Target, w ...byte) {
	t.Helper()
	if err := c.Tx(w, nil); err != nil {
		t.Fatalf("command % X: %v", w, err)
	}
}

func read(c chips.Target, n int) ([]byte, error) {
	r := make([]byte, n)
	return r, c.Tx(nil, r)
}

func TestSHT3xProtocol(t *testing.T) {
	clk := newManualClock()
	src := constant{"temperature": 25, "humidity": 50}
	c := chips.NewSHT3x(src, clk.Now, nil)

	// Status after power-on: 0x8010 (alert pending, reset detected) and
	// its CRC.
	cmd(t, c, 0xF3, 0x2D)
	if got, err := read(c, 3); err != nil || !bytes.Equal(got, []byte{0x80, 0x10, sht3x.CRC8([]byte{0x80, 0x10})}) {
		t.Errorf("status = % X, %v; want 80 10 crc", got, err)
	}
	// Nothing left to read: NACK.
	if _, err := read(c, 3); !errors.Is(err, chips.ErrNACK) {
		t.Errorf("second read: %v, want NACK", err)
	}
	cmd(t, c, 0x30, 0x41) // clear status
	cmd(t, c, 0xF3, 0x2D)
	if got, _ := read(c, 3); got[0] != 0 || got[1] != 0 {
		t.Errorf("status after clear = % X, want 00 00", got[:2])
	}

	// Single shot, high repeatability, no clock stretching: NACK for 15 ms.
	// St = (25+45)·65535/175 = 26214 = 0x6666, Srh = 50·65535/100 = 32767.5
	// rounds to 32768 = 0x8000.
	wantData := []byte{0x66, 0x66, sht3x.CRC8([]byte{0x66, 0x66}), 0x80, 0x00, sht3x.CRC8([]byte{0x80, 0x00})}
	for _, rep := range []struct {
		cmd  []byte
		busy time.Duration
	}{{[]byte{0x24, 0x00}, 15 * time.Millisecond}, {[]byte{0x24, 0x0B}, 6 * time.Millisecond}, {[]byte{0x24, 0x16}, 4 * time.Millisecond}} {
		cmd(t, c, rep.cmd...)
		clk.Advance(rep.busy - time.Microsecond)
		if _, err := read(c, 6); !errors.Is(err, chips.ErrNACK) {
			t.Errorf("% X: read before %s: %v, want NACK", rep.cmd, rep.busy, err)
		}
		if err := c.Tx([]byte{0xF3, 0x2D}, nil); !errors.Is(err, chips.ErrNACK) {
			t.Errorf("% X: command while measuring: %v, want NACK", rep.cmd, err)
		}
		clk.Advance(time.Microsecond)
		if got, err := read(c, 6); err != nil || !bytes.Equal(got, wantData) {
			t.Errorf("% X: data = % X, %v; want % X", rep.cmd, got, err, wantData)
		}
	}
	// Command and read in one transaction: the read is NACKed.
	if err := c.Tx([]byte{0x24, 0x00}, make([]byte, 6)); !errors.Is(err, chips.ErrNACK) {
		t.Errorf("combined command+read: %v, want NACK", err)
	}
	clk.Advance(time.Second)
	if _, err := read(c, 6); err != nil {
		t.Fatal(err)
	}

	// Clock stretching: the data is there at once, and a short read takes
	// the temperature word only.
	cmd(t, c, 0x2C, 0x06)
	if got, err := read(c, 3); err != nil || !bytes.Equal(got, wantData[:3]) {
		t.Errorf("clock-stretched read = % X, %v", got, err)
	}
	// Reading beyond 6 bytes gives 0xFF.
	cmd(t, c, 0x2C, 0x10)
	if got, err := read(c, 8); err != nil || got[6] != 0xFF || got[7] != 0xFF {
		t.Errorf("8-byte read = % X, %v", got, err)
	}

	// Unknown command: NACK and the command status bit.
	if err := c.Tx([]byte{0x12, 0x34}, nil); !errors.Is(err, chips.ErrNACK) {
		t.Errorf("unknown command: %v, want NACK", err)
	}
	if err := c.Tx([]byte{0x24}, nil); !errors.Is(err, chips.ErrNACK) {
		t.Errorf("1-byte command: %v, want NACK", err)
	}
	cmd(t, c, 0x30, 0x6D) // heater on
	cmd(t, c, 0xF3, 0x2D)
	if got, _ := read(c, 3); got[0] != 0x20 || got[1] != 0x00 {
		t.Errorf("status = % X, want 20 00 (heater on; command ok clears bit 1)", got[:2])
	}

	// Soft reset: unreachable for 1.5 ms, then status 0x8010.
	cmd(t, c, 0x30, 0xA2)
	if err := c.Tx([]byte{0xF3, 0x2D}, nil); !errors.Is(err, chips.ErrNACK) {
		t.Errorf("command during reset: %v, want NACK", err)
	}
	clk.Advance(1500 * time.Microsecond)
	cmd(t, c, 0xF3, 0x2D)
	if got, _ := read(c, 3); got[0] != 0x80 || got[1] != 0x10 {
		t.Errorf("status after reset = % X, want 80 10", got[:2])
	}
}

func TestSHT3xPeriodic(t *testing.T) {
	clk := newManualClock()
	// 20 °C for the first 10 ms, then 21 °C.
	src := chips.SourceFunc(func(m string, at time.Time) float64 {
		if m == "humidity" {
			return 30
		}
		if at.Before(t0.Add(10 * time.Millisecond)) {
			return 20
		}
		return 21
	})
	c := chips.NewSHT3x(src, clk.Now, nil)
	word := func(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
	cmd(t, c, 0x21, 0x30) // 1 measurement per second, high repeatability
	cmd(t, c, 0xE0, 0x00)
	if _, err := read(c, 6); !errors.Is(err, chips.ErrNACK) {
		t.Errorf("fetch before the first measurement: %v, want NACK", err)
	}
	if err := c.Tx([]byte{0x24, 0x00}, nil); !errors.Is(err, chips.ErrNACK) {
		t.Errorf("single shot in periodic mode: %v, want NACK", err)
	}
	clk.Advance(15 * time.Millisecond)
	cmd(t, c, 0xE0, 0x00)
	got, err := read(c, 6)
	// The measurement started with periodic mode, at 20 °C.
	want := uint16(math.Round((20 + 45) * 65535 / 175.0))
	if err != nil || word(got) != want {
		t.Errorf("fetched % X, %v; want temperature word 0x%04X", got, err, want)
	}
	// Already fetched: NACK until the next measurement.
	cmd(t, c, 0xE0, 0x00)
	if _, err := read(c, 6); !errors.Is(err, chips.ErrNACK) {
		t.Errorf("second fetch: %v, want NACK", err)
	}
	clk.Advance(time.Second)
	cmd(t, c, 0xE0, 0x00)
	got, err = read(c, 6)
	if want := uint16(math.Round((21 + 45) * 65535 / 175.0)); err != nil || word(got) != want {
		t.Errorf("fetch after a period: % X, %v; want temperature word 0x%04X", got, err, want)
	}
	cmd(t, c, 0x30, 0x93) // break
	cmd(t, c, 0x24, 0x16) // single shot works again
}

// TestSHT3xDriver runs the real driver against the simulated chip.
func TestSHT3xDriver(t *testing.T) {
	for _, rep := range []sht3x.Repeatability{sht3x.High, sht3x.Medium, sht3x.Low} {
		t.Run(rep.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dev := device(t, 3, "node-1", time.Now())
				bus := chips.NewBus("i2c-1")
				chip := chips.NewSHT3x(dev, nil, nil)
				if err := bus.Attach(0x44, chip); err != nil {
					t.Fatal(err)
				}
				d, err := sht3x.New(bus, 0x44, &sht3x.Opts{Repeatability: rep})
				if err != nil {
					t.Fatal(err)
				}
				for i := range 200 {
					at := time.Now()
					var e sht3x.Env
					if err := d.Sense(&e); err != nil {
						t.Fatalf("sample %d: %v", i, err)
					}
					if wt, wh := dev.Value(model.Temperature, at), dev.Value(model.Humidity, at); !near(e.Temperature, wt, 0.01) || !near(e.Humidity, wh, 0.01) {
						t.Fatalf("sample %d: %v °C %v %%RH, want %v, %v", i, e.Temperature, e.Humidity, wt, wh)
					}
					time.Sleep(11 * time.Minute)
				}

				// A corrupted CRC is caught by the driver; the next read is fine.
				chip.CorruptCRC(1)
				var e sht3x.Env
				if err := d.Sense(&e); !errors.Is(err, sht3x.ErrCRC) {
					t.Errorf("corrupted CRC: %v, want ErrCRC", err)
				}
				if err := d.Sense(&e); err != nil {
					t.Errorf("after the corrupted read: %v", err)
				}
				// Injected NACKs.
				bus.FailNext(0x44, 1)
				if err := d.Sense(&e); !errors.Is(err, chips.ErrNACK) {
					t.Errorf("injected NACK: %v, want ErrNACK", err)
				}
				// A brown-out: unreachable for 1 ms, then fine.
				chip.PowerCycle()
				if err := d.Sense(&e); !errors.Is(err, chips.ErrNACK) {
					t.Errorf("during power-up: %v, want ErrNACK", err)
				}
				time.Sleep(time.Millisecond)
				if err := d.Sense(&e); err != nil {
					t.Errorf("after power-up: %v", err)
				}
			})
		})
	}
}

package chips_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/simulator/chips"
	"github.com/tributary-iot/tributary/simulator/model"
)

var _ sensor.Buses = (*chips.Board)(nil)

func TestBus(t *testing.T) {
	bus := chips.NewBus("i2c-1")
	chip := chips.NewSHT3x(constant{}, nil, nil)
	if err := bus.Attach(0x44, chip); err != nil {
		t.Fatal(err)
	}
	if err := bus.Attach(0x44, chip); !errors.Is(err, chips.ErrAddressInUse) {
		t.Errorf("second Attach at 0x44: %v, want ErrAddressInUse", err)
	}
	if err := bus.Attach(0x80, chip); err == nil {
		t.Error("Attach at 0x80 succeeded")
	}
	err := bus.Tx(0x45, []byte{0xF3, 0x2D}, nil)
	if !errors.Is(err, chips.ErrNACK) || !strings.Contains(err.Error(), "0x45") || !strings.Contains(err.Error(), "i2c-1") {
		t.Errorf("Tx to an empty address: %v, want a NACK naming bus and address", err)
	}
	if err := bus.Tx(0x44, []byte{0xF3, 0x2D}, nil); err != nil {
		t.Errorf("Tx to the SHT3x: %v", err)
	}
	bus.FailNext(0x44, 2)
	for i := range 3 {
		err := bus.Tx(0x44, []byte{0xF3, 0x2D}, nil)
		if (i < 2) != errors.Is(err, chips.ErrNACK) {
			t.Errorf("transaction %d after FailNext(2): %v", i, err)
		}
	}
	if err := bus.SetSpeed(400 * physic.KiloHertz); err != nil || bus.Speed() != 400*physic.KiloHertz {
		t.Errorf("SetSpeed(400kHz): %v, speed %s", err, bus.Speed())
	}
	if err := bus.SetSpeed(5 * physic.MegaHertz); err == nil {
		t.Error("SetSpeed(5MHz) succeeded")
	}
	if bus.String() != "i2c-1" {
		t.Errorf("String() = %q", bus.String())
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := bus.Tx(0x44, []byte{0xF3, 0x2D}, nil); !errors.Is(err, chips.ErrClosed) {
		t.Errorf("Tx after Close: %v, want ErrClosed", err)
	}
}

func TestBoardNames(t *testing.T) {
	b := chips.NewBoard()
	first, second := chips.NewBus("i2c-1"), chips.NewBus("i2c-3")
	if err := b.AddI2C("1", first); err != nil {
		t.Fatal(err)
	}
	if err := b.AddI2C("3", second); err != nil {
		t.Fatal(err)
	}
	if err := b.AddI2C("3", second); err == nil {
		t.Error("adding bus 3 twice succeeded")
	}
	if err := b.AddGPIO("", nil); err == nil {
		t.Error("adding a pin without a name succeeded")
	}
	if got, err := b.I2C(""); err != nil || got != first {
		t.Errorf(`I2C("") = %v, %v; want the first bus`, got, err)
	}
	if got, err := b.I2C("3"); err != nil || got != second {
		t.Errorf(`I2C("3") = %v, %v`, got, err)
	}
	_, err := b.I2C("2")
	if !errors.Is(err, chips.ErrNotFound) || !strings.Contains(err.Error(), "has: 1, 3") {
		t.Errorf(`I2C("2"): %v, want ErrNotFound listing 1, 3`, err)
	}
	if _, err := b.SPI(""); !errors.Is(err, chips.ErrNotFound) {
		t.Errorf(`SPI("") on a board without SPI: %v`, err)
	}
	if err := b.AddGPIO("GPIO17", chips.NewPulsePin("GPIO17", constant{}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GPIO(""); !errors.Is(err, chips.ErrNotFound) {
		t.Errorf(`GPIO(""): %v, want ErrNotFound (pins need a name)`, err)
	}
}

// TestBoardSensors opens every sensor kind through firmware/sensor against
// a simulated board, as a node does, and checks the readings against the
// model.
func TestBoardSensors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One noise draw per hour: the sensors sample one after the other
		// (the BME280 takes 9.3 ms) and are compared with one instant.
		dev := device(t, 21, "node-9", time.Now(), model.WithNoiseStep(time.Hour),
			model.WithProfile(model.Flow, model.Profile{Base: 50, Max: 1000}))
		b := chips.NewBoard()
		bus := chips.NewBus("i2c-1")
		for _, c := range []struct {
			addr uint16
			chip chips.Target
		}{{0x76, chips.NewBME280(dev, nil, nil)}, {0x44, chips.NewSHT3x(dev, nil, nil)}} {
			if err := bus.Attach(c.addr, c.chip); err != nil {
				t.Fatal(err)
			}
		}
		for _, err := range []error{
			b.AddI2C("1", bus),
			b.AddSPI("/dev/spidev0.0", chips.NewMCP3008(dev, nil, &chips.MCP3008Opts{Name: "SPI0.0"})),
			b.AddGPIO("GPIO17", chips.NewPulsePin("GPIO17", dev, nil, nil)),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		specs := []sensor.Spec{
			// The pulse counter first: the others take time to sense.
			{Kind: sensor.KindPulse, Bus: "GPIO17", Name: "water", Unit: "l", PulsesPerUnit: 10},
			{Kind: sensor.KindBME280, Bus: "1"},
			{Kind: sensor.KindSHT3x, Name: "attic"},
			{Kind: sensor.KindMCP3008, Channels: []sensor.Channel{{Channel: 2, Name: "battery"}}},
		}
		opened := make([]sensor.Sensor, len(specs))
		for i, s := range specs {
			var err error
			if opened[i], err = sensor.Open(t.Context(), b, s); err != nil {
				t.Fatal(err)
			}
			defer opened[i].Close()
		}
		time.Sleep(time.Second + 5*time.Millisecond) // 50 pulses
		at := time.Now()
		want := map[string]struct{ value, tol float64 }{
			"temperature":       {dev.Value(model.Temperature, at), 0.01},
			"humidity":          {dev.Value(model.Humidity, at), 0.01},
			"pressure":          {dev.Value(model.Pressure, at), 1.5},
			"attic.temperature": {dev.Value(model.Temperature, at), 0.01},
			"attic.humidity":    {dev.Value(model.Humidity, at), 0.01},
			"battery":           {dev.Value("voltage2", at), 3.3 / 1024},
			"water":             {5, 0},   // 50 pulses at 10 per litre
			"water.rate":        {5, 0.1}, // litres per second
		}
		for _, s := range opened {
			ms, err := s.Sense(t.Context())
			if err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			for _, m := range ms {
				w, ok := want[m.Name]
				if !ok {
					t.Errorf("unexpected measurement %q", m.Name)
					continue
				}
				if !near(m.Value, w.value, w.tol) {
					t.Errorf("%s = %v %s, want %v ± %v", m.Name, m.Value, m.Unit, w.value, w.tol)
				}
				delete(want, m.Name)
			}
		}
		if len(want) > 0 {
			t.Errorf("missing measurements: %v", want)
		}
	})
}

package sensor_test

import (
	"errors"
	"os"
	"testing"

	"github.com/tributary-iot/tributary/firmware/sensor"
)

func TestHostBusesUnknownPin(t *testing.T) {
	var h sensor.HostBuses
	if _, err := h.GPIO("NO_SUCH_PIN_42"); err == nil {
		t.Error("GPIO(NO_SUCH_PIN_42) succeeded")
	}
	for range 2 {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if _, err := h.I2C(""); !errors.Is(err, sensor.ErrClosed) {
		t.Errorf("I2C after Close = %v, want ErrClosed", err)
	}
	if p, err := h.SPI(""); !errors.Is(err, sensor.ErrClosed) || p != nil {
		t.Errorf("SPI after Close = %v, %v; want nil, ErrClosed", p, err)
	}
}

// TestHostBusesHardware opens real buses; it runs only when
// TRIBUTARY_HW_I2C names an I2C bus (e.g. "1") on this machine.
func TestHostBusesHardware(t *testing.T) {
	name, ok := os.LookupEnv("TRIBUTARY_HW_I2C")
	if !ok {
		t.Skip("set TRIBUTARY_HW_I2C to an I2C bus name to test real hardware")
	}
	h := &sensor.HostBuses{}
	defer h.Close()
	a, err := h.I2C(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.I2C(name)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("opening the same bus twice gave two handles")
	}
}

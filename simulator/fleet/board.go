package fleet

import (
	"fmt"

	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/simulator/chips"
	"github.com/tributary-iot/tributary/simulator/model"
)

// Where the simulated chips sit on a device's board.
const (
	i2cBus     = "1"
	spiPort    = "0.0"
	pulsePin   = "GPIO17"
	bme280Addr = 0x76
	sht3xAddr  = 0x44
)

// hardware is what one device carries: its board, the sensors the node
// opens on it, and the metrics they publish (each also a model metric, so
// anomalies planned on it show in what the device sends).
type hardware struct {
	board   *chips.Board
	specs   []sensor.Spec
	metrics []string
}

// layout is the kind of hardware device i of n gets under a profile.
type layout int

const (
	layoutBME280 layout = iota
	layoutSHT3x
	layoutSHT3xADC   // SHT3x + MCP3008
	layoutBME280Flow // BME280 + pulse counter
)

// layoutOf returns the hardware layout of device i under profile.
func layoutOf(profile string, i int) layout {
	switch profile {
	case SensorsSHT3x:
		return layoutSHT3x
	case SensorsMixed:
		if i%100 == 50 && i/100 < MaxPulseCounters {
			return layoutBME280Flow
		}
		if i%10 >= 6 {
			return layoutSHT3xADC
		}
	}
	return layoutBME280
}

// metricsOf returns the metrics a layout publishes, in a fixed order.
func (l layout) metrics() []string {
	switch l {
	case layoutSHT3x:
		return []string{model.Temperature, model.Humidity}
	case layoutSHT3xADC:
		return []string{model.Temperature, model.Humidity, "voltage0", "voltage1"}
	case layoutBME280Flow:
		return []string{model.Temperature, model.Humidity, model.Pressure, flowRate}
	}
	return []string{model.Temperature, model.Humidity, model.Pressure}
}

// flowRate is the pulse counter's rate: the published metric the model
// drives (its "flow" profile applies by prefix). The counter's total,
// "flow", integrates it.
const flowRate = "flow.rate"

// newHardware builds the board of a device whose true values come from
// dev, with chips reading the true (unskewed) time.
func newHardware(l layout, dev *model.Device) (*hardware, error) {
	h := &hardware{board: chips.NewBoard(), metrics: l.metrics()}
	bus := chips.NewBus("i2c-" + i2cBus)
	if err := h.board.AddI2C(i2cBus, bus); err != nil {
		return nil, err
	}
	attach := bus.Attach
	switch l {
	case layoutBME280, layoutBME280Flow:
		if err := attach(bme280Addr, chips.NewBME280(dev, nil, nil)); err != nil {
			return nil, err
		}
		h.specs = append(h.specs, sensor.Spec{Kind: sensor.KindBME280, Bus: i2cBus, Addr: bme280Addr})
	case layoutSHT3x, layoutSHT3xADC:
		if err := attach(sht3xAddr, chips.NewSHT3x(dev, nil, nil)); err != nil {
			return nil, err
		}
		h.specs = append(h.specs, sensor.Spec{Kind: sensor.KindSHT3x, Bus: i2cBus, Addr: sht3xAddr})
	}
	switch l {
	case layoutSHT3xADC:
		port := chips.NewMCP3008(dev, nil, &chips.MCP3008Opts{Name: "MCP3008@spi" + spiPort})
		if err := h.board.AddSPI(spiPort, port); err != nil {
			return nil, err
		}
		h.specs = append(h.specs, sensor.Spec{Kind: sensor.KindMCP3008, Bus: spiPort, Channels: []sensor.Channel{
			{Channel: 0, Name: "voltage0"},
			{Channel: 1, Name: "voltage1"},
		}})
	case layoutBME280Flow:
		pin := chips.NewPulsePin(pulsePin, dev, nil, &chips.PulsePinOpts{Metric: flowRate, Number: 17})
		if err := h.board.AddGPIO(pulsePin, pin); err != nil {
			return nil, err
		}
		h.specs = append(h.specs, sensor.Spec{Kind: sensor.KindPulse, Name: "flow", Bus: pulsePin})
	}
	if err := sensor.ValidateAll(h.specs); err != nil {
		return nil, fmt.Errorf("fleet: hardware: %w", err)
	}
	return h, nil
}

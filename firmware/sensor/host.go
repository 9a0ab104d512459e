package sensor

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	"periph.io/x/host/v3"
)

// HostBuses opens the real buses of the machine through periph's host
// drivers (host.Init, i2creg.Open, spireg.Open, gpioreg.ByName). The zero
// value is ready to use; use it by pointer. A bus opened twice by name is
// shared. Close closes every bus it opened.
type HostBuses struct {
	mu     sync.Mutex
	i2c    map[string]i2c.BusCloser
	spi    map[string]spi.PortCloser
	closed bool
}

var _ Buses = (*HostBuses)(nil)

// ErrClosed means a HostBuses was used after Close.
var ErrClosed = errors.New("sensor: buses are closed")

// init loads periph's host drivers; host.Init does the work once.
func (h *HostBuses) init() error {
	if h.closed {
		return ErrClosed
	}
	if _, err := host.Init(); err != nil {
		return fmt.Errorf("sensor: periph host init: %w", err)
	}
	return nil
}

// I2C opens the I²C bus called name: "" for the first one, "1" for
// /dev/i2c-1, or any name or alias periph knows.
func (h *HostBuses) I2C(name string) (i2c.Bus, error) {
	return openShared(h, &h.i2c, name, i2creg.Open)
}

// SPI opens the SPI port called name: "" for the first one, or a name such
// as "/dev/spidev0.0" or "SPI0.0". A port can be connected once, so two
// sensors cannot share one.
func (h *HostBuses) SPI(name string) (spi.Port, error) {
	return openShared(h, &h.spi, name, spireg.Open)
}

// openShared returns the bus called name from opened, opening it with open
// the first time.
func openShared[T any](h *HostBuses, opened *map[string]T, name string, open func(string) (T, error)) (T, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var none T
	if err := h.init(); err != nil {
		return none, err
	}
	if b, ok := (*opened)[name]; ok {
		return b, nil
	}
	b, err := open(name)
	if err != nil {
		return none, err
	}
	if *opened == nil {
		*opened = map[string]T{}
	}
	(*opened)[name] = b
	return b, nil
}

// GPIO returns the pin called name, such as "GPIO17" or a board pin name.
func (h *HostBuses) GPIO(name string) (gpio.PinIO, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.init(); err != nil {
		return nil, err
	}
	p := gpioreg.ByName(name)
	if p == nil {
		return nil, fmt.Errorf("sensor: no GPIO pin named %q on this host", name)
	}
	return p, nil
}

// Close closes every bus HostBuses opened. It is idempotent; the buses
// cannot be used afterwards.
func (h *HostBuses) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	errs := closeAll(nil, "I2C bus", h.i2c)
	errs = closeAll(errs, "SPI port", h.spi)
	h.i2c, h.spi = nil, nil
	return errors.Join(errs...)
}

// closeAll closes every bus in opened and appends the errors to errs.
func closeAll[T io.Closer](errs []error, what string, opened map[string]T) []error {
	for name, b := range opened {
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sensor: close %s %s: %w", what, busName(name), err))
		}
	}
	return errs
}

package chips

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/spi"
)

// Board is a simulated node's hardware: named I²C buses, SPI ports and
// GPIO pins, handed out by name as firmware/sensor's Buses interface asks
// (I2C, SPI, GPIO). The name "" means the first bus or port added, like
// periph's registries; a pin always needs its name. It is safe for
// concurrent use.
type Board struct {
	i2c  named[i2c.Bus]
	spi  named[spi.Port]
	gpio named[gpio.PinIO]
}

// named holds one kind of part by name.
type named[T any] struct {
	mu    sync.Mutex
	names []string // in the order added
	items map[string]T
}

func (n *named[T]) add(kind, name string, v T) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if name == "" {
		return fmt.Errorf("chips: board: %s needs a name", kind)
	}
	if _, dup := n.items[name]; dup {
		return fmt.Errorf("chips: board: %s %q added twice", kind, name)
	}
	if n.items == nil {
		n.items = make(map[string]T)
	}
	n.items[name] = v
	n.names = append(n.names, name)
	return nil
}

func (n *named[T]) get(kind, name string, allowDefault bool) (T, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if name == "" && allowDefault && len(n.names) > 0 {
		name = n.names[0]
	}
	v, ok := n.items[name]
	if !ok {
		have := slices.Sorted(slices.Values(n.names))
		return v, fmt.Errorf("%w: board has no %s %q (has: %s)", ErrNotFound, kind, name, strings.Join(have, ", "))
	}
	return v, nil
}

// NewBoard returns a board with nothing on it.
func NewBoard() *Board { return &Board{} }

// AddI2C adds an I²C bus (usually a *Bus) under name.
func (b *Board) AddI2C(name string, bus i2c.Bus) error {
	return b.i2c.add("i2c bus", name, bus)
}

// AddSPI adds an SPI port (such as an *MCP3008) under name.
func (b *Board) AddSPI(name string, p spi.Port) error {
	return b.spi.add("spi port", name, p)
}

// AddGPIO adds a pin (such as a *PulsePin) under name.
func (b *Board) AddGPIO(name string, p gpio.PinIO) error {
	return b.gpio.add("gpio pin", name, p)
}

// I2C returns the bus called name ("" for the first one).
func (b *Board) I2C(name string) (i2c.Bus, error) {
	return b.i2c.get("i2c bus", name, true)
}

// SPI returns the port called name ("" for the first one).
func (b *Board) SPI(name string) (spi.Port, error) {
	return b.spi.get("spi port", name, true)
}

// GPIO returns the pin called name.
func (b *Board) GPIO(name string) (gpio.PinIO, error) {
	return b.gpio.get("gpio pin", name, false)
}

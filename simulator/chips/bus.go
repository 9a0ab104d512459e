package chips

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Target is one device on a simulated I²C bus: it answers the transactions
// addressed to it. Tx writes w then reads len(r) bytes, as one transaction
// with a repeated start; an error means the target NACKed (wrap ErrNACK).
// BME280 and SHT3x are Targets.
type Target interface {
	Tx(w, r []byte) error
}

// Bus is a simulated I²C bus: it implements i2c.BusCloser and routes each
// transaction to the Target attached at its address. Like a real bus it
// serialises transactions and answers a NACK (an error wrapping ErrNACK
// that names the address) when nothing is attached there.
type Bus struct {
	name string

	mu      sync.Mutex
	targets []attached
	speed   physic.Frequency
	closed  bool
}

type attached struct {
	addr uint16
	t    Target
	fail int // NACK this many more transactions
}

var _ i2c.BusCloser = (*Bus)(nil)

// NewBus returns an empty bus; name is what String reports (such as
// "i2c-1").
func NewBus(name string) *Bus {
	return &Bus{name: name, speed: 100 * physic.KiloHertz}
}

// Attach connects t at the 7-bit address addr.
func (b *Bus) Attach(addr uint16, t Target) error {
	if addr > 0x7F {
		return fmt.Errorf("chips: %s: address 0x%x is not a 7-bit address", b.name, addr)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.targets {
		if a.addr == addr {
			return fmt.Errorf("%w: %s: 0x%02x", ErrAddressInUse, b.name, addr)
		}
	}
	b.targets = append(b.targets, attached{addr: addr, t: t})
	return nil
}

// FailNext makes the next n transactions to addr fail with a NACK, as a
// glitching bus or a browned-out chip would.
func (b *Bus) FailNext(addr uint16, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.targets {
		if b.targets[i].addr == addr {
			b.targets[i].fail = n
		}
	}
}

// Tx implements i2c.Bus.
func (b *Bus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("chips: %s: %w", b.name, ErrClosed)
	}
	for i := range b.targets {
		a := &b.targets[i]
		if a.addr != addr {
			continue
		}
		if a.fail > 0 {
			a.fail--
			return fmt.Errorf("%w: %s: address 0x%02x (injected fault)", ErrNACK, b.name, addr)
		}
		if err := a.t.Tx(w, r); err != nil {
			return fmt.Errorf("%s: address 0x%02x: %w", b.name, addr, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %s: no device at address 0x%02x", ErrNACK, b.name, addr)
}

// SetSpeed implements i2c.Bus: 10 kHz to 3.4 MHz (standard mode to high
// speed mode).
func (b *Bus) SetSpeed(f physic.Frequency) error {
	if f < 10*physic.KiloHertz || f > 3400*physic.KiloHertz {
		return fmt.Errorf("chips: %s: speed %s outside 10kHz..3.4MHz", b.name, f)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.speed = f
	return nil
}

// Speed returns the speed last set (100 kHz by default).
func (b *Bus) Speed() physic.Frequency {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.speed
}

// String implements i2c.Bus.
func (b *Bus) String() string { return b.name }

// Close implements i2c.BusCloser: later transactions fail with ErrClosed.
// It is idempotent.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

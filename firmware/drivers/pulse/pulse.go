// Package pulse counts edges on a GPIO input: the pulse output of a water,
// gas or electricity meter, a flow sensor or a rain gauge.
//
// New configures the pin as an input with edge detection; Run waits for
// edges (periph's gpio.PinIn.WaitForEdge, woken at least every 100 ms to
// notice cancellation) and counts them until its context is cancelled or
// Halt is called. Count may be read at any time from any goroutine.
//
// Debouncing is by timestamps: an edge that comes less than Opts.Debounce
// after the last counted edge is contact bounce and is not counted. The
// timestamps are taken when WaitForEdge returns, so debouncing is only as
// precise as the scheduler; keep Debounce well below the shortest real
// pulse period. Limits: edges that the kernel coalesces while Run is busy
// are lost, so this suits meters up to a few hundred pulses per second.
package pulse

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// Opts configures the input. Zero fields take their defaults, so gpio.Float
// (not the zero gpio.PullNoChange) asks for no pull resistor.
type Opts struct {
	Edge     gpio.Edge     // edges to count; default gpio.FallingEdge
	Pull     gpio.Pull     // default gpio.PullUp, for open-collector outputs
	Debounce time.Duration // ignore edges closer than this to the last counted one; default 0
}

// DefaultOpts holds the defaults.
var DefaultOpts = Opts{Edge: gpio.FallingEdge, Pull: gpio.PullUp}

// ErrRunning means Run was called while another Run on the same Dev was
// still counting.
var ErrRunning = errors.New("pulse: already running")

// waitTimeout bounds each WaitForEdge so that Run notices cancellation.
const waitTimeout = 100 * time.Millisecond

// Dev counts edges on one pin.
type Dev struct {
	pin     gpio.PinIn
	opts    Opts
	count   atomic.Uint64
	running atomic.Bool
	halted  atomic.Bool
}

// New configures pin as an input with opts' pull and edge detection (nil
// opts means DefaultOpts). Counting starts with Run.
func New(pin gpio.PinIn, opts *Opts) (*Dev, error) {
	o := DefaultOpts
	if opts != nil {
		if opts.Edge != gpio.NoEdge {
			o.Edge = opts.Edge
		}
		if opts.Pull != gpio.PullNoChange {
			o.Pull = opts.Pull
		}
		o.Debounce = opts.Debounce
	}
	switch {
	case o.Edge < gpio.RisingEdge || o.Edge > gpio.BothEdges:
		return nil, fmt.Errorf("pulse: invalid edge %d (want RisingEdge, FallingEdge or BothEdges)", o.Edge)
	case o.Pull > gpio.PullUp:
		return nil, fmt.Errorf("pulse: invalid pull %d (want Float, PullDown or PullUp)", o.Pull)
	case o.Debounce < 0:
		return nil, fmt.Errorf("pulse: debounce %s is negative", o.Debounce)
	}
	if err := pin.In(o.Pull, o.Edge); err != nil {
		return nil, fmt.Errorf("pulse: configure %s as input (%s, %s): %w", pin, o.Pull, o.Edge, err)
	}
	return &Dev{pin: pin, opts: o}, nil
}

// Run counts edges until ctx is done or Halt is called, then returns nil.
// Only one Run may count at a time; another returns ErrRunning.
func (d *Dev) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer d.running.Store(false)
	var last time.Time
	counted := false
	for ctx.Err() == nil && !d.halted.Load() {
		if !d.pin.WaitForEdge(waitTimeout) {
			continue
		}
		now := time.Now()
		if counted && now.Sub(last) < d.opts.Debounce {
			continue
		}
		counted, last = true, now
		d.count.Add(1)
	}
	return nil
}

// Count returns the number of edges counted since New.
func (d *Dev) Count() uint64 {
	return d.count.Load()
}

// Halt stops counting: a running Run returns within 100 ms, and later ones
// return at once. Count keeps its value.
func (d *Dev) Halt() error {
	d.halted.Store(true)
	if err := d.pin.Halt(); err != nil {
		return fmt.Errorf("pulse: halt %s: %w", d.pin, err)
	}
	return nil
}

// String names the counter and its pin.
func (d *Dev) String() string {
	return fmt.Sprintf("Pulse{%s, %s}", d.pin, d.opts.Edge)
}

package chips

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
)

const (
	// DefaultEdgeQueue is how many undelivered edges a PulsePin keeps, as
	// the kernel's GPIO event FIFO does; older ones are overruns.
	DefaultEdgeQueue = 16
	// pulseIdleRecheck is how often a pin whose rate is zero (or NaN)
	// checks the rate again.
	pulseIdleRecheck = 100 * time.Millisecond
	// pulseMaxRate caps the pulse rate, per second.
	pulseMaxRate = 100_000
	// pulseCatchUp bounds the transitions simulated in one go; beyond, the
	// pin jumps ahead and counts the skipped edges as overruns.
	pulseCatchUp = 1 << 16
)

// PulsePinOpts configures a simulated pulse output.
type PulsePinOpts struct {
	Metric string // rate in pulses per second; default MetricFlow
	// Number is what Number reports; 0 means the digits ending the name
	// ("GPIO17" is 17), or -1 if there are none.
	Number int
	// ActiveHigh makes pulses high on a low line; the default is an
	// open-collector output: a high line pulled low during each pulse, so
	// a pulse starts with a falling edge.
	ActiveHigh bool
	Queue      int // undelivered edges kept; default DefaultEdgeQueue
}

// PulsePin simulates a GPIO input wired to a pulse output (a flow meter):
// a gpio.PinIO whose line carries pulses at the rate the Source gives for
// the metric, 50% duty cycle. The rate is read at the start of each pulse
// and sets that pulse's period; a rate of 0 (or NaN) pauses the pulses.
//
// Edges are detected after In with an edge: each edge of the selected
// kind is queued (at most Queue; beyond that they are overruns) and
// WaitForEdge returns true once per queued edge, so no edge is lost while
// the reader is busy for a short while. WaitForEdge sleeps with a timer
// until the next edge, the timeout or Halt, burning no CPU; Halt wakes
// waiters (they return false) and disables edge detection until the next
// In. Without edge detection WaitForEdge waits out its timeout. The Clock
// must advance like real time (time.Now, possibly offset, or a synctest
// bubble), since waiting uses timers. Out and PWM fail: the pin is an
// input.
type PulsePin struct {
	name       string
	number     int
	src        Source
	clock      Clock
	metric     string
	activeHigh bool
	queueMax   int

	mu        sync.Mutex
	pull      gpio.Pull
	edge      gpio.Edge
	halt      chan struct{}
	inPulse   bool
	nextStart int64 // Unix ns of the next pulse start (or rate check)
	end       int64 // Unix ns of the end of the current pulse, if inPulse
	queued    int
	overruns  uint64
	pulses    uint64
}

var _ gpio.PinIO = (*PulsePin)(nil)

// NewPulsePin returns a pin named name (such as "GPIO17") whose first pulse starts one period
// after clock's current time.
func NewPulsePin(name string, src Source, clock Clock, opts *PulsePinOpts) *PulsePin {
	var o PulsePinOpts
	if opts != nil {
		o = *opts
	}
	p := &PulsePin{
		name: name, number: o.Number, src: src, clock: clock.orNow(), metric: o.Metric,
		activeHigh: o.ActiveHigh, queueMax: o.Queue,
		pull: gpio.PullDown, halt: make(chan struct{}),
	}
	if p.metric == "" {
		p.metric = MetricFlow
	}
	if p.number == 0 {
		p.number = pinNumber(name)
	}
	if p.queueMax <= 0 {
		p.queueMax = DefaultEdgeQueue
	}
	now := p.clock().UnixNano()
	p.nextStart = now + p.period(now)
	return p
}

// period is the pulse period for the rate at ns, or the idle recheck
// interval when the rate is not positive.
func (p *PulsePin) period(ns int64) int64 {
	r := p.src.Value(p.metric, time.Unix(0, ns))
	if !(r > 0) {
		return int64(pulseIdleRecheck)
	}
	return int64(math.Round(1e9 / math.Min(r, pulseMaxRate)))
}

// counts reports whether the edge detection counts pulse starts (start) or
// pulse ends (!start).
func (p *PulsePin) counts(start bool) bool {
	if p.edge == gpio.BothEdges {
		return true
	}
	startEdge := gpio.FallingEdge
	if p.activeHigh {
		startEdge = gpio.RisingEdge
	}
	return (p.edge == startEdge) == start && p.edge != gpio.NoEdge
}

func (p *PulsePin) detect(start bool) {
	if !p.counts(start) {
		return
	}
	if p.queued < p.queueMax {
		p.queued++
	} else {
		p.overruns++
	}
}

// advance simulates the line up to now; p.mu is held.
func (p *PulsePin) advance(now int64) {
	for n := 0; ; n++ {
		if n == pulseCatchUp {
			// Far behind (nobody looked for a long time): jump.
			per := p.period(now)
			if p.counts(true) || p.counts(false) {
				p.overruns += uint64(max(now-p.nextStart, 0) / per)
				p.queued = p.queueMax
			}
			p.inPulse, p.nextStart = false, now+per
			return
		}
		if p.inPulse {
			if p.end > now {
				return
			}
			p.inPulse = false
			p.detect(false)
			continue
		}
		if p.nextStart > now {
			return
		}
		start := p.nextStart
		r := p.src.Value(p.metric, time.Unix(0, start))
		if !(r > 0) {
			p.nextStart = start + int64(pulseIdleRecheck)
			continue
		}
		per := int64(math.Round(1e9 / math.Min(r, pulseMaxRate)))
		p.inPulse, p.end, p.nextStart = true, start+per/2, start+per
		p.pulses++
		p.detect(true)
	}
}

// nextWake is when the next detected edge may come; p.mu is held.
func (p *PulsePin) nextWake() int64 {
	if p.inPulse && p.counts(false) && (!p.counts(true) || p.end < p.nextStart) {
		return p.end
	}
	return p.nextStart
}

// In implements gpio.PinIn: it sets the pull (PullNoChange keeps it) and
// the edges to detect, dropping edges queued before.
func (p *PulsePin) In(pull gpio.Pull, edge gpio.Edge) error {
	if pull > gpio.PullUp || edge > gpio.BothEdges || edge < gpio.NoEdge {
		return fmt.Errorf("chips: %s: invalid pull %s or edge %s", p.name, pull, edge)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance(p.clock().UnixNano())
	if pull != gpio.PullNoChange {
		p.pull = pull
	}
	p.edge = edge
	p.queued = 0
	return nil
}

// Read implements gpio.PinIn.
func (p *PulsePin) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance(p.clock().UnixNano())
	return p.level()
}

func (p *PulsePin) level() gpio.Level {
	return gpio.Level(p.inPulse == p.activeHigh)
}

// WaitForEdge implements gpio.PinIn: it returns true for a detected edge,
// false on timeout (a negative timeout waits forever) or Halt.
func (p *PulsePin) WaitForEdge(timeout time.Duration) bool {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		p.mu.Lock()
		halt := p.halt
		wait := time.Duration(-1)
		if p.edge != gpio.NoEdge {
			now := p.clock().UnixNano()
			p.advance(now)
			if p.queued > 0 {
				p.queued--
				p.mu.Unlock()
				return true
			}
			wait = time.Duration(p.nextWake() - now)
		}
		p.mu.Unlock()
		if timeout == 0 {
			return false
		}
		var wake <-chan time.Time
		var t *time.Timer
		if wait >= 0 {
			t = time.NewTimer(wait)
			wake = t.C
		}
		select {
		case <-wake:
			continue
		case <-deadline:
		case <-halt:
		}
		if t != nil {
			t.Stop()
		}
		return false
	}
}

// Pull implements gpio.PinIn.
func (p *PulsePin) Pull() gpio.Pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pull
}

// DefaultPull implements gpio.PinIn: pull-down, like most SoC GPIOs.
func (p *PulsePin) DefaultPull() gpio.Pull { return gpio.PullDown }

// Out implements gpio.PinOut: it fails.
func (p *PulsePin) Out(gpio.Level) error { return fmt.Errorf("%w: %s", ErrInputOnly, p.name) }

// PWM implements gpio.PinOut: it fails.
func (p *PulsePin) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("%w: %s", ErrInputOnly, p.name)
}

// Halt implements conn.Resource: it wakes waiting WaitForEdge calls (they
// return false) and disables edge detection.
func (p *PulsePin) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.halt)
	p.halt = make(chan struct{})
	p.edge = gpio.NoEdge
	p.queued = 0
	return nil
}

// String implements pin.Pin.
func (p *PulsePin) String() string { return p.name }

// Name implements pin.Pin.
func (p *PulsePin) Name() string { return p.name }

// Number implements pin.Pin (see PulsePinOpts.Number).
func (p *PulsePin) Number() int { return p.number }

func pinNumber(name string) int {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(name[i:])
	if err != nil {
		return -1
	}
	return n
}

// Function implements pin.Pin: "In/High" or "In/Low".
func (p *PulsePin) Function() string {
	return "In/" + p.Read().String()
}

// Stats returns the pulses generated so far (up to the last look at the
// line) and the detected edges lost because the queue was full.
func (p *PulsePin) Stats() (pulses, overruns uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance(p.clock().UnixNano())
	return p.pulses, p.overruns
}

package chips

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// mcpMaxSpeed is the MCP3008's fastest clock (VDD = 5 V, datasheet 1.0).
const mcpMaxSpeed = 3600 * physic.KiloHertz

// mcpMaxTx is the largest transfer, as Linux spidev's default bufsiz.
const mcpMaxTx = 4096

// MCP3008Opts configures a simulated MCP3008. The zero value (or nil) means
// VRef 3.3 V and channel n reading metric "voltage<n>".
type MCP3008Opts struct {
	Name     string    // what String reports; default "MCP3008"
	VRef     float64   // volts; default 3.3
	Channels [8]string // metric of each input; empty means MetricVoltagePrefix + n
}

// MCP3008 simulates a Microchip MCP3008 8-channel 10-bit ADC. It is an
// spi.PortCloser: a driver connects (once, as with Linux spidev) in mode 0
// or 3 with 8-bit words at up to 3.6 MHz, and each Tx is one frame with
// chip select held low.
//
// The frame is simulated bit by bit (datasheet section 5 and figure 6-1):
// the first 1 on DIN is the start bit, then SGL/DIFF, D2, D1, D0; one clock
// later DOUT sends a null bit, then B9..B0, then B1..B9 (LSB first) and
// zeros. DOUT reads 0 when not driven. So the 3-byte exchange out [0x01,
// SGL<<7|ch<<4, 0] reads in [0, B9 B8, B7..B0]. The conversion samples the
// Source when the channel is known: code = round(1024·V/VRef) clamped to
// 0..1023 (NaN reads 0); differential pairs per table 5-2, a negative
// difference reading 0.
type MCP3008 struct {
	name    string
	src     Source
	clock   Clock
	vref    float64
	metrics [8]string

	mu        sync.Mutex
	connected bool
	closed    bool
	limit     physic.Frequency
}

var _ spi.PortCloser = (*MCP3008)(nil)

// NewMCP3008 returns an MCP3008 reading voltages from src at the times
// clock gives.
func NewMCP3008(src Source, clock Clock, opts *MCP3008Opts) *MCP3008 {
	var o MCP3008Opts
	if opts != nil {
		o = *opts
	}
	c := &MCP3008{name: o.Name, src: src, clock: clock.orNow(), vref: o.VRef, metrics: o.Channels, limit: mcpMaxSpeed}
	if c.name == "" {
		c.name = "MCP3008"
	}
	if !(c.vref > 0) {
		c.vref = 3.3
	}
	for i, m := range c.metrics {
		if m == "" {
			c.metrics[i] = MetricVoltagePrefix + strconv.Itoa(i)
		}
	}
	return c
}

// String implements spi.Port.
func (c *MCP3008) String() string { return c.name }

// Connect implements spi.Port. It fails on a second call (until Close), on a mode other than 0 or
// 3 (half duplex and LSB first included), on words other than 8 bits, and
// on a clock above 3.6 MHz, which the real part cannot follow.
func (c *MCP3008) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, fmt.Errorf("chips: %s: %w", c.name, ErrClosed)
	case c.connected:
		return nil, fmt.Errorf("chips: %s: Connect can only be called once", c.name)
	case f < 0:
		return nil, fmt.Errorf("chips: %s: negative speed %s", c.name, f)
	case f > mcpMaxSpeed:
		return nil, fmt.Errorf("chips: %s: speed %s above the MCP3008's %s", c.name, f, mcpMaxSpeed)
	case mode&^spi.NoCS != spi.Mode0 && mode&^spi.NoCS != spi.Mode3:
		return nil, fmt.Errorf("chips: %s: mode %s not supported (want Mode0 or Mode3)", c.name, mode)
	case mode&spi.NoCS != 0:
		return nil, fmt.Errorf("chips: %s: the MCP3008 needs chip select (mode %s)", c.name, mode)
	case bits != 8:
		return nil, fmt.Errorf("chips: %s: %d-bit words not supported (want 8)", c.name, bits)
	}
	c.connected = true
	return &mcpConn{chip: c}, nil
}

// LimitSpeed implements spi.PortCloser.
func (c *MCP3008) LimitSpeed(f physic.Frequency) error {
	if f <= 0 {
		return fmt.Errorf("chips: %s: speed limit %s must be positive", c.name, f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = min(f, mcpMaxSpeed)
	return nil
}

// Close implements spi.PortCloser: the connection stops working. It is
// idempotent.
func (c *MCP3008) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// mcpConn is a connection to an MCP3008: an spi.Conn and conn.Limits.
type mcpConn struct {
	chip *MCP3008
}

var (
	_ spi.Conn    = (*mcpConn)(nil)
	_ conn.Limits = (*mcpConn)(nil)
)

func (m *mcpConn) String() string { return m.chip.name }

func (m *mcpConn) Duplex() conn.Duplex { return conn.Full }

func (m *mcpConn) MaxTxSize() int { return mcpMaxTx }

// Tx is one frame: w is clocked out while r is clocked in. w and r must
// have the same length unless one is empty (nil w sends zeros).
func (m *mcpConn) Tx(w, r []byte) error {
	if err := m.check(w, r); err != nil {
		return err
	}
	var f mcpFrame
	return m.chip.run(&f, w, r)
}

// TxPackets runs packets in order; chip select stays low across a packet
// with KeepCS, so its frame continues in the next packet.
func (m *mcpConn) TxPackets(p []spi.Packet) error {
	var f mcpFrame
	for i, pk := range p {
		if pk.BitsPerWord != 0 && pk.BitsPerWord != 8 {
			return fmt.Errorf("chips: %s: packet %d: %d-bit words not supported", m.chip.name, i, pk.BitsPerWord)
		}
		if err := m.check(pk.W, pk.R); err != nil {
			return fmt.Errorf("packet %d: %w", i, err)
		}
		if err := m.chip.run(&f, pk.W, pk.R); err != nil {
			return err
		}
		if !pk.KeepCS {
			f = mcpFrame{}
		}
	}
	return nil
}

var errMcpLengths = errors.New("chips: MCP3008: w and r must have the same length")

func (m *mcpConn) check(w, r []byte) error {
	if len(w) != 0 && len(r) != 0 && len(w) != len(r) {
		return errMcpLengths
	}
	if max(len(w), len(r)) > mcpMaxTx {
		return fmt.Errorf("chips: %s: transfer of %d bytes exceeds %d", m.chip.name, max(len(w), len(r)), mcpMaxTx)
	}
	return nil
}

// mcpFrame is the state of one chip-select-low frame.
type mcpFrame struct {
	started bool
	n       int // clocks since the start bit
	cfg     byte
	code    uint16
}

// run clocks w through the frame, writing DOUT to r.
func (c *MCP3008) run(f *mcpFrame, w, r []byte) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return fmt.Errorf("chips: %s: %w", c.name, ErrClosed)
	}
	n := max(len(w), len(r))
	for i := range n {
		var in, out byte
		if i < len(w) {
			in = w[i]
		}
		for b := 7; b >= 0; b-- {
			out = out<<1 | f.clock(c, in>>b&1)
		}
		if i < len(r) {
			r[i] = out
		}
	}
	return nil
}

// clock runs one SPI clock: din is the bit on DIN, the result the bit on
// DOUT.
func (f *mcpFrame) clock(c *MCP3008, din byte) byte {
	if !f.started {
		f.started = din == 1
		return 0
	}
	f.n++
	switch {
	case f.n <= 4: // SGL/DIFF, D2, D1, D0
		f.cfg = f.cfg<<1 | din
		if f.n == 4 {
			f.code = c.convert(f.cfg)
		}
		return 0
	case f.n <= 6: // end of sampling, null bit
		return 0
	case f.n <= 16: // B9..B0
		return byte(f.code>>(16-f.n)) & 1
	case f.n <= 25: // B1..B9
		return byte(f.code>>(f.n-16)) & 1
	}
	return 0
}

// convert samples the input selected by cfg (SGL/DIFF D2 D1 D0).
func (c *MCP3008) convert(cfg byte) uint16 {
	at := c.clock()
	ch := int(cfg & 7)
	var v float64
	if cfg&8 != 0 {
		v = c.src.Value(c.metrics[ch], at)
	} else {
		// Pair ch: even ch is CH(ch)+ CH(ch+1)-, odd the other way round.
		base := ch &^ 1
		plus, minus := base, base+1
		if ch&1 == 1 {
			plus, minus = minus, plus
		}
		v = c.src.Value(c.metrics[plus], at) - c.src.Value(c.metrics[minus], at)
	}
	return adcCode(v, c.vref)
}

// adcCode is round(1024·v/vref) clamped to 0..1023; NaN is 0.
func adcCode(v, vref float64) uint16 {
	x := math.Round(v * 1024 / vref)
	if !(x > 0) {
		return 0
	}
	return uint16(min(x, 1023))
}

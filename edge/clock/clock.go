// Package clock tells the gateway's wall-clock time and whether it can be
// trusted, so that readings say so (protocol.FlagClockUnsynced) rather than
// the agent inventing or correcting timestamps.
//
// A Clock distrusts the wall clock when
//
//   - it is unset: earlier than a floor (the build's commit time when the
//     binary records one, else 2024-01-01), as on a gateway without a
//     real-time clock that booted without network;
//   - the kernel says it is unsynchronised (Linux adjtimex: TIME_ERROR or
//     STA_UNSYNC), but only with Options.RequireNTP: many gateways run
//     without NTP, so the state is always reported (Status.Kernel) and
//     flags readings only on request;
//   - it jumped: between two observations the wall clock moved by more than
//     Options.JumpThreshold (default 2 s) more or less than the monotonic
//     clock did (allowing the kernel's 500 ppm maximum slew on top). Each
//     jump is logged with its size and readings are flagged for
//     Options.Grace (default 1 min) after it, measured on the monotonic
//     clock.
//
// Observations happen on every Now and Status call, so a health check that
// calls Status notices a jump even while no readings flow. A Clock starts
// no goroutine. Suspend-to-RAM stops Go's monotonic clock but not the wall
// clock, so a resumed gateway reports (and flags) a forward jump the length
// of its sleep.
package clock

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// Defaults.
const (
	DefaultJumpThreshold = 2 * time.Second
	DefaultGrace         = time.Minute
	DefaultKernelCheck   = 10 * time.Second
	// MaxSlewPPM is the fastest the Linux kernel slews the clock (500 µs/s):
	// a wall clock that drifts by this much against the monotonic clock is
	// being adjusted, not jumping.
	MaxSlewPPM = 500
)

// DefaultFloor is the earliest wall-clock time a Clock trusts when the
// binary records no later commit time: no reading of this project can be
// older.
var DefaultFloor = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// KernelState is the kernel's view of clock synchronisation (NTP, PTP,
// chrony: whatever disciplines the clock through adjtimex).
type KernelState uint8

const (
	KernelUnknown  KernelState = iota // not Linux, or adjtimex failed
	KernelSynced                      // TIME_OK (or a leap state) and not STA_UNSYNC
	KernelUnsynced                    // TIME_ERROR or STA_UNSYNC
)

func (k KernelState) String() string {
	switch k {
	case KernelSynced:
		return "synchronised"
	case KernelUnsynced:
		return "unsynchronised"
	}
	return "unknown"
}

// Options configure a Clock. The zero value is ready to use.
type Options struct {
	// Floor is the earliest wall-clock time that is trusted; zero means
	// the build's VCS commit time when recorded and later than
	// DefaultFloor, else DefaultFloor.
	Floor time.Time
	// RequireNTP flags readings while the kernel does not report the clock
	// synchronised (including when it cannot tell, e.g. off Linux).
	RequireNTP bool
	// JumpThreshold is the smallest wall-clock step counted as a jump;
	// zero means DefaultJumpThreshold.
	JumpThreshold time.Duration
	// Grace is how long readings are flagged after a jump; zero means
	// DefaultGrace.
	Grace time.Duration
	// KernelCheck is how often the kernel state is read (a syscall); zero
	// means DefaultKernelCheck.
	KernelCheck time.Duration
	// Logger receives jump and state-change reports; nil means
	// slog.Default().
	Logger *slog.Logger

	// Wall reads the wall clock; nil means time.Now. Only its wall time is
	// used: the monotonic clock is always the runtime's (time.Now, fake in
	// a testing/synctest bubble), so a test steps Wall to simulate a jump.
	Wall func() time.Time
	// Kernel reads the kernel's synchronisation state; nil means adjtimex
	// on Linux and KernelUnknown elsewhere.
	Kernel func() (KernelState, error)
}

// Status is the clock's health, for /healthz and metrics.
type Status struct {
	// Synced is false when Now flags readings with FlagClockUnsynced.
	Synced bool
	// Reason says why the clock is not trusted; "" when Synced.
	Reason string
	// Kernel is the kernel's synchronisation state (reported whether or
	// not RequireNTP makes it count).
	Kernel KernelState
	// Wall is the wall-clock time of this observation.
	Wall time.Time
	// LastJump is the size of the last jump (negative: backwards); zero
	// when none was seen. LastJumpAt is the wall-clock time just after it.
	LastJump   time.Duration
	LastJumpAt time.Time
	// Jumps counts the jumps seen since New.
	Jumps uint64
}

// Clock is the gateway's clock with sanity checks. It is safe for
// concurrent use.
type Clock struct {
	floor     time.Time
	threshold time.Duration
	grace     time.Duration
	kcheck    time.Duration
	requireNT bool
	log       *slog.Logger
	wall      func() time.Time
	kernel    func() (KernelState, error)
	start     time.Time // monotonic origin

	mu         sync.Mutex
	lastWall   int64         // ns since epoch at the last observation
	lastMono   time.Duration // monotonic time of the last observation
	graceUntil time.Duration // monotonic; readings flagged before it
	lastJump   time.Duration
	lastJumpAt time.Time
	jumps      uint64
	jumpLogAt  time.Duration // monotonic time of the last jump log
	jumpLogged bool
	suppressed int // jumps not logged since jumpLogAt
	kstate     KernelState
	kcheckedAt time.Duration
	kchecked   bool
	kerrLogged bool
	why        distrust // causes at the last observation, to log changes once
}

// New returns a Clock. It reads the wall clock once to set the baseline
// that the first Now compares against.
func New(o Options) *Clock {
	c := &Clock{
		floor:     o.Floor,
		threshold: o.JumpThreshold,
		grace:     o.Grace,
		kcheck:    o.KernelCheck,
		requireNT: o.RequireNTP,
		log:       o.Logger,
		wall:      o.Wall,
		kernel:    o.Kernel,
		start:     time.Now(),
	}
	if c.floor.IsZero() {
		c.floor = buildFloor()
	}
	if c.threshold <= 0 {
		c.threshold = DefaultJumpThreshold
	}
	if c.grace <= 0 {
		c.grace = DefaultGrace
	}
	if c.kcheck <= 0 {
		c.kcheck = DefaultKernelCheck
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "clock")
	if c.wall == nil {
		c.wall = time.Now
	}
	if c.kernel == nil {
		c.kernel = kernelState
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w, m := c.read()
	c.lastWall, c.lastMono = w.UnixNano(), m
	c.checkKernel(m)
	return c
}

// buildFloor is the VCS commit time the binary records, when later than
// DefaultFloor.
func buildFloor() time.Time {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key != "vcs.time" {
				continue
			}
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil && t.After(DefaultFloor) {
				return t
			}
		}
	}
	return DefaultFloor
}

// Floor returns the earliest wall-clock time the clock trusts.
func (c *Clock) Floor() time.Time { return c.floor }

// Now returns the wall-clock time in µs since the epoch and
// protocol.FlagClockUnsynced when the clock is not trusted. It never
// changes the time it read.
func (c *Clock) Now() (us int64, flags protocol.Flags) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, m := c.read()
	reason := c.observe(w, m)
	if reason != "" {
		flags = protocol.FlagClockUnsynced
	}
	return w.UnixMicro(), flags
}

// Status observes the clock and reports its health.
func (c *Clock) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, m := c.read()
	reason := c.observe(w, m)
	return Status{
		Synced:     reason == "",
		Reason:     reason,
		Kernel:     c.kstate,
		Wall:       w.Round(0),
		LastJump:   c.lastJump,
		LastJumpAt: c.lastJumpAt,
		Jumps:      c.jumps,
	}
}

// read returns the wall clock and the monotonic time since New.
func (c *Clock) read() (wall time.Time, mono time.Duration) {
	now := time.Now()
	mono = now.Sub(c.start)
	if c.wall == nil {
		return now, mono
	}
	return c.wall(), mono
}

// observe updates the jump detector and the kernel state with one reading
// of both clocks and returns why the clock is not trusted ("" if it is).
// c.mu is held.
func (c *Clock) observe(w time.Time, m time.Duration) string {
	wallNs := w.UnixNano()
	dm := m - c.lastMono
	if dm >= 0 { // an observation older than the last (a racing caller) is not compared
		skew := time.Duration(wallNs-c.lastWall) - dm
		tolerance := c.threshold + dm/1_000_000*MaxSlewPPM
		if skew > tolerance || skew < -tolerance {
			c.jumped(skew, w, m)
		}
		c.lastWall, c.lastMono = wallNs, m
	}
	c.checkKernel(m)

	var reasons []string
	var why distrust
	if w.Before(c.floor) {
		why |= distrustUnset
		reasons = append(reasons, fmt.Sprintf("wall clock %s is before %s: never set (no RTC, no NTP yet?)",
			w.UTC().Format(time.RFC3339), c.floor.UTC().Format(time.RFC3339)))
	}
	if c.requireNT && c.kstate != KernelSynced {
		why |= distrustKernel
		reasons = append(reasons, "kernel reports the clock "+c.kstate.String()+" and require_ntp is set")
	}
	if m < c.graceUntil {
		why |= distrustJump
		reasons = append(reasons, fmt.Sprintf("wall clock jumped by %s at %s; trusted again %s after it",
			c.lastJump, c.lastJumpAt.UTC().Format(time.RFC3339), c.grace))
	}
	reason := strings.Join(reasons, "; ")
	// Log changes once: a jump logs itself (rate-limited) in jumped.
	switch {
	case why == c.why:
	case why == 0:
		c.log.Info("wall clock trusted again", "wall", w.UTC().Format(time.RFC3339Nano))
	case why&^c.why&^distrustJump != 0:
		c.log.Warn("wall clock not trusted: readings are flagged clock-unsynced", "reason", reason)
	}
	c.why = why
	return reason
}

// distrust says why the clock is not trusted, one bit per cause.
type distrust uint8

const (
	distrustUnset distrust = 1 << iota
	distrustKernel
	distrustJump
)

// jumped records a jump of size skew seen at wall time w, monotonic m.
func (c *Clock) jumped(skew time.Duration, w time.Time, m time.Duration) {
	c.jumps++
	c.lastJump, c.lastJumpAt = skew, w
	c.graceUntil = m + c.grace
	// Log every jump once, but at most one line per grace period when the
	// clock keeps stepping.
	if c.jumpLogged && m-c.jumpLogAt < c.grace {
		c.suppressed++
		return
	}
	c.log.Warn("wall clock jumped: readings are flagged clock-unsynced for the grace period",
		"jump", skew, "wall", w.UTC().Format(time.RFC3339Nano), "grace", c.grace,
		"jumps_not_logged", c.suppressed)
	c.jumpLogged, c.jumpLogAt, c.suppressed = true, m, 0
}

// checkKernel reads the kernel state when the last reading is older than
// the check interval. c.mu is held.
func (c *Clock) checkKernel(m time.Duration) {
	if c.kchecked && m-c.kcheckedAt < c.kcheck {
		return
	}
	st, err := c.kernel()
	if err != nil && !c.kerrLogged {
		c.log.Warn("cannot read the kernel's clock synchronisation state", "err", err)
		c.kerrLogged = true
	}
	if c.kchecked && st != c.kstate {
		c.log.Info("kernel clock synchronisation changed", "from", c.kstate, "to", st)
	}
	c.kstate, c.kcheckedAt, c.kchecked = st, m, true
}

package clock_test

import (
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/edge/clock"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// fakeWall is a wall clock that follows the (bubble's) monotonic clock
// plus an offset the test steps.
type fakeWall struct {
	base   time.Time // wall time at the bubble's start
	start  time.Time
	offset atomic.Int64
}

func newFakeWall(base time.Time) *fakeWall { return &fakeWall{base: base, start: time.Now()} }

func (w *fakeWall) Now() time.Time {
	return w.base.Add(time.Since(w.start) + time.Duration(w.offset.Load()))
}

func (w *fakeWall) Step(d time.Duration) { w.offset.Add(int64(d)) }

func newLogger(b *testenv.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

var synced = func() (clock.KernelState, error) { return clock.KernelSynced, nil }

var t2026 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestUnsetClockFlagged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testenv.Buffer
		wall := newFakeWall(time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC)) // an RTC-less board after boot
		c := clock.New(clock.Options{Wall: wall.Now, Kernel: synced, Logger: newLogger(&logs)})
		us, flags := c.Now()
		if flags&protocol.FlagClockUnsynced == 0 {
			t.Fatalf("Now() on a 1970 clock: flags %b, want FlagClockUnsynced", flags)
		}
		if want := wall.Now().UnixMicro(); us != want {
			t.Errorf("Now() = %d, want the wall clock unchanged (%d)", us, want)
		}
		st := c.Status()
		if st.Synced || !strings.Contains(st.Reason, "never set") {
			t.Errorf("Status() = %+v, want not synced, reason saying the clock was never set", st)
		}
		// NTP sets the clock: a forward jump, flagged for the grace period.
		wall.Step(t2026.Sub(wall.Now()))
		if _, flags := c.Now(); flags&protocol.FlagClockUnsynced == 0 {
			t.Error("Now() right after the clock was set: not flagged (a jump is)")
		}
		time.Sleep(clock.DefaultGrace)
		if _, flags := c.Now(); flags != 0 {
			t.Errorf("Now() after the grace period: flags %b, want 0 (%s)", flags, c.Status().Reason)
		}
		if n := strings.Count(logs.String(), "never set"); n != 1 {
			t.Errorf("'never set' logged %d times, want once:\n%s", n, logs.String())
		}
	})
}

func TestFloorIsBuildTimeOrDefault(t *testing.T) {
	c := clock.New(clock.Options{Kernel: synced})
	if c.Floor().Before(clock.DefaultFloor) {
		t.Errorf("Floor() = %s, before DefaultFloor", c.Floor())
	}
	f := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c = clock.New(clock.Options{Floor: f, Kernel: synced})
	if _, flags := c.Now(); flags&protocol.FlagClockUnsynced == 0 {
		t.Error("clock before an explicit floor in 2030 not flagged")
	}
}

func TestJump(t *testing.T) {
	for _, tc := range []struct {
		name string
		step time.Duration
		jump bool
	}{
		{"forward an hour", time.Hour, true},
		{"backward an hour", -time.Hour, true},
		{"forward 3s", 3 * time.Second, true},
		{"backward 2.5s", -2500 * time.Millisecond, true},
		{"forward 1s (below threshold)", time.Second, false},
		{"backward 1.9s (below threshold)", -1900 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs testenv.Buffer
				wall := newFakeWall(t2026)
				c := clock.New(clock.Options{Wall: wall.Now, Kernel: synced, Logger: newLogger(&logs)})
				time.Sleep(10 * time.Second)
				if _, flags := c.Now(); flags != 0 {
					t.Fatalf("steady clock flagged: %s", c.Status().Reason)
				}
				time.Sleep(time.Second)
				wall.Step(tc.step)
				for range 100 { // many readings: the jump is logged once
					if _, flags := c.Now(); (flags&protocol.FlagClockUnsynced != 0) != tc.jump {
						t.Fatalf("after stepping %s: flags %b, want flagged=%v", tc.step, flags, tc.jump)
					}
				}
				st := c.Status()
				if !tc.jump {
					if st.Jumps != 0 || !st.Synced {
						t.Errorf("Status() = %+v, want synced, no jumps", st)
					}
					return
				}
				if st.Synced || st.Jumps != 1 || st.LastJump < tc.step-time.Millisecond || st.LastJump > tc.step+time.Millisecond {
					t.Errorf("Status() = %+v, want not synced, 1 jump of %s", st, tc.step)
				}
				if !strings.Contains(st.Reason, "jumped") {
					t.Errorf("Reason %q does not mention the jump", st.Reason)
				}
				if n := strings.Count(logs.String(), "wall clock jumped"); n != 1 {
					t.Errorf("jump logged %d times, want once:\n%s", n, logs.String())
				}
				if !strings.Contains(logs.String(), "jump="+tc.step.String()) {
					t.Errorf("log does not give the jump's size %s:\n%s", tc.step, logs.String())
				}
				time.Sleep(clock.DefaultGrace - time.Second)
				if _, flags := c.Now(); flags == 0 {
					t.Error("not flagged within the grace period")
				}
				time.Sleep(time.Second)
				if _, flags := c.Now(); flags != 0 {
					t.Errorf("still flagged after the grace period: %s", c.Status().Reason)
				}
				if st := c.Status(); !st.Synced || st.LastJump == 0 || st.LastJumpAt.IsZero() {
					t.Errorf("Status() after grace = %+v, want synced and the last jump kept", st)
				}
			})
		})
	}
}

func TestJumpOptionsAndSlew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wall := newFakeWall(t2026)
		c := clock.New(clock.Options{Wall: wall.Now, Kernel: synced, JumpThreshold: 500 * time.Millisecond, Grace: 5 * time.Second})
		// Slewing at the kernel's maximum (500 ppm) for an hour moves the
		// wall clock 1.8s against the monotonic one: not a jump.
		time.Sleep(time.Hour)
		wall.Step(1700 * time.Millisecond)
		if _, flags := c.Now(); flags != 0 {
			t.Errorf("an hour's slew flagged as a jump: %s", c.Status().Reason)
		}
		wall.Step(600 * time.Millisecond)
		if _, flags := c.Now(); flags == 0 {
			t.Error("600ms step with a 500ms threshold not flagged")
		}
		time.Sleep(5 * time.Second)
		if _, flags := c.Now(); flags != 0 {
			t.Errorf("flagged after a 5s grace: %s", c.Status().Reason)
		}
	})
}

func TestJumpSeenByStatusWithoutReadings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wall := newFakeWall(t2026)
		c := clock.New(clock.Options{Wall: wall.Now, Kernel: synced})
		time.Sleep(time.Minute)
		wall.Step(-time.Hour)
		if st := c.Status(); st.Synced || st.Jumps != 1 {
			t.Errorf("Status() = %+v, want the jump seen by a health check", st)
		}
	})
}

func TestKernelState(t *testing.T) {
	for _, require := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			var state atomic.Int32
			state.Store(int32(clock.KernelUnsynced))
			kernel := func() (clock.KernelState, error) { return clock.KernelState(state.Load()), nil }
			wall := newFakeWall(t2026)
			c := clock.New(clock.Options{Wall: wall.Now, Kernel: kernel, RequireNTP: require, KernelCheck: 10 * time.Second})
			_, flags := c.Now()
			if got := flags&protocol.FlagClockUnsynced != 0; got != require {
				t.Errorf("RequireNTP=%v, kernel unsynchronised: flagged=%v", require, got)
			}
			if st := c.Status(); st.Kernel != clock.KernelUnsynced {
				t.Errorf("Status().Kernel = %s, want reported even when not required", st.Kernel)
			}
			state.Store(int32(clock.KernelSynced))
			time.Sleep(10 * time.Second)
			if _, flags := c.Now(); flags != 0 {
				t.Errorf("RequireNTP=%v: flagged after the kernel synchronised: %s", require, c.Status().Reason)
			}
			if st := c.Status(); st.Kernel != clock.KernelSynced || !st.Synced {
				t.Errorf("Status() = %+v", st)
			}
		})
	}
	// A kernel that cannot tell counts as unsynchronised when required.
	synctest.Test(t, func(t *testing.T) {
		wall := newFakeWall(t2026)
		c := clock.New(clock.Options{Wall: wall.Now, RequireNTP: true, Logger: newLogger(&testenv.Buffer{}),
			Kernel: func() (clock.KernelState, error) { return clock.KernelUnknown, errors.New("no adjtimex") }})
		if _, flags := c.Now(); flags == 0 {
			t.Error("RequireNTP with an unknown kernel state: not flagged")
		}
	})
}

func TestRealKernel(t *testing.T) {
	c := clock.New(clock.Options{})
	st := c.Status()
	t.Logf("this machine: %+v", st)
	if runtime.GOOS == "linux" && st.Kernel == clock.KernelUnknown {
		t.Error("adjtimex gave no state on Linux")
	}
	if st.Wall.Before(clock.DefaultFloor) {
		t.Skip("this machine's clock is unset")
	}
	if !st.Synced {
		t.Errorf("a set clock without RequireNTP is not trusted: %s", st.Reason)
	}
}

func TestConcurrent(t *testing.T) {
	c := clock.New(clock.Options{Kernel: synced})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var last int64
			for range 1000 {
				us, _ := c.Now()
				if us < last-int64(time.Second/time.Microsecond) {
					t.Errorf("time went back: %d after %d", us, last)
					return
				}
				last = us
			}
			c.Status()
		})
	}
	wg.Wait()
	if st := c.Status(); st.Jumps != 0 {
		t.Errorf("jumps seen on a steady clock under concurrency: %+v", st)
	}
}

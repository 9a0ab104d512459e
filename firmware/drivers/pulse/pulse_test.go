package pulse_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/tributary-iot/tributary/firmware/drivers/drivertest"
	"github.com/tributary-iot/tributary/firmware/drivers/pulse"
)

// recPin records how the driver configures the pin.
type recPin struct {
	*gpiotest.Pin
	pull  gpio.Pull
	edge  gpio.Edge
	halts int
}

func (p *recPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.pull, p.edge = pull, edge
	return p.Pin.In(pull, edge)
}

func (p *recPin) Halt() error {
	p.halts++
	return p.Pin.Halt()
}

func newPin() *recPin {
	return &recPin{Pin: &gpiotest.Pin{N: "GPIO17", Num: 17, EdgesChan: make(chan gpio.Level)}}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     *pulse.Opts
		wantPull gpio.Pull
		wantEdge gpio.Edge
		wantMsg  string
	}{
		{name: "defaults", wantPull: gpio.PullUp, wantEdge: gpio.FallingEdge},
		{name: "zero opts", opts: &pulse.Opts{}, wantPull: gpio.PullUp, wantEdge: gpio.FallingEdge},
		{name: "rising, pull-down", opts: &pulse.Opts{Edge: gpio.RisingEdge, Pull: gpio.PullDown}, wantPull: gpio.PullDown, wantEdge: gpio.RisingEdge},
		{name: "both, floating", opts: &pulse.Opts{Edge: gpio.BothEdges, Pull: gpio.Float}, wantPull: gpio.Float, wantEdge: gpio.BothEdges},
		{name: "bad edge", opts: &pulse.Opts{Edge: 7}, wantMsg: "invalid edge"},
		{name: "bad pull", opts: &pulse.Opts{Pull: 9}, wantMsg: "invalid pull"},
		{name: "negative debounce", opts: &pulse.Opts{Debounce: -time.Millisecond}, wantMsg: "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pin := newPin()
			d, err := pulse.New(pin, tc.opts)
			if drivertest.CheckErr(t, "New", err, nil, tc.wantMsg) {
				return
			}
			if pin.pull != tc.wantPull || pin.edge != tc.wantEdge {
				t.Errorf("In(%s, %s), want In(%s, %s)", pin.pull, pin.edge, tc.wantPull, tc.wantEdge)
			}
			if !strings.Contains(d.String(), "GPIO17") {
				t.Errorf("String() = %q, want the pin's name", d.String())
			}
		})
	}
}

func TestNewPinError(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO4"} // no EdgesChan: In with an edge fails
	if _, err := pulse.New(pin, nil); err == nil || !strings.Contains(err.Error(), "GPIO4") {
		t.Errorf("New error = %v, want one naming the pin", err)
	}
}

func TestRunCounts(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		debounce time.Duration
		gaps     []time.Duration // time before each edge
		want     uint64
	}{
		{name: "no edges", want: 0},
		{name: "every edge without debounce", gaps: []time.Duration{0, ms, ms, 0}, want: 4},
		{name: "slow meter, waits span timeouts", gaps: []time.Duration{time.Second, 250 * ms, 3 * time.Second}, want: 3},
		{
			name: "bounces ignored", debounce: 10 * ms,
			gaps: []time.Duration{0, 2 * ms, 3 * ms, 15 * ms, 5 * ms, 15 * ms},
			want: 3, // at 0, 20 and 40 ms; 2, 5 and 25 ms are bounces
		},
		{
			name: "gap equal to debounce counts", debounce: 10 * ms,
			gaps: []time.Duration{0, 10 * ms, 10 * ms},
			want: 3,
		},
		{
			name: "measured from the last counted edge", debounce: 10 * ms,
			gaps: []time.Duration{0, 6 * ms, 6 * ms}, // 12 ms after the first
			want: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pin := newPin()
				d, err := pulse.New(pin, &pulse.Opts{Debounce: tc.debounce})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- d.Run(ctx) }()
				for _, gap := range tc.gaps {
					time.Sleep(gap)
					pin.EdgesChan <- gpio.Low
				}
				synctest.Wait()
				if got := d.Count(); got != tc.want {
					t.Errorf("Count() = %d, want %d", got, tc.want)
				}
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run after cancel = %v, want nil", err)
				}
			})
		})
	}
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, err := pulse.New(newPin(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		synctest.Wait()
		if err := d.Run(ctx); !errors.Is(err, pulse.ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		// The first Run is over: counting may start again.
		ctx2, cancel2 := context.WithCancel(t.Context())
		go func() { done <- d.Run(ctx2) }()
		synctest.Wait()
		cancel2()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func TestHalt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := newPin()
		d, err := pulse.New(pin, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(t.Context()) }()
		pin.EdgesChan <- gpio.Low
		pin.EdgesChan <- gpio.High
		t0 := time.Now()
		if err := d.Halt(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Run after Halt = %v, want nil", err)
		}
		if waited := time.Since(t0); waited > 100*time.Millisecond {
			t.Errorf("Run took %s to notice Halt, want at most 100ms", waited)
		}
		if pin.halts != 1 {
			t.Errorf("pin halted %d times, want 1", pin.halts)
		}
		if got := d.Count(); got != 2 {
			t.Errorf("Count() after Halt = %d, want 2", got)
		}
		if err := d.Run(t.Context()); err != nil {
			t.Errorf("Run after Halt = %v, want nil at once", err)
		}
	})
}

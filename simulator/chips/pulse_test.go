package chips_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/tributary-iot/tributary/firmware/drivers/pulse"
	"github.com/tributary-iot/tributary/simulator/chips"
	"github.com/tributary-iot/tributary/simulator/model"
)

// flowAt is a model device whose flow is exactly rate pulses per second.
func flowAt(t *testing.T, rate float64) *model.Device {
	return device(t, 1, "meter", time.Now(), model.WithProfile(model.Flow, model.Profile{Base: rate, Max: 1e6}))
}

// TestPulseDriver runs the real pulse driver against the pin: counts are
// exact for a known rate.
func TestPulseDriver(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate float64
		opts *pulse.Opts
		want uint64
	}{
		{"falling edges", 100, nil, 100},
		{"rising edges", 100, &pulse.Opts{Edge: gpio.RisingEdge}, 99},
		{"both edges", 100, &pulse.Opts{Edge: gpio.BothEdges}, 199},
		{"slow meter", 0.5, nil, 0},
		{"fast meter", 800, nil, 800},
		{"stopped", 0, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var clockCalls atomic.Int64
				clock := func() time.Time { clockCalls.Add(1); return time.Now() }
				pin := chips.NewPulsePin("GPIO17", flowAt(t, tc.rate), clock, nil)
				if pin.Number() != 17 {
					t.Errorf("Number() = %d, want 17", pin.Number())
				}
				d, err := pulse.New(pin, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- d.Run(ctx) }()
				// Pulses start (falling edge) every 1/rate s from
				// 1/rate s on and end (rising edge) half a period later.
				// Stop a quarter period after the second's last start.
				quarter := 5 * time.Millisecond
				if tc.rate > 0 {
					quarter = time.Duration(float64(time.Second) / tc.rate / 4)
				}
				time.Sleep(time.Second + quarter)
				synctest.Wait()
				if got := d.Count(); got != tc.want {
					t.Errorf("Count() = %d, want %d", got, tc.want)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				// No busy waiting: a handful of clock reads per edge and
				// per 100 ms wake-up of the driver.
				if n := clockCalls.Load(); n > int64(3*tc.want+50) {
					t.Errorf("%d clock reads for %d edges: busy waiting?", n, tc.want)
				}
			})
		})
	}
}

func TestPulsePinHalt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := chips.NewPulsePin("GPIO5", flowAt(t, 0), nil, nil)
		if err := pin.In(gpio.PullUp, gpio.FallingEdge); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if pin.WaitForEdge(250 * time.Millisecond) {
			t.Error("edge with rate 0")
		}
		if d := time.Since(start); d != 250*time.Millisecond {
			t.Errorf("WaitForEdge returned after %s, want the 250ms timeout", d)
		}
		got := make(chan bool)
		go func() { got <- pin.WaitForEdge(-1) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		if err := pin.Halt(); err != nil {
			t.Fatal(err)
		}
		if <-got {
			t.Error("WaitForEdge returned true on Halt")
		}
		// Edge detection is off after Halt: a wait lasts its timeout.
		start = time.Now()
		if pin.WaitForEdge(time.Second) || time.Since(start) != time.Second {
			t.Error("WaitForEdge after Halt did not wait out its timeout")
		}
		if pin.WaitForEdge(0) {
			t.Error("WaitForEdge(0) found an edge")
		}
	})
}

func TestPulsePinLineAndQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := chips.NewPulsePin("GPIO6", flowAt(t, 10), nil, &chips.PulsePinOpts{Queue: 4})
		// Open collector: idle high, low for the first half of each 100 ms
		// period, starting at 100 ms.
		for _, c := range []struct {
			at   time.Duration
			want gpio.Level
		}{{50, gpio.High}, {120, gpio.Low}, {160, gpio.High}, {210, gpio.Low}} {
			time.Sleep(c.at*time.Millisecond - time.Duration(time.Now().UnixNano()%int64(time.Second)))
			if got := pin.Read(); got != c.want {
				t.Errorf("at %d ms: %s, want %s", c.at, got, c.want)
			}
		}
		if pin.Function() != "In/Low" || pin.Name() != "GPIO6" || pin.Number() != 6 || pin.DefaultPull() != gpio.PullDown {
			t.Errorf("Function %q Name %q Number %d DefaultPull %s", pin.Function(), pin.Name(), pin.Number(), pin.DefaultPull())
		}
		if err := pin.In(gpio.PullUp, gpio.BothEdges); err != nil {
			t.Fatal(err)
		}
		if pin.Pull() != gpio.PullUp {
			t.Errorf("Pull() = %s", pin.Pull())
		}
		// 10 pulses (20 edges) go by unread: the queue keeps 4.
		time.Sleep(time.Second)
		n := 0
		for pin.WaitForEdge(0) {
			n++
		}
		if pulses, overruns := pin.Stats(); n != 4 || overruns != 16 || pulses != 12 {
			t.Errorf("read %d queued edges, %d pulses, %d overruns; want 4, 12, 16", n, pulses, overruns)
		}
		if err := pin.Out(gpio.High); !errors.Is(err, chips.ErrInputOnly) {
			t.Errorf("Out: %v", err)
		}
		if err := pin.PWM(gpio.DutyHalf, 0); !errors.Is(err, chips.ErrInputOnly) {
			t.Errorf("PWM: %v", err)
		}
	})
}

package local_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/edge/local"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/chips"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is the true environment the simulated chips measure.
type env map[string]float64

func (e env) Value(metric string, _ time.Time) float64 { return e[metric] }

var room = env{chips.MetricTemperature: 21.5, chips.MetricHumidity: 40, chips.MetricPressure: 101325}

// testClock stamps the (bubble's) time with fixed flags.
type testClock struct{ flags protocol.Flags }

func (c testClock) Now() (int64, protocol.Flags) { return time.Now().UnixMicro(), c.flags }

// store records appended readings; delay makes each Append take that long.
type store struct {
	mu       sync.Mutex
	readings []protocol.Reading
	appends  int
	delay    time.Duration
	fail     bool
}

func (s *store) Append(ctx context.Context, rs []protocol.Reading) error {
	s.mu.Lock()
	s.appends++
	delay, fail := s.delay, s.fail
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errors.New("store: disk on fire")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readings = append(s.readings, rs...)
	return nil
}

func (s *store) get() []protocol.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]protocol.Reading(nil), s.readings...)
}

// byName groups readings by name.
func byName(rs []protocol.Reading) map[string][]protocol.Reading {
	m := map[string][]protocol.Reading{}
	for _, r := range rs {
		m[r.Name] = append(m[r.Name], r)
	}
	return m
}

// board returns a board with I²C bus "1" and the bus itself.
func board(t *testing.T) (*chips.Board, *chips.Bus) {
	t.Helper()
	b, bus := chips.NewBoard(), chips.NewBus("i2c-1")
	if err := b.AddI2C("1", bus); err != nil {
		t.Fatal(err)
	}
	return b, bus
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)) }

// run starts s and returns a stop that waits for Run to return.
func run(t *testing.T, s *local.Sampler) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// TestSchedule: a BME280 every 10 s and an SHT3x every 3 s on bus "1"
// produce readings on their own drift-free grids, stamped and flagged by
// the clock.
func TestSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, bus := board(t)
		if err := bus.Attach(0x76, chips.NewBME280(room, nil, nil)); err != nil {
			t.Fatal(err)
		}
		if err := bus.Attach(0x44, chips.NewSHT3x(room, nil, nil)); err != nil {
			t.Fatal(err)
		}
		st := &store{}
		reg := prometheus.NewRegistry()
		specs := []sensor.Spec{
			{Kind: "bme280", Name: "room", Bus: "1", Interval: 10 * time.Second},
			{Kind: "sht3x", Name: "shelf", Bus: "1", Interval: 3 * time.Second},
		}
		s, err := local.New(specs, b, "gw-1", st, testClock{flags: protocol.FlagClockUnsynced}, quiet(), local.WithRegisterer(reg))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now() // the bubble starts on a 10 s boundary
		stop := run(t, s)
		time.Sleep(95 * time.Second)
		stop()

		got := byName(st.get())
		for _, tc := range []struct {
			name     string
			unit     string
			value    float64
			tol      float64
			interval time.Duration
			n        int
		}{
			{"room.temperature", "Cel", 21.5, 0.05, 10 * time.Second, 10},
			{"room.humidity", "%RH", 40, 0.5, 10 * time.Second, 10},
			{"room.pressure", "Pa", 101325, 5, 10 * time.Second, 10},
			{"shelf.temperature", "Cel", 21.5, 0.05, 3 * time.Second, 32},
			{"shelf.humidity", "%RH", 40, 0.05, 3 * time.Second, 32},
		} {
			rs := got[tc.name]
			if len(rs) != tc.n {
				t.Errorf("%s: %d readings in 95s, want %d (every %s)", tc.name, len(rs), tc.n, tc.interval)
				continue
			}
			for i, r := range rs {
				if r.Device != "gw-1" || r.Unit != tc.unit || r.Kind != protocol.KindFloat || math.Abs(r.Value-tc.value) > tc.tol {
					t.Errorf("%s: reading %v", tc.name, &r)
				}
				if r.Time != r.Received || r.Flags != protocol.FlagClockUnsynced {
					t.Errorf("%s: time %d received %d flags %b: want both the clock's time, and its flags", tc.name, r.Time, r.Received, r.Flags)
				}
				// Samples start on the grid; the time is taken when Sense
				// returns (the chip's conversion takes a few ms).
				at := time.UnixMicro(r.Time).Sub(start)
				tick := time.Duration(i) * tc.interval
				if at < tick || at > tick+100*time.Millisecond {
					t.Errorf("%s: reading %d at %s, want just after %s: the schedule drifted", tc.name, i, at, tick)
				}
			}
		}
		stats := s.Stats()
		if stats.Samples != 42 || stats.Readings != 10*3+32*2 || stats.SenseErrors != 0 || stats.MissedTicks != 0 || stats.SensorsOpen != 0 {
			t.Errorf("Stats = %+v", stats)
		}
		mfs, err := reg.Gather()
		if err != nil || len(mfs) == 0 {
			t.Errorf("metrics: %d families, %v", len(mfs), err)
		}
	})
}

// TestOpenRetried: a sensor that is not there is retried with backoff and
// sampled once it appears (hot-plug).
func TestOpenRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, bus := board(t)
		st := &store{}
		var logs bytes.Buffer
		s, err := local.New([]sensor.Spec{{Kind: "bme280", Bus: "1", Addr: 0x77, Interval: time.Second}}, b, "gw-1", st,
			testClock{}, slog.New(slog.NewTextHandler(&logs, nil)), local.WithOpenBackoff(time.Second, 4*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, s)
		defer stop()
		time.Sleep(20 * time.Second)
		stats := s.Stats()
		// Attempts at 0 s, then after waits of 0.5-1, 1-2, then 2-4 s
		// each: 7 to 12 attempts in 20 s.
		if stats.OpenErrors < 7 || stats.OpenErrors > 12 || stats.SensorsOpen != 0 || len(st.get()) != 0 {
			t.Errorf("after 20s without the chip: Stats = %+v", stats)
		}
		if n := strings.Count(logs.String(), "sensor did not open"); n != 1 {
			t.Errorf("open failure logged %d times in 20s, want once (rate-limited):\n%s", n, logs.String())
		}
		if err := bus.Attach(0x77, chips.NewBME280(room, nil, nil)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		if stats := s.Stats(); stats.SensorsOpen != 1 || stats.Samples < 5 {
			t.Errorf("10s after plugging the chip in: Stats = %+v", stats)
		}
		if rs := byName(st.get()); len(rs["temperature"]) < 5 {
			t.Errorf("readings after plugging the chip in: %d temperatures", len(rs["temperature"]))
		}
	})
}

// TestSenseFailuresReopen: failing samples are counted; after ReopenAfter
// failures in a row the sensor is closed and opened again; sampling
// resumes.
func TestSenseFailuresReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, bus := board(t)
		if err := bus.Attach(0x76, chips.NewBME280(room, nil, nil)); err != nil {
			t.Fatal(err)
		}
		st := &store{}
		var logs bytes.Buffer
		s, err := local.New([]sensor.Spec{{Kind: "bme280", Bus: "1", Interval: time.Second}}, b, "gw-1", st, testClock{},
			slog.New(slog.NewTextHandler(&logs, nil)), local.WithReopenAfter(2))
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, s)
		defer stop()
		time.Sleep(2500 * time.Millisecond) // samples at 0, 1, 2 s
		bus.FailNext(0x76, 2)               // the samples at 3 and 4 s fail
		time.Sleep(10 * time.Second)
		stats := s.Stats()
		if stats.SenseErrors != 2 || stats.SensorsOpen != 1 || stats.Samples < 9 {
			t.Errorf("Stats = %+v, want 2 sense errors, the sensor open again, sampling resumed", stats)
		}
		if n := strings.Count(logs.String(), "closing it and opening it again"); n != 1 {
			t.Errorf("reopen logged %d times, want once:\n%s", n, logs.String())
		}
		if n := strings.Count(logs.String(), `msg="sensor open"`); n != 2 {
			t.Errorf("sensor opened %d times, want twice:\n%s", n, logs.String())
		}
	})
}

// TestSlowStore: ticks that pass while Append blocks are skipped and
// counted; a failing store is counted, not fatal.
func TestSlowStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, bus := board(t)
		if err := bus.Attach(0x76, chips.NewBME280(room, nil, nil)); err != nil {
			t.Fatal(err)
		}
		st := &store{delay: 35 * time.Second}
		s, err := local.New([]sensor.Spec{{Kind: "bme280", Bus: "1", Interval: 10 * time.Second}}, b, "gw-1", st, testClock{}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, s)
		defer stop()
		time.Sleep(36 * time.Second)
		if stats := s.Stats(); stats.MissedTicks != 3 || stats.Readings != 3 {
			t.Errorf("after a 35s Append: Stats = %+v, want 3 missed ticks (10, 20, 30s), one sample stored", stats)
		}
		st.mu.Lock()
		st.delay, st.fail = 0, true
		st.mu.Unlock()
		time.Sleep(20 * time.Second) // ticks at 40, 50 s
		if stats := s.Stats(); stats.AppendErrors != 2 || stats.Samples != 3 {
			t.Errorf("with a failing store: Stats = %+v, want 2 append errors", stats)
		}
	})
}

func TestNewValidates(t *testing.T) {
	b := chips.NewBoard()
	for _, tc := range []struct {
		specs  []sensor.Spec
		device string
		want   string
	}{
		{nil, "bad id", "device id"},
		{[]sensor.Spec{{Kind: "bme999"}}, "gw", "unknown kind"},
		{[]sensor.Spec{{Kind: "bme280", Interval: time.Millisecond}}, "gw", "sensor 1 (bme280): interval 1ms is outside"},
		{[]sensor.Spec{{Kind: "sht3x"}, {Kind: "bme280", Name: "x", Interval: 48 * time.Hour}}, "gw", `sensor 2 (bme280 "x"): interval`},
	} {
		if _, err := local.New(tc.specs, b, tc.device, &store{}, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v, %q) = %v, want an error containing %q", tc.specs, tc.device, err, tc.want)
		}
	}
	if _, err := local.New(nil, b, "gw", nil, nil, nil); err == nil {
		t.Error("New with a nil store succeeded")
	}
	s, err := local.New(nil, b, "gw", &store{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); err != nil {
		t.Errorf("Run with no sensors: %v", err)
	}
}

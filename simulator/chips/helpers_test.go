package chips_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/simulator/model"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// manualClock is a clock that moves only when told to.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock { return &manualClock{now: t0} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// constant is a Source with fixed values.
type constant map[string]float64

func (c constant) Value(metric string, _ time.Time) float64 { return c[metric] }

// device returns one device of a seeded model fleet that starts at start
// (inside a synctest bubble, time.Now() is in the year 2000).
func device(t testing.TB, seed int64, id string, start time.Time, opts ...model.Option) *model.Device {
	t.Helper()
	f, err := model.NewFleet(seed, start, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f.Device(id)
}

func near(got, want, tol float64) bool {
	d := got - want
	return d <= tol && d >= -tol
}

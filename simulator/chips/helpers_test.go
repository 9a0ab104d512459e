package chips_test

import (
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/simulator/model"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newManualClock() *testenv.Clock { return testenv.NewClock(t0) }

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

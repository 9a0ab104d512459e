package defaults_test

import (
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/defaults"
)

func TestSet(t *testing.T) {
	var c struct {
		N    int
		S    string
		D    time.Duration
		Keep int
	}
	c.Keep = 3
	defaults.Set(&c.N, 7)
	defaults.Set(&c.S, "x")
	defaults.Set(&c.D, time.Second)
	defaults.Set(&c.Keep, 9)
	if c.N != 7 || c.S != "x" || c.D != time.Second || c.Keep != 3 {
		t.Errorf("got %+v", c)
	}
}

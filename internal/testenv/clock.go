package testenv

import (
	"sync"
	"time"
)

// Clock is a clock for the Now option of a component under test: it moves
// only when told. It is safe for concurrent use. (Inside a synctest bubble
// the real clock is fake already; Clock is for tests and benchmarks that
// cannot run in one.)
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

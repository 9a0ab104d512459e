// Package backoff computes retry delays — exponential growth with jitter,
// so that a fleet retrying after the same outage does not come back in
// step — and sleeps them under a context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Jitter says how a delay d is spread.
type Jitter int

// Jitters, after "Exponential Backoff And Jitter" (AWS Architecture Blog).
const (
	// Equal draws from [d/2, d]: never much sooner than asked, still spread.
	Equal Jitter = iota
	// Full draws from [0, d]: the widest spread, for many clients
	// competing for one resource.
	Full
	// None waits exactly d (a single consumer that needs no spreading).
	None
)

// Apply returns d spread by j.
func (j Jitter) Apply(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	switch j {
	case Full:
		return rand.N(d + 1)
	case None:
		return d
	default:
		half := d / 2
		return half + rand.N(d-half+1)
	}
}

// Backoff is exponential backoff: the first delay is Initial, each next one
// Multiplier (default 2) times the previous, at most Max; Jitter spreads
// each delay returned. The zero Jitter is Equal. A Backoff is not safe for
// concurrent use.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     Jitter

	cur time.Duration
}

// Next grows the backoff and returns the next delay, jittered.
func (b *Backoff) Next() time.Duration { return b.Jitter.Apply(b.Grow()) }

// Grow grows the backoff one step and returns its new bound, unjittered
// (for callers that grow once per outage and jitter each wait themselves).
func (b *Backoff) Grow() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = max(b.Initial, time.Nanosecond)
	default:
		m := b.Multiplier
		if m <= 1 {
			m = 2
		}
		next := time.Duration(float64(b.cur) * m)
		if next < b.cur { // overflow
			next = time.Duration(1<<63 - 1)
		}
		b.cur = next
	}
	if b.Max > 0 && b.cur > b.Max {
		b.cur = b.Max
	}
	return b.cur
}

// Current is the bound of the last delay (0 before the first or after
// Reset).
func (b *Backoff) Current() time.Duration { return b.cur }

// Reset starts over at Initial (after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends and reports whether ctx is still live.
// A d of zero or less returns at once.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

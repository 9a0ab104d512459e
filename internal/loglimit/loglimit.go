// Package loglimit rate-limits a repeated log line: the first passes, then
// at most one per interval, each reporting how many were suppressed since
// the last one logged. A failing uplink or a flapping sensor then costs a
// line a minute, not a disk.
package loglimit

import (
	"sync"
	"time"
)

// DefaultEvery is the interval of a zero Every.
const DefaultEvery = time.Minute

// Limiter limits one kind of log line. The zero value is ready (one line
// per DefaultEvery); it is safe for concurrent use.
type Limiter struct {
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether to log now, and how many lines were suppressed
// since the last one allowed (to log with it, as "suppressed").
func (l *Limiter) Allow() (ok bool, suppressed int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return allow(now, every(l.Every), &l.last, &l.suppressed)
}

// Reset lets the next line through (after recovery, say, so that the next
// failure is reported at once).
func (l *Limiter) Reset() {
	l.mu.Lock()
	l.last, l.suppressed = time.Time{}, 0
	l.mu.Unlock()
}

// Keyed limits each of a small, fixed set of line kinds (reasons, sensor
// kinds) on its own. The zero value is ready; it is safe for concurrent
// use. Keys are kept for the Keyed's life: do not key by device id or
// anything else a remote party chooses.
type Keyed struct {
	Every time.Duration

	mu sync.Mutex
	m  map[string]*state
}

type state struct {
	last       time.Time
	suppressed int
}

// Allow is Limiter.Allow for the line kind key.
func (k *Keyed) Allow(key string) (ok bool, suppressed int) {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = make(map[string]*state)
	}
	s := k.m[key]
	if s == nil {
		s = &state{}
		k.m[key] = s
	}
	return allow(now, every(k.Every), &s.last, &s.suppressed)
}

func every(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultEvery
	}
	return d
}

func allow(now time.Time, every time.Duration, last *time.Time, suppressed *int) (bool, int) {
	if !last.IsZero() && now.Sub(*last) < every {
		*suppressed++
		return false, 0
	}
	n := *suppressed
	*last, *suppressed = now, 0
	return true, n
}

package sensor

import "time"

// The sampling grid, shared by the node runtime and the gateway's local
// sampling: ticks fall where the clock shows k·interval + phase, and a
// late sample skips (and counts) the ticks it overran instead of drifting.

// FirstTick returns the first tick at or after now: the instant at which
// the node's clock (wall, read at now) shows k·interval + phase.
func FirstTick(now, wall time.Time, interval, phase time.Duration) time.Time {
	off := (wall.UnixNano() - int64(phase)) % int64(interval)
	if off < 0 {
		off += int64(interval)
	}
	if off == 0 {
		return now
	}
	return now.Add(interval - time.Duration(off))
}

// NextTick returns the tick after prev, a tick that was served and
// finished at now. Drift-free: ticks stay on the grid prev + k·interval.
// Ticks strictly before now were missed (the sample ran late or long):
// they are skipped and counted; a tick exactly at now is due now.
func NextTick(prev, now time.Time, interval time.Duration) (next time.Time, missed int) {
	next = prev.Add(interval)
	if !now.After(next) {
		return next, 0
	}
	n := (now.Sub(next) + interval - 1) / interval
	return next.Add(n * interval), int(n)
}

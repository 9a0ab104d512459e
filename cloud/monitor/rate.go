package monitor

import "time"

// rateSlots is the window of a rate, in whole seconds.
const rateSlots = 10

// rate counts events per second over the last rateSlots complete
// seconds: fixed memory, no goroutine. Events are counted at their stream
// arrival time, so a consumer catching up on a backlog does not show a
// burst that never happened.
type rate struct {
	sec [rateSlots + 1]int64 // the unix second each slot counts (+1: the current one)
	n   [rateSlots + 1]uint32
}

// add counts k events at time at (events older than the window the slot
// now holds are not counted).
func (r *rate) add(at time.Time, k int) {
	s := at.Unix()
	i := (s%(rateSlots+1) + rateSlots + 1) % (rateSlots + 1)
	switch {
	case r.sec[i] == s:
		r.n[i] += uint32(k)
	case r.sec[i] < s:
		r.sec[i], r.n[i] = s, uint32(k)
	}
}

// perSec is the mean rate over the rateSlots seconds before the current
// one (the current second is still filling, so it is left out).
func (r *rate) perSec(now time.Time) float64 {
	s := now.Unix()
	var sum uint64
	for i := range rateSlots + 1 {
		if d := s - r.sec[i]; d >= 1 && d <= rateSlots {
			sum += uint64(r.n[i])
		}
	}
	return float64(sum) / rateSlots
}

package sensor_test

import (
	"testing"
	"time"

	"github.com/tributary-iot/tributary/firmware/sensor"
)

var t0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFirstTick(t *testing.T) {
	now := t0.Add(time.Hour) // monotonic "now"; only differences matter
	for _, tc := range []struct {
		wall     time.Time
		interval time.Duration
		phase    time.Duration
		want     time.Duration // after now
	}{
		{t0, time.Second, 0, 0},
		{t0.Add(250 * time.Millisecond), time.Second, 0, 750 * time.Millisecond},
		{t0.Add(999 * time.Millisecond), time.Second, 0, time.Millisecond},
		{t0.Add(250 * time.Millisecond), time.Second, 300 * time.Millisecond, 50 * time.Millisecond},
		{t0.Add(350 * time.Millisecond), time.Second, 300 * time.Millisecond, 950 * time.Millisecond},
		{t0.Add(350 * time.Millisecond), time.Second, 2300 * time.Millisecond, 950 * time.Millisecond}, // phase mod interval
		{t0.Add(7 * time.Millisecond), 10 * time.Millisecond, 0, 3 * time.Millisecond},
		{time.Unix(-1, 0), 3 * time.Second, 0, time.Second}, // before 1970: still on the grid
	} {
		if got := sensor.FirstTick(now, tc.wall, tc.interval, tc.phase).Sub(now); got != tc.want {
			t.Errorf("FirstTick(wall %s, %s, phase %s) = now+%s, want now+%s",
				tc.wall.Format("15:04:05.000"), tc.interval, tc.phase, got, tc.want)
		}
	}
}

func TestNextTick(t *testing.T) {
	const iv = 100 * time.Millisecond
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for _, tc := range []struct {
		prev, now  time.Time
		next       time.Time
		wantMissed int
	}{
		{ms(0), ms(1), ms(100), 0},   // quick sample
		{ms(0), ms(99), ms(100), 0},  // slow but in time
		{ms(0), ms(100), ms(100), 0}, // finished exactly at the next tick: due now
		{ms(0), ms(101), ms(200), 1}, // the tick at 100 passed
		{ms(0), ms(250), ms(300), 2}, // 100 and 200 passed
		{ms(0), ms(300), ms(300), 2}, // 100 and 200 passed, 300 due now
		{ms(500), ms(1999), ms(2000), 14},
	} {
		next, missed := sensor.NextTick(tc.prev, tc.now, iv)
		if !next.Equal(tc.next) || missed != tc.wantMissed {
			t.Errorf("NextTick(prev %s, now %s) = %s, %d missed; want %s, %d",
				tc.prev.Sub(t0), tc.now.Sub(t0), next.Sub(t0), missed, tc.next.Sub(t0), tc.wantMissed)
		}
	}
}

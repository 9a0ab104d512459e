package backoff_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/internal/backoff"
)

func TestGrowth(t *testing.T) {
	b := backoff.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: backoff.None}
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next())
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != 100*time.Millisecond {
		t.Errorf("after Reset: %v", d)
	}
	m := backoff.Backoff{Initial: time.Second, Max: time.Hour, Multiplier: 1.5, Jitter: backoff.None}
	m.Next()
	if d := m.Next(); d != 1500*time.Millisecond {
		t.Errorf("multiplier 1.5: %v", d)
	}
	huge := backoff.Backoff{Initial: time.Duration(1 << 62), Jitter: backoff.None}
	huge.Next()
	if d := huge.Next(); d <= 0 {
		t.Errorf("overflow gave %v", d)
	}
}

func TestJitterBounds(t *testing.T) {
	d := 1000 * time.Millisecond
	for range 2000 {
		if j := backoff.Equal.Apply(d); j < d/2 || j > d {
			t.Fatalf("equal jitter %v outside [%v, %v]", j, d/2, d)
		}
		if j := backoff.Full.Apply(d); j < 0 || j > d {
			t.Fatalf("full jitter %v outside [0, %v]", j, d)
		}
	}
	if backoff.None.Apply(d) != d || backoff.Equal.Apply(0) != 0 || backoff.Full.Apply(-1) != 0 {
		t.Error("edge cases")
	}
	// Jitter must actually spread: 200 draws of Equal are not all alike.
	seen := map[time.Duration]bool{}
	for range 200 {
		seen[backoff.Equal.Apply(d)] = true
	}
	if len(seen) < 50 {
		t.Errorf("equal jitter gave only %d distinct delays in 200", len(seen))
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if !backoff.Sleep(t.Context(), 3*time.Second) || time.Since(start) != 3*time.Second {
			t.Errorf("slept %v", time.Since(start))
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start = time.Now()
		if backoff.Sleep(ctx, time.Hour) || time.Since(start) != time.Second {
			t.Errorf("cancelled sleep returned after %v", time.Since(start))
		}
		if backoff.Sleep(ctx, 0) {
			t.Error("Sleep(0) on a done context reported live")
		}
	})
}

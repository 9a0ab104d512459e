package testenv

import (
	"testing"
	"time"
)

// pollEvery is how often Poll and WaitFor check their condition.
const pollEvery = 20 * time.Millisecond

// Poll checks cond every few milliseconds until it holds (true) or timeout
// passes (false). It is for waiting on something that another process or
// goroutine does and that has no event to wait on, never for a delay.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// WaitFor is Poll that fails the test, naming what it waited for, when
// cond does not hold within timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("waited %s for %s", timeout, what)
	}
}

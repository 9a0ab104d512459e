package loglimit_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/internal/loglimit"
)

func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loglimit.Limiter // zero value: one a minute
		if ok, n := l.Allow(); !ok || n != 0 {
			t.Fatalf("first line: %v %d", ok, n)
		}
		for range 5 {
			time.Sleep(10 * time.Second)
			if ok, _ := l.Allow(); ok {
				t.Fatal("a second line within the minute passed")
			}
		}
		time.Sleep(10 * time.Second) // a minute after the first
		if ok, n := l.Allow(); !ok || n != 5 {
			t.Fatalf("after a minute: ok=%v suppressed=%d, want true 5", ok, n)
		}
		l.Reset()
		if ok, n := l.Allow(); !ok || n != 0 {
			t.Fatalf("after Reset: %v %d", ok, n)
		}
	})
}

func TestKeyed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := loglimit.Keyed{Every: time.Second}
		if ok, _ := k.Allow("a"); !ok {
			t.Fatal("first a")
		}
		if ok, _ := k.Allow("b"); !ok {
			t.Fatal("first b: keys are independent")
		}
		if ok, _ := k.Allow("a"); ok {
			t.Fatal("second a within Every")
		}
		time.Sleep(time.Second)
		if ok, n := k.Allow("a"); !ok || n != 1 {
			t.Fatalf("a after Every: %v %d", ok, n)
		}
	})
}

func TestConcurrent(t *testing.T) {
	var l loglimit.Limiter
	var k loglimit.Keyed
	var wg sync.WaitGroup
	allowed := make(chan bool, 800)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				ok, _ := l.Allow()
				allowed <- ok
				k.Allow("x")
			}
		})
	}
	wg.Wait()
	close(allowed)
	n := 0
	for ok := range allowed {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d lines allowed at once, want 1", n)
	}
}

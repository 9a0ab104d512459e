package uplink

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/internal/backoff"
)

// gate is the shared retry schedule: after a failure no request starts
// before notBefore. Every request, whichever batch it carries, waits at
// the gate, so an outage or a Retry-After pauses the whole uplink rather
// than each batch on its own.
type gate struct {
	mu        sync.Mutex
	notBefore time.Time
	backoff   backoff.Backoff // grown once per generation, reset by a success
	gen       uint64          // bumped whenever backoff grows
}

func newGate(cfg Backoff) gate {
	return gate{backoff: backoff.Backoff{Initial: cfg.Initial, Max: cfg.Max, Multiplier: cfg.Multiplier, Jitter: backoff.Full}}
}

// wait blocks until the gate is open or ctx is done.
func (g *gate) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		d := time.Until(g.notBefore)
		g.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// generation identifies the backoff state a request was sent under.
func (g *gate) generation() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen
}

// fail records a failed request sent under generation gen. The backoff
// grows once per generation, so concurrent requests failing in the same
// outage count once. The next request waits a full-jitter delay drawn from
// [0, backoff], or retryAfter (plus up to an eighth more, so gateways told
// the same time do not return in lockstep) when the cloud asked for it.
// It returns the delay chosen.
func (g *gate) fail(gen uint64, retryAfter time.Duration) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gen == g.gen {
		g.backoff.Grow()
		g.gen++
	}
	var d time.Duration
	if retryAfter > 0 {
		d = retryAfter + backoff.Full.Apply(retryAfter/8)
	} else {
		d = g.backoff.Jitter.Apply(g.backoff.Current())
	}
	if nb := time.Now().Add(d); nb.After(g.notBefore) {
		g.notBefore = nb
	}
	return d
}

// success resets the backoff; a pending Retry-After still applies.
func (g *gate) success() {
	g.mu.Lock()
	g.backoff.Reset()
	g.mu.Unlock()
}

func (g *gate) current() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.backoff.Current()
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date (RFC 9110 section 10.2.3). It returns 0 when absent or unreadable,
// and caps the delay at maxRetryAfter.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseUint(h, 10, 32); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

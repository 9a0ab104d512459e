package ingest

import (
	"context"
	"sync"
)

// keyLocks serialises the requests of one (gateway, epoch): two requests
// with overlapping seqs can never both write them. Entries live only
// while held or awaited, so the map is bounded by the requests in flight.
type keyLocks struct {
	mu sync.Mutex
	m  map[ackKey]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

func (l *keyLocks) ref(k ackKey) *keyLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	kl := l.m[k]
	if kl == nil {
		kl = &keyLock{ch: make(chan struct{}, 1)}
		l.m[k] = kl
	}
	kl.refs++
	return kl
}

func (l *keyLocks) unref(k ackKey, kl *keyLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if kl.refs--; kl.refs == 0 {
		delete(l.m, k)
	}
}

// acquire waits for k's lock until ctx is done.
func (l *keyLocks) acquire(ctx context.Context, k ackKey) (release func(), err error) {
	kl := l.ref(k)
	select {
	case kl.ch <- struct{}{}:
		return func() { <-kl.ch; l.unref(k, kl) }, nil
	case <-ctx.Done():
		l.unref(k, kl)
		return nil, ctx.Err()
	}
}

// tryAcquire takes k's lock if it is free.
func (l *keyLocks) tryAcquire(k ackKey) (release func(), ok bool) {
	kl := l.ref(k)
	select {
	case kl.ch <- struct{}{}:
		return func() { <-kl.ch; l.unref(k, kl) }, true
	default:
		l.unref(k, kl)
		return nil, false
	}
}

// gatewaySlots counts the requests of each gateway in progress. Entries
// live only while a request holds them, so the map is bounded by the
// requests in flight.
type gatewaySlots struct {
	mu sync.Mutex
	n  map[string]int
}

// tryAcquire takes one of gateway's max slots if one is free.
func (g *gatewaySlots) tryAcquire(gateway string, max int) (release func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == nil {
		g.n = make(map[string]int)
	}
	if g.n[gateway] >= max {
		return nil, false
	}
	g.n[gateway]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.n[gateway]--; g.n[gateway] <= 0 {
			delete(g.n, gateway)
		}
	}, true
}

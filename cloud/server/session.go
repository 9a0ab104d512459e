package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Admin session and login limits.
const (
	// MaxSessions bounds the sessions kept; beyond it, the one unused for
	// longest ends (tributary_admin_sessions_evicted_total).
	MaxSessions = 1024
	// LoginBurst login attempts from one source address are allowed at
	// once, then one per LoginRefill (tributary_admin_logins_total
	// {result="throttled"} beyond, answered 429 with Retry-After).
	LoginBurst  = 10
	LoginRefill = 6 * time.Second
	// maxLimited bounds the source addresses the login limiter tracks.
	maxLimited = 10_000
	// sessionBytes of randomness in a session id (the cookie's value).
	sessionBytes = 32
)

// session is one signed-in browser.
type session struct {
	user, credential string // credential: auth.Users.Verify's, checked on every request
	created, seen    time.Time
}

// sessions are the admin listener's sessions, in memory (a restart signs
// everyone out). The map is keyed by SHA-256 of the cookie's value, so
// neither a lookup's timing nor a heap dump gives a usable id away.
type sessions struct {
	ttl, idle time.Duration
	now       func() time.Time
	evicted   prometheus.Counter

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions(ttl, idle time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, idle: idle, now: now, m: map[[sha256.Size]byte]*session{},
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "tributary_admin_sessions_evicted_total",
			Help: "Admin sessions ended early because admin sessions were at their cap (MaxSessions)."})}
}

// collectors are the sessions' metrics.
func (ss *sessions) collectors() []prometheus.Collector {
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tributary_admin_sessions", Help: "Admin sessions open (signed-in browsers)."},
		func() float64 { ss.mu.Lock(); defer ss.mu.Unlock(); return float64(len(ss.m)) })
	return []prometheus.Collector{active, ss.evicted}
}

// create opens a session and returns the cookie's value.
func (ss *sessions) create(user, credential string) string {
	var id [sessionBytes]byte
	rand.Read(id[:]) // never fails (crypto/rand)
	value := base64.RawURLEncoding.EncodeToString(id[:])
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= MaxSessions {
		ss.evictLocked(now)
	}
	ss.m[sha256.Sum256([]byte(value))] = &session{user: user, credential: credential, created: now, seen: now}
	return value
}

// evictLocked drops the expired sessions, or else the one unused for
// longest.
func (ss *sessions) evictLocked(now time.Time) {
	if prune(ss.m, MaxSessions, func(s *session) bool { return ss.expired(s, now) }, func(s *session) time.Time { return s.seen }) {
		ss.evicted.Inc()
	}
}

// prune deletes m's stale entries and then, if m still holds max or more,
// the one with the earliest at; it reports whether it had to do that.
func prune[K comparable, V any](m map[K]V, max int, stale func(V) bool, at func(V) time.Time) bool {
	var oldest K
	var oldestAt time.Time
	for k, v := range m {
		if stale(v) {
			delete(m, k)
			continue
		}
		if a := at(v); oldestAt.IsZero() || a.Before(oldestAt) {
			oldest, oldestAt = k, a
		}
	}
	if len(m) < max {
		return false
	}
	delete(m, oldest)
	return true
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return !now.Before(s.created.Add(ss.ttl)) || !now.Before(s.seen.Add(ss.idle))
}

// lookup returns the session of a cookie's value, if it is open and
// fresh, and marks it used. An expired session is removed.
func (ss *sessions) lookup(value string) (session, bool) {
	if len(value) != base64.RawURLEncoding.EncodedLen(sessionBytes) {
		return session{}, false
	}
	k := sha256.Sum256([]byte(value))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[k]
	if !ok {
		return session{}, false
	}
	if ss.expired(s, now) {
		delete(ss.m, k)
		return session{}, false
	}
	s.seen = now
	return *s, true
}

// remove ends a session (logout, or its user is gone).
func (ss *sessions) remove(value string) {
	ss.mu.Lock()
	delete(ss.m, sha256.Sum256([]byte(value)))
	ss.mu.Unlock()
}

// loginLimiter is a token bucket per source address: LoginBurst attempts,
// refilled one per LoginRefill. It tracks at most maxLimited addresses;
// when full, those whose bucket has refilled are forgotten, or else the
// one idle longest.
type loginLimiter struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, m: map[string]*bucket{}}
}

// allow takes one attempt from key's bucket; when it is empty, it says
// how long until the next attempt is allowed.
func (l *loginLimiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxLimited {
			l.pruneLocked(now)
		}
		b = &bucket{tokens: LoginBurst, at: now}
		l.m[key] = b
	}
	b.tokens = min(LoginBurst, b.tokens+float64(now.Sub(b.at))/float64(LoginRefill))
	b.at = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(LoginRefill))
	}
	b.tokens--
	return true, 0
}

func (l *loginLimiter) pruneLocked(now time.Time) {
	prune(l.m, maxLimited, func(b *bucket) bool { return b.tokens+float64(now.Sub(b.at))/float64(LoginRefill) >= LoginBurst },
		func(b *bucket) time.Time { return b.at })
}

// sourceKey is the login limiter's key for a remote address: the IP, or
// its /64 for IPv6 (one host usually holds a whole /64).
func sourceKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

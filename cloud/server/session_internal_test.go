package server

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// At MaxSessions, a new session ends the expired ones, or else the one
// unused for longest, and counts it.
func TestSessionsBounded(t *testing.T) {
	clk := &fakeClock{time.Unix(1e9, 0)}
	ss := newSessions(time.Hour, 10*time.Minute, clk.now)
	values := make([]string, MaxSessions)
	for i := range values {
		values[i] = ss.create(fmt.Sprint("u", i), "c")
		clk.t = clk.t.Add(time.Millisecond)
	}
	if _, ok := ss.lookup(values[0]); !ok { // now the most recently used
		t.Fatal("first session not open")
	}
	extra := ss.create("extra", "c")
	if len(ss.m) != MaxSessions {
		t.Fatalf("%d sessions, want the cap %d", len(ss.m), MaxSessions)
	}
	if _, ok := ss.lookup(values[1]); ok {
		t.Error("the session unused for longest survived")
	}
	for _, v := range []string{values[0], values[2], extra} {
		if _, ok := ss.lookup(v); !ok {
			t.Errorf("session %s evicted", v)
		}
	}
	if got := counter(ss.evicted); got != 1 {
		t.Errorf("evicted %v, want 1", got)
	}
	// When some are expired, they go first and nothing is counted.
	clk.t = clk.t.Add(11 * time.Minute)
	fresh := ss.create("fresh", "c")
	if len(ss.m) != 1 || counter(ss.evicted) != 1 {
		t.Errorf("%d sessions, evicted %v: want the expired gone uncounted", len(ss.m), counter(ss.evicted))
	}
	if s, ok := ss.lookup(fresh); !ok || s.user != "fresh" {
		t.Error("fresh session")
	}
	for _, bad := range []string{"", "x", fresh + "A", fresh[:42]} {
		if _, ok := ss.lookup(bad); ok {
			t.Errorf("lookup(%q) ok", bad)
		}
	}
}

func TestLoginLimiter(t *testing.T) {
	clk := &fakeClock{time.Unix(1e9, 0)}
	l := newLoginLimiter(clk.now)
	for i := range LoginBurst {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait <= 0 || wait > LoginRefill {
		t.Fatalf("past the burst: %v, wait %v", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Error("another address refused")
	}
	clk.t = clk.t.Add(wait)
	if ok, _ := l.allow("a"); !ok {
		t.Error("refused after the advised wait")
	}
	if ok, _ := l.allow("a"); ok {
		t.Error("a second attempt allowed after one refill")
	}
	// The table is bounded: refilled buckets are forgotten first, then the
	// idlest.
	l = newLoginLimiter(clk.now)
	for i := range maxLimited {
		l.allow(fmt.Sprint("10.0.", i/256, ".", i%256))
		clk.t = clk.t.Add(time.Microsecond)
	}
	l.allow("192.0.2.1")
	if len(l.m) != maxLimited {
		t.Errorf("%d addresses tracked, want the cap %d", len(l.m), maxLimited)
	}
	if _, ok := l.m["10.0.0.0"]; ok {
		t.Error("the idlest address is still tracked")
	}
	clk.t = clk.t.Add(LoginRefill)
	l.allow("192.0.2.2")
	if len(l.m) != 1 {
		t.Errorf("%d tracked after every bucket refilled, want 1", len(l.m))
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5555":            "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:80": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.1]:1":      "192.0.2.1",
		"in-process":                "in-process",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/":                     "/",
		"/#/stream":             "/#/stream",
		"/api/v1/x?a=b":         "/api/v1/x?a=b",
		"":                      "/",
		"stream":                "/",
		"//evil.example":        "/",
		"/\\evil.example":       "/",
		"/a\\b":                 "/",
		"https://evil.example/": "/",
		"/x\r\nSet-Cookie: a":   "/",
		"/login?next=/":         "/",
		"/logout":               "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCredentialsInURL(t *testing.T) {
	for in, want := range map[string]string{
		"/api/v1/overview":         "",
		"/api/v1/devices?device=x": "",
		"/x?token=a":               "token",
		"/x?a=1&Access_Token=b":    "Access_Token",
		"/login?user=a&password=b": "password",
		"/x?api_key=k":             "api_key",
		"http://u:p@example.com/":  "userinfo",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := credentialsInURL(u); got != want {
			t.Errorf("credentialsInURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

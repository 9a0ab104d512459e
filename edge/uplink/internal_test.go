package uplink

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// The sizer never underestimates protocol.AppendBatch, and is close for
// typical sensor readings.
func TestSizerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		n := 1 + rng.IntN(300)
		rs := make([]protocol.Reading, n)
		t0 := int64(1_764_000_000_000_000)
		for i := range rs {
			r := &rs[i]
			r.Device = []string{"a", "node-17", strings.Repeat("x", 40)}[rng.IntN(3)]
			r.Name = []string{"temperature", "humidity", "p"}[rng.IntN(3)]
			r.Unit = []string{"", "Cel", "%RH"}[rng.IntN(3)]
			switch rng.IntN(6) {
			case 0:
				r.Kind, r.Str = protocol.KindString, strings.Repeat("s", rng.IntN(100))
			case 1:
				r.Kind, r.Data = protocol.KindData, make([]byte, rng.IntN(300))
			case 2:
				r.Kind, r.Bool = protocol.KindBool, true
			case 3:
				r.Kind, r.HasSum, r.Sum = protocol.KindNone, true, rng.NormFloat64()*1e6
			default:
				r.Kind, r.Value = protocol.KindFloat, []float64{21.37, 45.123, 101325.25, 3, -7, math.Pi, 1e300, -0.5}[rng.IntN(8)]
			}
			t0 += rng.Int64N(1 << uint(rng.IntN(40)))
			r.Time, r.Received = t0, t0+rng.Int64N(10_000)-5000
			r.Flags = protocol.Flags(rng.IntN(4))
		}
		var z sizer
		z.reset("gw-1")
		for i := range rs {
			z.add(&rs[i])
		}
		enc, err := protocol.AppendBatch(nil, &protocol.Batch{Gateway: "gw-1", Epoch: math.MaxUint64, FirstSeq: math.MaxUint32, Readings: rs})
		if err != nil {
			t.Fatal(err)
		}
		if z.total < len(enc) {
			t.Fatalf("round %d: bound %d < encoded %d", round, z.total, len(enc))
		}
	}
	rs := benchReadings(5000)
	var z sizer
	z.reset("gw-1")
	for i := range rs {
		z.add(&rs[i])
	}
	enc, _ := protocol.AppendBatch(nil, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: 1, Readings: rs})
	if ratio := float64(z.total) / float64(len(enc)); ratio > 1.5 {
		t.Errorf("bound %d is %.2f× the encoded %d for sensor readings", z.total, ratio, len(enc))
	}
}

// benchReadings: BME280 triples of several devices.
func benchReadings(n int) []protocol.Reading {
	rs := make([]protocol.Reading, 0, n)
	t0 := int64(1_764_000_000_000_000)
	for i := 0; len(rs) < n; i++ {
		dev := "node-" + string(rune('a'+i%26))
		tm := t0 + int64(i)*1000
		for _, v := range []struct {
			name, unit string
			v          float64
		}{{"temperature", "Cel", 21.37}, {"humidity", "%RH", 45.123}, {"pressure", "Pa", 101325.25}} {
			if len(rs) < n {
				rs = append(rs, protocol.Reading{Device: dev, Name: v.name, Unit: v.unit, Kind: protocol.KindFloat, Value: v.v, Time: tm, Received: tm + 3000})
			}
		}
	}
	return rs
}

// Encoding and compressing a batch allocates per batch, not per reading.
func TestEncodeAllocations(t *testing.T) {
	for _, comp := range []string{CompressionZstd, CompressionGzip, CompressionNone} {
		u, err := New(NewMemSource(1), Config{URL: "http://127.0.0.1", Gateway: "gw-1", Token: "t", Compression: comp})
		if err != nil {
			t.Fatal(err)
		}
		j := u.getJob()
		j.rs = benchReadings(5000)
		j.epoch, j.first = 1, 1
		allocs := testing.AllocsPerRun(20, func() {
			j.encLo = -1
			if err := u.encode(j, 0, len(j.rs)); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 20 {
			t.Errorf("%s: %.0f allocations to encode a batch of 5,000", comp, allocs)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"999999", maxRetryAfter},
	} {
		if got := parseRetryAfter(tc.h, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// The backoff grows once per generation and stays within [0, backoff];
// Retry-After is a minimum.
func TestGate(t *testing.T) {
	g := newGate(Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2})
	gen := g.generation()
	g.fail(gen, 0)
	g.fail(gen, 0) // the same outage seen by a second request
	if b := g.current(); b != 100*time.Millisecond {
		t.Errorf("backoff %v after two failures of one generation", b)
	}
	for range 10 {
		if d := g.fail(g.generation(), 0); d > g.current() {
			t.Errorf("delay %v over backoff %v", d, g.current())
		}
	}
	if b := g.current(); b != time.Second {
		t.Errorf("backoff %v, want the max", b)
	}
	if d := g.fail(g.generation(), 5*time.Second); d < 5*time.Second || d > 5*time.Second+5*time.Second/8 {
		t.Errorf("delay %v for Retry-After 5s", d)
	}
	g.success()
	if b := g.current(); b != 0 {
		t.Errorf("backoff %v after success", b)
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"error":"protocol: batch: reading 3: name: invalid name"}`, "protocol: batch: reading 3: name: invalid name"},
		{"plain text\nmore", `"plain text"`},
		{"", "400 Bad Request"},
	} {
		if got := errorMessage([]byte(tc.body), "400 Bad Request"); got != tc.want {
			t.Errorf("errorMessage(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

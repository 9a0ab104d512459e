package verify_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/model"
	"github.com/tributary-iot/tributary/simulator/verify"
)

func TestChecker(t *testing.T) {
	const n = 10 // samples per device
	type feed func(t *testing.T, add func(*verify.Record))
	inOrder := func(devs ...string) feed {
		return func(t *testing.T, add func(*verify.Record)) {
			for k := range n {
				for _, d := range devs {
					add(record(t, sample(d, k), 50*time.Millisecond))
				}
			}
		}
	}
	for _, tc := range []struct {
		name    string
		truth   []model.Event
		feed    feed
		totals  verify.Counts
		devices map[string]verify.Counts // devices to check, beyond totals
		health  uint64
		bad     bool
	}{
		{
			name:   "perfect",
			truth:  []model.Event{published("a", n), published("b", n)},
			feed:   inOrder("a", "b"),
			totals: verify.Counts{Expected: 60, Received: 60, Unique: 60},
		},
		{
			name:  "one sample lost",
			truth: []model.Event{published("a", n), published("b", n)},
			feed: func(t *testing.T, add func(*verify.Record)) {
				for k := range n {
					add(record(t, sample("a", k), 0))
					if k != 4 {
						add(record(t, sample("b", k), 0))
					}
				}
			},
			totals:  verify.Counts{Expected: 60, Received: 57, Unique: 57, Lost: 3},
			devices: map[string]verify.Counts{"b": {Expected: 30, Received: 27, Unique: 27, Lost: 3}},
			bad:     true,
		},
		{
			name:   "device never heard",
			truth:  []model.Event{published("a", n), published("silent", n)},
			feed:   inOrder("a"),
			totals: verify.Counts{Expected: 60, Received: 30, Unique: 30, Lost: 30},
			bad:    true,
		},
		{
			name:  "a record twice",
			truth: []model.Event{published("a", n)},
			feed: func(t *testing.T, add func(*verify.Record)) {
				for k := range n {
					add(record(t, sample("a", k), 0))
					if k == 3 {
						add(record(t, sample("a", k), time.Second)) // resent right after
					}
				}
			},
			totals: verify.Counts{Expected: 30, Received: 33, Unique: 30, Duplicated: 3},
			bad:    true,
		},
		{
			name:  "a duplicate much later is a duplicate, not out of order",
			truth: []model.Event{published("a", n)},
			feed: func(t *testing.T, add func(*verify.Record)) {
				inOrder("a")(t, add)
				add(record(t, sample("a", 0)[:1], time.Minute))
			},
			totals: verify.Counts{Expected: 30, Received: 31, Unique: 30, Duplicated: 1},
			bad:    true,
		},
		{
			name:  "two records swapped",
			truth: []model.Event{published("a", n)},
			feed: func(t *testing.T, add func(*verify.Record)) {
				for _, k := range []int{0, 1, 2, 4, 3, 5, 6, 7, 8, 9} {
					add(record(t, sample("a", k), 0))
				}
			},
			// Sample 3's readings come after sample 4's: three go back in time.
			totals: verify.Counts{Expected: 30, Received: 30, Unique: 30, OutOfOrder: 3},
			bad:    true,
		},
		{
			name:  "readings within one record out of order",
			truth: []model.Event{published("a", 2)},
			feed: func(t *testing.T, add func(*verify.Record)) {
				rs := append(sample("a", 1), sample("a", 0)...)
				add(record(t, rs, 0))
			},
			totals: verify.Counts{Expected: 6, Received: 6, Unique: 6, OutOfOrder: 3},
			bad:    true,
		},
		{
			name:  "unexpected: unknown device, outside the span, more than published",
			truth: []model.Event{published("a", n), published("b", n-2)},
			feed: func(t *testing.T, add func(*verify.Record)) {
				inOrder("a", "stranger")(t, add)
				for k := range n - 2 {
					add(record(t, sample("b", k), 0))
				}
				// b's span ends after sample n-3 plus 1ms... sample n-2 is
				// 100ms later than the span's end: outside.
				add(record(t, sample("b", n-2), 0))
				// a reading inside a's span that a never published
				extra := sample("a", n-1)[0]
				extra.Time += 1000
				add(record(t, []protocol.Reading{extra}, 0))
			},
			totals: verify.Counts{Expected: 54, Received: 88, Unique: 88, Unexpected: 34},
			devices: map[string]verify.Counts{
				"stranger": {Received: 30, Unique: 30, Unexpected: 30},
				"b":        {Expected: 24, Received: 27, Unique: 27, Unexpected: 3},
				"a":        {Expected: 30, Received: 31, Unique: 31, Unexpected: 1},
			},
		},
		{
			name:  "gateway health readings are counted apart",
			truth: []model.Event{published("a", n)},
			feed: func(t *testing.T, add func(*verify.Record)) {
				inOrder("a")(t, add)
				tm := t0.Add(time.Second).UnixMicro()
				add(record(t, []protocol.Reading{
					{Device: "gw-1", Name: protocol.HealthQueueDepth, Kind: protocol.KindFloat, Value: 3, Time: tm, Received: tm},
					{Device: "gw-1", Name: protocol.HealthUplinkOK, Kind: protocol.KindBool, Bool: true, Time: tm, Received: tm},
				}, 0))
			},
			totals: verify.Counts{Expected: 30, Received: 30, Unique: 30},
			health: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := verify.NewChecker(mustTruth(t, tc.truth...), nil)
			tc.feed(t, c.Add)
			res := c.Result()
			if diff := cmp.Diff(tc.totals, res.Totals); diff != "" {
				t.Errorf("totals (-want +got):\n%s", diff)
			}
			if res.Totals.Bad() != tc.bad {
				t.Errorf("Bad() = %v, want %v", res.Totals.Bad(), tc.bad)
			}
			if res.Health != tc.health {
				t.Errorf("health readings %d, want %d", res.Health, tc.health)
			}
			for dev, want := range tc.devices {
				found := false
				for _, d := range res.Devices {
					if d.Device == dev {
						found = true
						if diff := cmp.Diff(want, d.Counts); diff != "" {
							t.Errorf("device %s (-want +got):\n%s", dev, diff)
						}
					}
				}
				if !found {
					t.Errorf("device %s not in the report", dev)
				}
			}
			if res.DecodeErrors != 0 || res.KeyMismatches != 0 {
				t.Errorf("decode errors %d, key mismatches %d", res.DecodeErrors, res.KeyMismatches)
			}
		})
	}
}

func TestCheckerWorstFirstAndGap(t *testing.T) {
	c := verify.NewChecker(mustTruth(t, published("a", 10), published("b", 10), published("c", 10)), nil)
	for k := range 10 {
		c.Add(record(t, sample("a", k), 0))
		if k < 3 || k > 6 { // b loses samples 3..6
			c.Add(record(t, sample("b", k), 0))
		}
		c.Add(record(t, sample("c", k), 0))
		if k == 0 {
			c.Add(record(t, sample("c", k), 0))
		}
	}
	res := c.Result()
	var order []string
	for _, d := range res.Devices {
		order = append(order, d.Device)
	}
	if diff := cmp.Diff([]string{"b", "c", "a"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	g := res.Devices[0].LargestGap
	if g == nil || !g.From.Equal(t0.Add(2100*time.Millisecond)) || !g.To.Equal(t0.Add(7100*time.Millisecond)) || g.Seconds != 5 {
		t.Errorf("largest gap of b: %+v, want 5s from the sample 2 to sample 7", g)
	}
}

func TestCheckerBadRecords(t *testing.T) {
	c := verify.NewChecker(mustTruth(t, published("a", 1)), nil)
	c.Add(&verify.Record{PartitionKey: "a", Data: []byte("not cbor")})
	r := record(t, sample("a", 0), 0)
	r.PartitionKey = "someone-else"
	c.Add(r)
	res := c.Result()
	if res.Records != 2 || res.DecodeErrors != 1 || res.KeyMismatches != 1 || res.Totals.Unique != 3 {
		t.Errorf("records %d, decode errors %d, key mismatches %d, unique %d; want 2, 1, 1, 3",
			res.Records, res.DecodeErrors, res.KeyMismatches, res.Totals.Unique)
	}
}

func TestLatency(t *testing.T) {
	skewed := model.Event{Device: "skewed", Kind: model.KindClockSkew, Start: t0, End: t0.Add(time.Hour), Magnitude: 30}
	tr := mustTruth(t, published("a", 1000), published("skewed", 1), skewed)
	c := verify.NewChecker(tr, nil)
	// Device a: latencies 1..1000 ms.
	for k := range 1000 {
		c.Add(record(t, sample("a", k), time.Duration(k+1)*time.Millisecond))
	}
	// The skewed device's clock is 30 s ahead: its readings' device times
	// are 30 s late, and the true latency is 5 ms.
	rs := sample("skewed", 0)
	for i := range rs {
		rs[i].Time += (30 * time.Second).Microseconds()
	}
	c.AddReadings(rs, t0.Add(105*time.Millisecond))
	l := c.Result().Latency
	if l.Count != 3003 || l.Negative != 0 || l.Source != "arrival" {
		t.Errorf("latency %+v: want 3003 readings, none negative, source arrival", l)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*0.01 }
	if !near(l.P50Ms, 500) || !near(l.P99Ms, 990) || l.MaxMs != 1000 {
		t.Errorf("p50 %.2f ms, p99 %.2f ms, max %.2f ms; want 500, 990, 1000 (within 1%%)", l.P50Ms, l.P99Ms, l.MaxMs)
	}

	// Another Stamper: the read time, one second after arrival here.
	c = verify.NewChecker(tr, verify.ReadStamp{})
	c.Add(record(t, sample("a", 0), 10*time.Millisecond))
	if l := c.Result().Latency; l.MaxMs != 1010 || l.Source != "read" {
		t.Errorf("read stamp: %+v, want max 1010 ms from source read", l)
	}
	// Stamped before the device time: counted, measured as 0.
	c = verify.NewChecker(tr, nil)
	c.Add(record(t, sample("a", 0), -time.Second))
	if l := c.Result().Latency; l.Negative != 3 || l.MaxMs != 0 {
		t.Errorf("negative latency: %+v", l)
	}
}

// fixedStamp is a Stamper of the test's own: everything stamped at one
// time.
type fixedStamp time.Time

func (f fixedStamp) Stamp(*verify.Record) time.Time { return time.Time(f) }

func TestPluggableStamper(t *testing.T) {
	c := verify.NewChecker(mustTruth(t, published("a", 1)), fixedStamp(t0.Add(2100*time.Millisecond)))
	c.Add(record(t, sample("a", 0), 0))
	if l := c.Result().Latency; l.MaxMs != 2000 {
		t.Errorf("custom stamper: max %.1f ms, want 2000", l.MaxMs)
	}
}

func TestNewTruth(t *testing.T) {
	spike := model.Event{Device: "a", Metric: "temperature", Kind: model.KindSpike, Start: t0, End: t0.Add(time.Second), Magnitude: 9}
	if _, err := verify.NewTruth([]model.Event{spike}); !errors.Is(err, verify.ErrNoTally) {
		t.Errorf("no published lines: %v, want ErrNoTally", err)
	}
	if _, err := verify.NewTruth([]model.Event{published("a", 1), published("a", 2)}); err == nil {
		t.Errorf("two published lines for one device: no error")
	}
	tr := mustTruth(t, published("a", 2), spike,
		model.Event{Device: "a", Kind: model.KindDisconnect, Start: t0, End: t0},
		model.Event{Device: "a", Kind: model.KindClockSkew, Start: t0, End: t0, Magnitude: -1.5})
	if tr.Expected() != 6 || len(tr.Anomalies) != 1 || tr.Skew["a"] != -1500*time.Millisecond {
		t.Errorf("truth: expected %d, anomalies %v, skew %v", tr.Expected(), tr.Anomalies, tr.Skew)
	}
}

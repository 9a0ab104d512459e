package node

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/protocol"
)

var t0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // synctest's epoch

// slowSensor reports the elapsed time and takes d to Sense.
type slowSensor struct{ d time.Duration }

func (s *slowSensor) Sense(ctx context.Context) ([]sensor.Measurement, error) {
	if s.d > 0 {
		select {
		case <-time.After(s.d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []sensor.Measurement{{Name: "x", Unit: "s", Value: 1}}, nil
}
func (s *slowSensor) String() string { return "slow" }
func (s *slowSensor) Close() error   { return nil }

// samplerNode builds a node with a sampler and a queue but no MQTT client.
func samplerNode(t testing.TB, cfg Config, clock func() time.Time, sens ...sensor.Sensor) *Node {
	t.Helper()
	cfg.Device, cfg.Broker = "d", "tcp://x:1"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, clock: clock, log: slog.New(slog.DiscardHandler), notify: make(chan struct{}, 1)}
	n.queue = newQueue(cfg.BufferReadings, func(p *pack) { n.stats.dropped.Add(uint64(p.readings)) })
	sources, err := n.openSensors(cfg, Options{Sensors: sens})
	if err != nil {
		t.Fatal(err)
	}
	n.sampler = &sampler{n: n, sources: sources, wake: make(chan struct{}, 1)}
	return n
}

// runFor runs the sampler for d of bubble time.
func runFor(n *Node, d time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.sampler.run(ctx) }()
	time.Sleep(d)
	cancel()
	<-done
}

// packTimes pops every queued pack and returns each pack's reading times
// as offsets from t0.
func packTimes(t *testing.T, n *Node) [][]time.Duration {
	t.Helper()
	var out [][]time.Duration
	for p := n.queue.pop(); p != nil; p = n.queue.pop() {
		rs, err := protocol.DecodeSenML(p.data, protocol.DecodeOptions{Device: "d"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != p.readings {
			t.Errorf("pack says %d readings, holds %d", p.readings, len(rs))
		}
		var ts []time.Duration
		for _, r := range rs {
			ts = append(ts, time.UnixMicro(r.Time).Sub(t0))
		}
		out = append(out, ts)
	}
	return out
}

func msList(ns ...int) []time.Duration {
	var out []time.Duration
	for _, n := range ns {
		out = append(out, time.Duration(n)*time.Millisecond)
	}
	return out
}

func flat(packs [][]time.Duration) []time.Duration {
	var out []time.Duration
	for _, p := range packs {
		out = append(out, p...)
	}
	return out
}

// TestSamplerGrid: ticks stay on the interval grid (plus phase), with no
// drift; the clock's skew moves the grid.
func TestSamplerGrid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phase time.Duration
		skew  time.Duration
		want  []time.Duration // reading times, node clock
	}{
		{"aligned", 0, 0, msList(0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)},
		{"phase", 30 * time.Millisecond, 0, msList(30, 130, 230, 330, 430, 530, 630, 730, 830, 930, 1030)},
		// The node's clock is 37ms ahead: ticks fall where it shows a
		// multiple of 100ms, 63ms of real time after the start.
		{"skewed clock", 0, 37 * time.Millisecond, msList(100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clock := func() time.Time { return time.Now().Add(tc.skew) }
				n := samplerNode(t, Config{Interval: 100 * time.Millisecond, Phase: tc.phase}, clock, &slowSensor{})
				runFor(n, 1050*time.Millisecond)
				packs := packTimes(t, n)
				if got := flat(packs); !slices.Equal(got, tc.want) {
					t.Errorf("times %v\nwant  %v", got, tc.want)
				}
				if len(packs) != len(tc.want) {
					t.Errorf("%d packs, want one per sample", len(packs))
				}
				if st := n.Stats(); st.Samples != uint64(len(tc.want)) || st.MissedTicks != 0 {
					t.Errorf("stats %+v", st)
				}
			})
		})
	}
}

// TestSamplerMissedTicks: a Sense slower than the interval skips the ticks
// that pass and counts them; the ticks stay on the grid.
func TestSamplerMissedTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := samplerNode(t, Config{Interval: 100 * time.Millisecond}, time.Now, &slowSensor{d: 250 * time.Millisecond})
		runFor(n, 1100*time.Millisecond)
		// Samples start at 0, 300, 600 (900 is cut short by the stop) and
		// take 250ms; the reading time is when Sense returned.
		if got, want := flat(packTimes(t, n)), msList(250, 550, 850); !slices.Equal(got, want) {
			t.Errorf("times %v, want %v", got, want)
		}
		if st := n.Stats(); st.Samples != 3 || st.MissedTicks != 6 || st.SenseErrors != 0 {
			t.Errorf("stats %+v, want 3 samples, 6 missed ticks (100, 200, 400, 500, 700, 800)", st)
		}
	})
}

// TestSamplerTwoSensors: each sensor keeps its own schedule.
func TestSamplerTwoSensors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := samplerNode(t, Config{Sensors: []sensor.Spec{
			{Kind: sensor.KindPulse, Bus: "A", Name: "a", Interval: 200 * time.Millisecond},
			{Kind: sensor.KindPulse, Bus: "B", Name: "b", Interval: 300 * time.Millisecond},
		}}, time.Now, &slowSensor{}, &slowSensor{})
		runFor(n, 650*time.Millisecond)
		if got, want := flat(packTimes(t, n)), msList(0, 0, 200, 300, 400, 600, 600); !slices.Equal(got, want) {
			t.Errorf("times %v, want %v", got, want)
		}
	})
}

// TestSamplerBatching: BatchSamples fills packs; BatchDelay flushes a pack
// that waited long enough; stopping flushes the rest.
func TestSamplerBatching(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples int
		delay   time.Duration
		want    [][]time.Duration
	}{
		{"full packs", 3, time.Hour, [][]time.Duration{msList(0, 100, 200), msList(300, 400, 500), msList(600, 700)}},
		{"delay", 10, 250 * time.Millisecond, [][]time.Duration{msList(0, 100, 200), msList(300, 400, 500), msList(600, 700)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := samplerNode(t, Config{Interval: 100 * time.Millisecond, BatchSamples: tc.samples, BatchDelay: tc.delay},
					time.Now, &slowSensor{})
				runFor(n, 750*time.Millisecond)
				got := packTimes(t, n)
				if !slices.EqualFunc(got, tc.want, slices.Equal) {
					t.Errorf("packs %v, want %v", got, tc.want)
				}
			})
		})
	}
}

// TestSamplerIntervalChange: a new interval takes effect at once, on its
// own grid.
func TestSamplerIntervalChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := samplerNode(t, Config{Interval: time.Hour}, time.Now, &slowSensor{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); n.sampler.run(ctx) }()
		time.Sleep(10 * time.Millisecond) // the tick at 0 happened
		n.sampler.sources[0].interval.Store(int64(100 * time.Millisecond))
		n.sampler.wake <- struct{}{}
		time.Sleep(340 * time.Millisecond)
		cancel()
		<-done
		if got, want := flat(packTimes(t, n)), msList(0, 100, 200, 300); !slices.Equal(got, want) {
			t.Errorf("times %v, want %v", got, want)
		}
	})
}

func mkPack(readings int, tag int64) *pack {
	p := newPack()
	p.readings, p.first = readings, tag
	return p
}

func tags(q *queue) []int64 {
	var out []int64
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := 0; i < q.n; i++ {
		out = append(out, q.ring[q.at(i)].first)
	}
	return out
}

// TestQueue: FIFO order, the readings bound, oldest dropped and counted,
// failed packs back at the front in order.
func TestQueue(t *testing.T) {
	var dropped []int64
	var droppedReadings int
	q := newQueue(6, func(p *pack) { dropped = append(dropped, p.first); droppedReadings += p.readings })
	for i := int64(1); i <= 5; i++ {
		q.push(mkPack(2, i))
	}
	if got := tags(q); !slices.Equal(got, []int64{3, 4, 5}) || !slices.Equal(dropped, []int64{1, 2}) || droppedReadings != 4 {
		t.Fatalf("after 5 pushes: queue %v, dropped %v (%d readings)", got, dropped, droppedReadings)
	}
	a, b := q.pop(), q.pop()
	q.push(mkPack(1, 6))
	q.pushFront([]*pack{a, b}) // 3 4 5 6 → 7 readings: 3 is dropped
	if got := tags(q); !slices.Equal(got, []int64{4, 5, 6}) || !slices.Equal(dropped, []int64{1, 2, 3}) {
		t.Fatalf("after pushFront: queue %v, dropped %v", got, dropped)
	}
	if packs, readings := q.len(); packs != 3 || readings != 5 {
		t.Errorf("len = %d packs, %d readings", packs, readings)
	}
	// A pack bigger than the bound is kept: it is the newest.
	q.push(mkPack(10, 7))
	if got := tags(q); !slices.Equal(got, []int64{7}) {
		t.Errorf("after a giant pack: %v", got)
	}
}

// TestQueueGrowShrink: the ring grows through wrap-around and shrinks back.
func TestQueueGrowShrink(t *testing.T) {
	q := newQueue(1_000_000, nil)
	var want []int64
	next := int64(0)
	for round := 0; round < 3; round++ {
		for i := 0; i < 300; i++ {
			next++
			q.push(mkPack(1, next))
			want = append(want, next)
		}
		for i := 0; i < 290; i++ {
			if p := q.pop(); p.first != want[0] {
				t.Fatalf("popped %d, want %d", p.first, want[0])
			}
			want = want[1:]
		}
		if got := tags(q); !slices.Equal(got, want) {
			t.Fatalf("round %d: %v, want %v", round, got, want)
		}
	}
	if len(q.ring) > 128 {
		t.Errorf("ring of %d slots for %d packs: did not shrink", len(q.ring), q.n)
	}
}

// staticSensor returns the same measurements every time, allocating
// nothing, so that BenchmarkSample measures the node's own cost.
type staticSensor struct{ ms []sensor.Measurement }

func (s *staticSensor) Sense(context.Context) ([]sensor.Measurement, error) { return s.ms, nil }
func (s *staticSensor) String() string                                      { return "static" }
func (s *staticSensor) Close() error                                        { return nil }

// BenchmarkSample: one sample of a 3-measurement sensor, encoded as a
// SenML-CBOR pack and queued, then taken off the queue as the sender does.
// The node allocates nothing per sample.
func BenchmarkSample(b *testing.B) {
	total := 12.5
	sen := &staticSensor{ms: []sensor.Measurement{
		{Name: "room.temperature", Unit: "Cel", Value: 21.5},
		{Name: "room.humidity", Unit: "%RH", Value: 40},
		{Name: "water", Unit: "l", Value: total, Sum: &total},
	}}
	n := samplerNode(b, Config{}, time.Now, sen)
	src := n.sampler.sources[0]
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		n.sampler.sample(ctx, src)
		n.queue.pop().free()
	}
}

// FuzzParseInterval: a cmd/interval payload never panics the node, and an
// accepted interval is within bounds.
func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{"5s", `"250ms"`, `{"interval":"1m","sensor":"room","id":"x"}`, "", "1ms", "{", `{"interval":5}`,
		`{"interval":"1s"} {}`, "9999999999h", " 10ms \n", `"\u0035s"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, d, err := parseInterval(b)
		if err != nil {
			if d != 0 {
				t.Errorf("error %v with interval %s", err, d)
			}
			return
		}
		if d < MinInterval || d > MaxInterval {
			t.Errorf("accepted %s from %q", d, b)
		}
		if req.Interval == "" {
			t.Errorf("accepted %q without an interval", b)
		}
	})
}

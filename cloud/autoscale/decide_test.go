package autoscale_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// fakeStream is a Source and a Resharder over shards the test loads by
// hand: it adds rate × elapsed to each shard's counters.
type fakeStream struct {
	clk     *testenv.Clock
	shards  []autoscale.ShardCounters
	gen     int
	calls   []string
	failErr error
	// entered and release, when set, hold UpdateShardCount until the test
	// lets it go.
	entered, release chan struct{}
}

func newFake(clk *testenv.Clock, n int) *fakeStream {
	f := &fakeStream{clk: clk}
	f.layout(n)
	return f
}

// layout replaces the shards with n new ones splitting the key space evenly.
func (f *fakeStream) layout(n int) {
	f.gen++
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(space, big.NewInt(int64(n)))
	f.shards = nil
	for i := range n {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == n-1 {
			end.Sub(space, big.NewInt(1))
		}
		f.shards = append(f.shards, autoscale.ShardCounters{ShardID: fmt.Sprintf("g%d-s%d", f.gen, i), StartingHashKey: start.String(), EndingHashKey: end.String()})
	}
}

func (f *fakeStream) Snapshot(context.Context) (autoscale.Snapshot, error) {
	return autoscale.Snapshot{Shards: append([]autoscale.ShardCounters(nil), f.shards...)}, nil
}

func (f *fakeStream) UpdateShardCount(_ context.Context, target int) error {
	f.calls = append(f.calls, fmt.Sprintf("update %d", target))
	if f.entered != nil {
		close(f.entered)
		<-f.release
	}
	if f.failErr != nil {
		return f.failErr
	}
	f.layout(target)
	return nil
}

func (f *fakeStream) SplitShard(_ context.Context, id, at string) error {
	f.calls = append(f.calls, "split "+id+" at "+at)
	for i, s := range f.shards {
		if s.ShardID == id {
			f.gen++
			lo := autoscale.ShardCounters{ShardID: fmt.Sprintf("g%d-lo", f.gen), StartingHashKey: s.StartingHashKey, EndingHashKey: dec(at, -1)}
			hi := autoscale.ShardCounters{ShardID: fmt.Sprintf("g%d-hi", f.gen), StartingHashKey: at, EndingHashKey: s.EndingHashKey}
			f.shards = append(f.shards[:i], append([]autoscale.ShardCounters{lo, hi}, f.shards[i+1:]...)...)
			return nil
		}
	}
	return fmt.Errorf("no shard %s", id)
}

func dec(s string, d int64) string {
	n, _ := new(big.Int).SetString(s, 10)
	return n.Add(n, big.NewInt(d)).String()
}

// run advances the clock by dt with each shard taking recs[i] records/s
// (100 bytes each) and throttled[i] refused records/s.
func (f *fakeStream) run(dt time.Duration, recs []float64, throttled []float64) {
	f.clk.Advance(dt)
	for i := range f.shards {
		r := uint64(recs[i] * dt.Seconds())
		f.shards[i].IncomingRecords += r
		f.shards[i].IncomingBytes += 100 * r
		if throttled != nil {
			f.shards[i].WriteThrottled += uint64(throttled[i] * dt.Seconds())
		}
	}
}

func each(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

type rig struct {
	t   *testing.T
	clk *testenv.Clock
	f   *fakeStream
	s   *autoscale.Scaler
	lag time.Duration
}

func newRig(t *testing.T, cfg autoscale.Config, shards int) *rig {
	t.Helper()
	clk := testenv.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	r := &rig{t: t, clk: clk, f: newFake(clk, shards)}
	s, err := autoscale.New(cfg, autoscale.Options{Stream: "telemetry", Backend: autoscale.BackendEmbedded, Source: r.f, Resharder: r.f,
		Lag: func() time.Duration { return r.lag }, Now: clk.Now, History: 5})
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	r.step() // baseline
	return r
}

func (r *rig) step() autoscale.Decision { return r.s.Step(context.Background()) }

// tick runs one 10 s interval at the given per-shard rates and decides.
func (r *rig) tick(recs, throttled []float64) autoscale.Decision {
	r.f.run(10*time.Second, recs, throttled)
	return r.step()
}

// tick2 is two ticks at the same rates: the first must wait for the
// second (scale-ups need two measurements in a row); it returns the second.
func (r *rig) tick2(recs, throttled []float64) autoscale.Decision {
	r.t.Helper()
	r.want(r.tick(recs, throttled), autoscale.ActionNone, len(r.f.shards), "next measurement agrees")
	return r.tick(recs, throttled)
}

func (r *rig) want(d autoscale.Decision, action string, to int, reasonHas string) {
	r.t.Helper()
	if d.Action != action || d.To != to || !strings.Contains(d.Reason, reasonHas) {
		r.t.Fatalf("decision %+v, want %s to %d with a reason containing %q", d, action, to, reasonHas)
	}
}

var fast = autoscale.Config{MinShards: 1, MaxShards: 16, TargetUtilisation: 0.5, ScaleDownDelay: time.Minute, Cooldown: 30 * time.Second, Interval: 10 * time.Second}

// TestScaleUpUniform: uniform load over the target scales every shard with
// UpdateShardCount, at most doubling per call, waiting out the cooldown.
func TestScaleUpUniform(t *testing.T) {
	r := newRig(t, fast, 2)
	r.want(r.tick(each(2, 400), nil), autoscale.ActionNone, 2, "") // 0.8 shards' worth needs 2 at 50%
	// 900/s taken and 600/s refused per shard: 3 shards' worth, 6 needed, 4 allowed.
	r.want(r.tick2(each(2, 900), each(2, 600)), autoscale.ActionUpdateShardCount, 4, "at most doubles")
	if len(r.f.shards) != 4 {
		t.Fatalf("%d shards after the update", len(r.f.shards))
	}
	r.want(r.step(), autoscale.ActionNone, 4, "new baseline")
	r.want(r.tick2(each(4, 900), each(4, 100)), autoscale.ActionHold, 4, "cooldown")
	r.want(r.tick(each(4, 900), each(4, 100)), autoscale.ActionUpdateShardCount, 8, "needs 8 shards")
	h := r.s.History()
	if len(h) != 3 || h[0].Action != autoscale.ActionUpdateShardCount || h[1].Action != autoscale.ActionHold || h[2].To != 8 {
		t.Errorf("history %+v", h)
	}
}

// TestHotShardSplit: one shard over its limit while the others idle is
// split at the middle of its range; the stream is not doubled.
func TestHotShardSplit(t *testing.T) {
	r := newRig(t, fast, 4)
	hot := r.f.shards[2]
	d := r.tick2([]float64{50, 50, 1000, 50}, []float64{0, 0, 200, 0})
	r.want(d, autoscale.ActionSplitShard, 5, "one hash key range is hot")
	want, _ := new(big.Int).SetString(hot.StartingHashKey, 10)
	end, _ := new(big.Int).SetString(hot.EndingHashKey, 10)
	want.Add(want, end).Add(want, big.NewInt(1)).Rsh(want, 1)
	if d.Shard != hot.ShardID || d.SplitAt != want.String() || len(r.f.shards) != 5 {
		t.Errorf("split %s at %s (%d shards), want %s at %s", d.Shard, d.SplitAt, len(r.f.shards), hot.ShardID, want)
	}
	// The heat was one key: all of it landed in one child. No more splits.
	r.step()
	r.want(r.tick2([]float64{50, 50, 0, 1000, 50}, []float64{0, 0, 0, 200, 0}), autoscale.ActionHold, 5, "one partition key")
	if len(r.f.calls) != 1 {
		t.Errorf("calls %v", r.f.calls)
	}
}

// TestScaleDown: a low load scales down only after scale_down_delay, never
// while a consumer lags, at most halving.
func TestScaleDown(t *testing.T) {
	r := newRig(t, fast, 8)
	low := each(8, 20) // 0.16 shards' worth: 1 would do
	for range 6 {      // 50 s of the 60 s delay
		r.want(r.tick(low, nil), autoscale.ActionNone, 8, "scale_down_delay")
	}
	r.lag = time.Minute
	r.want(r.tick(low, nil), autoscale.ActionHold, 8, "consumer is 1m0s behind")
	r.lag = 0
	r.want(r.tick(low, nil), autoscale.ActionUpdateShardCount, 4, "longer than stream.autoscale.scale_down_delay")
	r.step()
	// A burst resets the delay.
	r.want(r.tick(each(4, 40), nil), autoscale.ActionNone, 4, "low for 0s")
	r.want(r.tick(each(4, 400), nil), autoscale.ActionNone, 4, "") // 1.6 shards' worth: 4 are right
	r.want(r.tick(each(4, 40), nil), autoscale.ActionNone, 4, "low for 0s")
}

// TestDailyLimit: after 10 UpdateShardCount calls in 24 h the autoscaler
// holds, and resumes when the oldest call leaves the window.
func TestDailyLimit(t *testing.T) {
	cfg := fast
	cfg.MaxShards, cfg.Cooldown = 1000, time.Second
	r := newRig(t, cfg, 1)
	up := func() autoscale.Decision { // 60% per shard against a 50% target: one more shard or a few
		n := len(r.f.shards)
		r.tick(each(n, 600), nil)
		return r.tick(each(n, 600), nil)
	}
	for i := range autoscale.MaxUpdatesPerDay {
		n := len(r.f.shards)
		if d := up(); d.Action != autoscale.ActionUpdateShardCount || d.To <= n || d.To > 2*n {
			t.Fatalf("update %d: %+v", i, d)
		}
		if i == 0 {
			r.clk.Advance(time.Hour)
		}
		r.step()
	}
	n := len(r.f.shards)
	r.want(up(), autoscale.ActionHold, n, "10 UpdateShardCount calls per rolling 24 h")
	r.clk.Advance(23 * time.Hour)
	r.step()
	if d := up(); d.Action != autoscale.ActionUpdateShardCount {
		t.Fatalf("after the first call left the window: %+v", d)
	}
}

// TestBounds: min_shards and max_shards win over the load.
func TestBounds(t *testing.T) {
	cfg := fast
	cfg.MinShards, cfg.MaxShards = 3, 4
	r := newRig(t, cfg, 2)
	r.want(r.tick(each(2, 0), nil), autoscale.ActionUpdateShardCount, 3, "below stream.autoscale.min_shards 3")
	r.clk.Advance(time.Minute)
	r.step()
	r.want(r.tick2(each(3, 1000), each(3, 1000)), autoscale.ActionUpdateShardCount, 4, "needs 4 shards")
	r.clk.Advance(time.Minute)
	r.step()
	r.want(r.tick(each(4, 1000), each(4, 1000)), autoscale.ActionHold, 4, "max_shards 4")
	r.want(r.tick(each(4, 1000), each(4, 1000)), autoscale.ActionHold, 4, "max_shards 4")
	if h := r.s.History(); len(h) != 3 || h[2].Action != autoscale.ActionHold { // the same hold twice is recorded once
		t.Errorf("history %+v", h)
	}
}

// TestFailedCallCoolsDown: a refused reshard is recorded with its error and
// still waits out the cooldown.
func TestFailedCallCoolsDown(t *testing.T) {
	r := newRig(t, fast, 2)
	r.f.failErr = fmt.Errorf("LimitExceededException: nope")
	d := r.tick2(each(2, 1000), each(2, 1000))
	if d.Action != autoscale.ActionUpdateShardCount || !strings.Contains(d.Error, "LimitExceeded") {
		t.Fatalf("decision %+v", d)
	}
	r.want(r.tick2(each(2, 1000), each(2, 1000)), autoscale.ActionHold, 2, "cooldown")
}

// TestStatusDuringReshard: the admin API answers while a reshard call is
// in progress (the call is made without the status lock).
func TestStatusDuringReshard(t *testing.T) {
	r := newRig(t, fast, 2)
	r.tick(each(2, 1000), each(2, 1000))
	r.f.entered, r.f.release = make(chan struct{}), make(chan struct{})
	r.f.run(10*time.Second, each(2, 1000), each(2, 1000))
	done := make(chan autoscale.Decision)
	go func() { done <- r.s.Step(context.Background()) }()
	<-r.f.entered
	if st := r.s.Status(); st.Last == nil || st.Last.Action != autoscale.ActionUpdateShardCount || len(st.Decisions) != 0 {
		t.Errorf("status during the call: %+v", st)
	}
	close(r.f.release)
	if d := <-done; d.Action != autoscale.ActionUpdateShardCount || len(r.s.History()) != 1 {
		t.Errorf("decision %+v, history %+v", d, r.s.History())
	}
}

// TestHistoryBoundedAndServed: the history keeps the newest Options.History
// decisions and the handler serves them with the last loads.
func TestHistoryBoundedAndServed(t *testing.T) {
	cfg := fast
	cfg.Cooldown = time.Second
	r := newRig(t, cfg, 1)
	for range 6 {
		n := len(r.f.shards)
		if n == 16 {
			r.f.layout(1)
			r.step()
			n = 1
		}
		r.tick2(each(n, 1000), each(n, 1000))
		r.step()
	}
	if h := r.s.History(); len(h) != 5 {
		t.Fatalf("%d decisions kept, want 5", len(h))
	}
	r.tick(each(len(r.f.shards), 10), nil)
	rec := httptest.NewRecorder()
	r.s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/autoscale", nil))
	var st autoscale.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || len(st.Decisions) != 5 || len(st.Shards) != len(r.f.shards) || st.Shards[0].IncomingRecordsPerSec != 10 ||
		st.Config.TargetUtilisation != 0.5 || st.Limits != autoscale.KinesisLimits {
		t.Errorf("status %s", rec.Body)
	}
}

// TestBurstIgnored: one interval's burst (a fleet connecting at once) is
// not a load: no scale-up unless the next measurement asks for it too.
func TestBurstIgnored(t *testing.T) {
	r := newRig(t, fast, 2)
	r.want(r.tick(each(2, 1000), each(2, 3000)), autoscale.ActionNone, 2, "next measurement agrees")
	r.want(r.tick(each(2, 200), nil), autoscale.ActionNone, 2, "")
	r.want(r.tick(each(2, 1000), each(2, 3000)), autoscale.ActionNone, 2, "next measurement agrees")
	if h := r.s.History(); len(h) != 0 || len(r.f.calls) != 0 {
		t.Errorf("history %+v, calls %v", h, r.f.calls)
	}
}

// TestKafkaRefused: on Kafka the autoscaler explains and does nothing.
func TestKafkaRefused(t *testing.T) {
	s, err := autoscale.New(autoscale.Config{Enabled: true}, autoscale.Options{Stream: "telemetry", Backend: "kafka"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	if st.Enabled || !strings.Contains(st.Refused, "per-device order") || !strings.Contains(autoscale.Explain("kafka"), "partition") {
		t.Errorf("status %+v", st)
	}
	if autoscale.Explain("kinesis") != "" || autoscale.Explain("embedded") != "" {
		t.Error("Explain refuses a supported backend")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  autoscale.Config
		want string
	}{
		{autoscale.Config{MinShards: 5, MaxShards: 4}, "max_shards: 4 is below min_shards 5"},
		{autoscale.Config{TargetUtilisation: 1.5}, "target_utilisation"},
		{autoscale.Config{Cooldown: -time.Second}, "cooldown"},
		{autoscale.Config{MaxShards: 5000}, "max_shards: 5000"},
		{autoscale.Config{Interval: time.Millisecond}, "interval"},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), "stream.autoscale."+strings.SplitN(tc.want, ":", 2)[0]) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if err := (autoscale.Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

package ingest_test

// End to end with the gateway's real uplink (edge/uplink): the cloud tier
// never imports edge, except here, in a test, to prove the contract.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/internal/logging/logtest"
	"github.com/tributary-iot/tributary/protocol"
)

// memSource is an in-memory uplink.Source faithful to the queue's
// contract: seqs start at 1 and rise; Read returns the contiguous run from
// the first stored seq >= from; Ack deletes and is idempotent.
type memSource struct {
	mu      sync.Mutex
	epoch   uint64
	rs      []protocol.Reading
	stored  []bool
	acked   []int
	notify  chan struct{}
	acks    chan struct{} // signalled after every Ack
	storedN int
}

var _ uplink.Source = (*memSource)(nil)

func newMemSource(epoch uint64) *memSource {
	return &memSource{epoch: epoch, notify: make(chan struct{}, 1), acks: make(chan struct{}, 1)}
}

func (s *memSource) Append(rs ...protocol.Reading) {
	s.mu.Lock()
	for _, r := range rs {
		s.rs = append(s.rs, r)
		s.stored = append(s.stored, true)
		s.acked = append(s.acked, 0)
	}
	s.storedN += len(rs)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *memSource) Epoch() uint64           { return s.epoch }
func (s *memSource) Notify() <-chan struct{} { return s.notify }

func (s *memSource) Head() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, ok := range s.stored {
		if ok {
			return uint64(i) + 1
		}
	}
	return 0
}

func (s *memSource) Tail() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.rs))
}

func (s *memSource) Read(from uint64, maxReadings, maxBytes int, dst []protocol.Reading) (uint64, []protocol.Reading, error) {
	dst = dst[:0]
	s.mu.Lock()
	defer s.mu.Unlock()
	i := int(max(from, 1)) - 1
	for i < len(s.rs) && !s.stored[i] {
		i++
	}
	if i >= len(s.rs) {
		return 0, dst, nil
	}
	first, size := uint64(i)+1, 0
	for ; i < len(s.rs) && s.stored[i] && len(dst) < maxReadings; i++ {
		size += 64 + len(s.rs[i].Device) + len(s.rs[i].Name)
		if len(dst) > 0 && size > maxBytes {
			break
		}
		dst = append(dst, s.rs[i])
	}
	return first, dst, nil
}

func (s *memSource) Ack(ctx context.Context, first, last uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if first == 0 || first > last || last > uint64(len(s.rs)) {
		return fmt.Errorf("memsource: ack [%d, %d] outside [1, %d]", first, last, len(s.rs))
	}
	for seq := first; seq <= last; seq++ {
		if s.stored[seq-1] {
			s.stored[seq-1] = false
			s.storedN--
		}
		s.acked[seq-1]++
	}
	select {
	case s.acks <- struct{}{}:
	default:
	}
	return nil
}

// waitAck waits for the next Ack (or one since the last wait).
func (s *memSource) waitAck(t *testing.T, up *uplink.Uplink) {
	t.Helper()
	select {
	case <-s.acks:
	case <-time.After(20 * time.Second):
		t.Fatalf("%d readings not acknowledged; stats %+v", s.left(), up.Stats())
	}
}

func (s *memSource) left() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storedN
}

// runUplink runs gw-1's real uplink from src to e with quick retries;
// stop (also called at cleanup) ends it and reports its error.
func runUplink(t *testing.T, e *env, src *memSource, comp string, maxReadings, inFlight int, opts ...uplink.Option) (up *uplink.Uplink, stop func()) {
	t.Helper()
	up, err := uplink.New(src, uplink.Config{
		URL: e.srv.URL, Gateway: "gw-1", Token: e.tok["gw-1"], Compression: comp,
		MaxReadings: maxReadings, MaxAge: 5 * time.Millisecond, MaxInFlight: inFlight,
		Backoff:      uplink.Backoff{Initial: time.Millisecond, Max: 20 * time.Millisecond},
		DrainTimeout: 5 * time.Second,
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return up, stop
}

// TestUplink: the real gateway uplink against the real ingest, while
// acknowledgements get lost and the ingest restarts: every reading
// reaches the stream exactly once, and the gateway's queue empties.
func TestUplink(t *testing.T) {
	e := newEnv(t, nil)
	src := newMemSource(3)
	for _, comp := range []string{uplink.CompressionZstd, uplink.CompressionGzip, uplink.CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			up, stop := runUplink(t, e, src, comp, 300, 3)
			defer stop()
			base := src.Tail()
			for round := range 10 {
				src.Append(readings(500, 7, t0.Add(time.Duration(base)*time.Second+time.Duration(round)*time.Minute))...)
				switch round {
				case 2:
					e.loseNext.Store(3) // stored, but the 200 never arrives: resent
				case 5:
					e.restart()
				case 7:
					if comp != uplink.CompressionZstd {
						break // once is enough: a 429 costs a second (Retry-After)
					}
					hot := e.be.shardOf("dev-3")
					e.be.setThrottle(func(sh int) bool { return sh == hot })
					time.AfterFunc(150*time.Millisecond, func() { e.be.setThrottle(nil) })
				}
				src.waitAck(t, up) // the uplink makes progress between rounds
			}
			for src.left() > 0 {
				src.waitAck(t, up)
			}
		})
	}
	src.mu.Lock()
	all := append([]protocol.Reading(nil), src.rs...)
	for i, n := range src.acked {
		if n == 0 {
			t.Errorf("seq %d never acknowledged", i+1)
		}
	}
	src.mu.Unlock()
	checkExactlyOnce(t, e.be, all)
	t.Logf("answers: %v", e.statuses)
	if e.count(429) == 0 || e.count(503) < 9 {
		t.Errorf("the faults were not exercised: answers %v", e.statuses)
	}
}

// TestUplinkCaps: readings beyond the gateway's device cap are refused
// in a way the real uplink settles: acknowledged, so its queue empties
// and nothing is retried, while the stream holds the admitted devices'
// readings only and the cloud counts the rest.
func TestUplinkCaps(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.MaxDevicesPerGateway = 3 })
	src := newMemSource(1)
	reg := prometheus.NewRegistry()
	up, stop := runUplink(t, e, src, uplink.CompressionZstd, 100, 2, uplink.WithRegisterer(reg))
	rs := readings(700, 7, t0) // dev-0 .. dev-6, in turn
	src.Append(rs...)
	for src.left() > 0 {
		src.waitAck(t, up)
	}
	stop()
	// Which three devices get in depends on which batch the uplink sends
	// first; all of their readings and none of the others' are stored.
	devices := map[string]bool{}
	for _, r := range streamReadings(t, e.be.records()) {
		devices[r.Device] = true
	}
	var admitted []protocol.Reading
	for i := range rs {
		if devices[rs[i].Device] {
			admitted = append(admitted, rs[i])
		}
	}
	if len(devices) != 3 {
		t.Errorf("readings of %d devices stored, want 3: %v", len(devices), devices)
	}
	checkExactlyOnce(t, e.be, admitted)
	if got := e.metric("tributary_ingest_capped_readings_total", "gateway", "gw-1", "cap", "devices"); got != 400 {
		t.Errorf("capped_readings_total = %v, want 400", got)
	}
	if got := e.metric("tributary_ingest_duplicate_readings_total"); got != 0 {
		t.Errorf("%v readings sent again: the refusal made the uplink retry", got)
	}
	checkUplinkRefused(t, e, up, reg, len(rs), "devices", uplink.RefusedDevices, "ingest.max_devices_per_gateway")
	e.mu.Lock()
	defer e.mu.Unlock()
	for status := range e.statuses {
		if status != 200 {
			t.Errorf("answers %v: want only 200", e.statuses)
		}
	}
}

// TestUplinkSeriesCap: readings of series beyond the gateway's series cap
// are refused, acknowledged and deleted by the uplink, which counts them
// as the cloud does.
func TestUplinkSeriesCap(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.MaxSeriesPerGateway = 4 })
	src := newMemSource(1)
	reg := prometheus.NewRegistry()
	var logs logtest.Writer
	up, stop := runUplink(t, e, src, uplink.CompressionGzip, 100, 2, uplink.WithRegisterer(reg),
		uplink.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	rs := readings(800, 2, t0) // dev-0, dev-1 × four metrics: 8 series of 100, interleaved
	for i := range rs {
		rs[i].Name = fmt.Sprintf("metric-%d", i/2%4)
	}
	src.Append(rs...)
	for src.left() > 0 {
		src.waitAck(t, up)
	}
	stop()
	if got := len(streamReadings(t, e.be.records())); got != 400 {
		t.Errorf("%d readings stored, want the 400 of the 4 admitted series", got)
	}
	// Every batch holds refused readings; their log line is rate-limited.
	lines := strings.Count(logs.String(), "the cloud acknowledged readings without storing them")
	if b := up.Stats().BatchesSent; lines < 1 || uint64(lines) >= b {
		t.Errorf("%d log lines about refused readings for %d batches, want 1 and rate-limited:\n%s", lines, b, logs.String())
	}
	checkUplinkRefused(t, e, up, reg, len(rs), "series", uplink.RefusedSeries, "ingest.max_series_per_gateway")
}

// checkUplinkRefused checks that the uplink counted (in Stats, which the
// agent's /healthz shows, and in its metric) exactly the readings the
// cloud refused at the cap, under reason, and kept the cloud's words; and
// that it deleted every reading sent, refused or not.
func checkUplinkRefused(t *testing.T, e *env, up *uplink.Uplink, reg *prometheus.Registry, sent int, capLabel, reason, setting string) {
	t.Helper()
	want := e.metric("tributary_ingest_capped_readings_total", "gateway", "gw-1", "cap", capLabel)
	if want == 0 {
		t.Fatalf("the cloud refused nothing at its %s cap", capLabel)
	}
	s := up.Stats()
	if float64(s.ReadingsRefused) != want || float64(s.RefusedBy[reason]) != want || len(s.RefusedBy) != 1 {
		t.Errorf("uplink counted %d refused, by reason %v; the cloud refused %v (%s)", s.ReadingsRefused, s.RefusedBy, want, reason)
	}
	if !strings.Contains(s.LastRefusedReason, setting) {
		t.Errorf("last refused reason %q does not name %s", s.LastRefusedReason, setting)
	}
	if s.ReadingsAcked != uint64(sent) {
		t.Errorf("uplink acknowledged (and deleted) %d readings, want all %d sent", s.ReadingsAcked, sent)
	}
	var got float64
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tributary_uplink_readings_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					got += m.GetCounter().GetValue()
				} else if l.GetName() == "reason" && m.GetCounter().GetValue() != 0 {
					t.Errorf("tributary_uplink_readings_refused_total{reason=%q} = %v, want 0", l.GetValue(), m.GetCounter().GetValue())
				}
			}
		}
	}
	if got != want {
		t.Errorf("tributary_uplink_readings_refused_total{reason=%q} = %v, the cloud refused %v", reason, got, want)
	}
}

package ingest_test

// End to end with the gateway's real uplink (edge/uplink): the cloud tier
// never imports edge, except here, in a test, to prove the contract.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/edge/uplink"
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
func runUplink(t *testing.T, e *env, src *memSource, comp string, maxReadings, inFlight int) (up *uplink.Uplink, stop func()) {
	t.Helper()
	up, err := uplink.New(src, uplink.Config{
		URL: e.srv.URL, Gateway: "gw-1", Token: e.tok["gw-1"], Compression: comp,
		MaxReadings: maxReadings, MaxAge: 5 * time.Millisecond, MaxInFlight: inFlight,
		Backoff:      uplink.Backoff{Initial: time.Millisecond, Max: 20 * time.Millisecond},
		DrainTimeout: 5 * time.Second,
	})
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
	up, stop := runUplink(t, e, src, uplink.CompressionZstd, 100, 2)
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
	e.mu.Lock()
	defer e.mu.Unlock()
	for status := range e.statuses {
		if status != 200 {
			t.Errorf("answers %v: want only 200", e.statuses)
		}
	}
}

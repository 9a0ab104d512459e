package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/protocol"
)

// settleBackend is a memBackend whose writes can go on after Put has
// reported them unknown, as a Kafka producer's retries do: while holding,
// Put answers ErrOutcomeUnknown for every entry and keeps the entries; a
// later release lands some of them in the stream and fails the others for
// good. Settle waits for that release (ingest.Settler); Scan reads the
// stream back (ingest.Scanner, as scanBackend).
type settleBackend struct {
	scanBackend
	mu       sync.Mutex
	holding  bool
	held     []ingest.Entry
	released chan struct{} // closed by release; nil when nothing is held
	settles  int
}

var (
	_ ingest.Scanner = (*settleBackend)(nil)
	_ ingest.Settler = (*settleBackend)(nil)
)

func (s *settleBackend) Put(ctx context.Context, stream string, entries []ingest.Entry) ([]ingest.Result, error) {
	s.mu.Lock()
	if !s.holding {
		s.mu.Unlock()
		return s.memBackend.Put(ctx, stream, entries)
	}
	defer s.mu.Unlock()
	if s.released == nil {
		s.released = make(chan struct{})
	}
	res := make([]ingest.Result, len(entries))
	for i, e := range entries {
		s.held = append(s.held, ingest.Entry{PartitionKey: e.PartitionKey, Data: append([]byte(nil), e.Data...)})
		res[i].Err = fmt.Errorf("settlebackend: sent, not acknowledged: %w", ingest.ErrOutcomeUnknown)
	}
	return res, nil
}

func (s *settleBackend) Settle(ctx context.Context) error {
	s.mu.Lock()
	s.settles++
	ch := s.released
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("settlebackend: %w", ctx.Err())
	}
}

// hold makes Put keep entries (unknown outcome) or write them again.
func (s *settleBackend) hold(on bool) {
	s.mu.Lock()
	s.holding = on
	s.mu.Unlock()
}

// release writes the held entries land accepts to the stream, drops the
// others (they never land) and ends the wait of Settle.
func (s *settleBackend) release(t *testing.T, land func(i int) bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var landing []ingest.Entry
	for i, e := range s.held {
		if land(i) {
			landing = append(landing, e)
		}
	}
	if len(landing) > 0 {
		if _, err := s.memBackend.Put(context.Background(), protocol.DefaultStream, landing); err != nil {
			t.Fatal(err)
		}
	}
	s.held = nil
	if s.released != nil {
		close(s.released)
		s.released = nil
	}
}

// A write whose outcome is unknown goes on after the 503 (a Kafka
// producer retries it), and the gateway's resend covers a different range
// (re-cut), so its records differ from the first ones. With a backend that
// settles and can be read back, the resend waits for the first write to
// resolve, acknowledges what landed and writes the rest only: nothing
// twice, nothing lost. While the first write is still unresolved, the
// resend is answered 503 and nothing is written.
func TestUnknownOutcomeSettledLive(t *testing.T) {
	var be *settleBackend
	e := newEnv(t, func(o *ingest.Options) {
		if be == nil {
			be = &settleBackend{scanBackend: scanBackend{o.Backend.(*memBackend)}}
		}
		o.Backend = be
		o.PutTimeout = 300 * time.Millisecond
	})
	rs := readings(40, 4, t0)
	be.hold(true)
	if r := e.send("gw-1", 1, 1, rs[:20], "zstd"); r.Status != 503 {
		t.Fatalf("first write: %+v, want 503", r)
	}
	be.hold(false)
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 20 {
		t.Fatalf("uncertain = %v, want 20", got)
	}

	// Re-cut resend (seqs 11-30) while the first write is unresolved:
	// 503, nothing written.
	if r := e.send("gw-1", 1, 11, rs[10:30], "zstd"); r.Status != 503 {
		t.Fatalf("resend before settling: %+v, want 503", r)
	}
	if n := e.be.count(); n != 0 {
		t.Fatalf("%d records written while the first write was unresolved", n)
	}
	if got := e.metric("tributary_ingest_live_recovery_failures_total"); got != 1 {
		t.Errorf("live recovery failures = %v, want 1", got)
	}

	// The first write resolves: the records of two devices land, the
	// others fail for good.
	landed := map[string]bool{}
	be.mu.Lock()
	held := append([]ingest.Entry(nil), be.held...)
	be.mu.Unlock()
	if len(held) != 4 {
		t.Fatalf("%d records held, want one per device (4)", len(held))
	}
	be.release(t, func(i int) bool {
		if i%2 == 0 {
			landed[held[i].PartitionKey] = true
		}
		return i%2 == 0
	})
	landedReadings := 0
	for _, r := range rs[:20] {
		if landed[protocol.PartitionKey(r.Device)] {
			landedReadings++
		}
	}

	r := e.send("gw-1", 1, 11, rs[10:30], "zstd")
	// Seqs 11-20: pending, those of landed devices found; 21-30 new.
	wantFound := 0
	for _, r := range rs[10:20] {
		if landed[protocol.PartitionKey(r.Device)] {
			wantFound++
		}
	}
	if r.Status != 200 || r.num("stored") != 20-wantFound || r.num("duplicates") != wantFound {
		t.Fatalf("resend after settling: %+v, want %d stored and %d recognised", r, 20-wantFound, wantFound)
	}
	// The gateway's own resend of seqs 1-10 (its first batch, re-cut).
	r = e.send("gw-1", 1, 1, rs[:10], "zstd")
	if want := landedReadings - wantFound; r.Status != 200 || r.num("duplicates") != want || r.num("stored") != 10-want {
		t.Fatalf("resend of 1-10: %+v, want %d recognised", r, want)
	}
	if got := e.metric("tributary_ingest_recovered_readings_total"); got != float64(landedReadings) {
		t.Errorf("recovered = %v, want %d", got, landedReadings)
	}
	if got := e.metric("tributary_ingest_possible_duplicate_readings_total"); got != 0 {
		t.Errorf("possible duplicates = %v, want 0", got)
	}
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 0 {
		t.Errorf("uncertain = %v after the resends", got)
	}
	if got := e.metric("tributary_ingest_live_recoveries_total"); got != 3 {
		t.Errorf("live recoveries = %v, want 3 (one failed, two read back)", got)
	}
	checkExactlyOnce(t, e.be, rs[:30])

	// Nothing pending any more: a fresh batch neither settles nor scans.
	be.mu.Lock()
	before := be.settles
	be.mu.Unlock()
	if r := e.send("gw-1", 1, 31, rs[30:], "zstd"); r.Status != 200 || r.num("stored") != 10 {
		t.Fatalf("next batch: %+v", r)
	}
	be.mu.Lock()
	after := be.settles
	be.mu.Unlock()
	if after != before {
		t.Errorf("a batch with nothing pending waited for the backend to settle")
	}
	checkExactlyOnce(t, e.be, rs)
}

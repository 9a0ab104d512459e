package uplink

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// TestSchedRandom drives the two cursors directly through random
// interleavings of commits, batch takes (either end), acks in any order,
// batches left in flight, and drops by the queue, and checks that no
// batch overlaps a seq taken before, batches are contiguous runs of
// stored entries, and in the end every seq is taken and acked exactly
// once unless the queue dropped it first.
func TestSchedRandom(t *testing.T) {
	seeds := uint64(100)
	if testing.Short() {
		seeds = 20
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { schedRandom(t, seed) })
	}
}

func schedRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	src := NewMemSource(3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	appendN := func(n int) {
		rs := make([]protocol.Reading, n)
		for i := range rs {
			us := now.UnixMicro()
			rs[i] = protocol.Reading{Device: "d", Name: "n", Kind: protocol.KindFloat, Value: float64(i), Time: us + int64(i), Received: us}
		}
		src.Append(rs...)
	}
	appendN(rng.IntN(500))
	cfg := Config{URL: "http://127.0.0.1:1", Gateway: "gw", Token: "t",
		MaxReadings: 1 + rng.IntN(60), MaxAge: 10 * time.Millisecond, BacklogShare: 0.05 + 0.95*rng.Float64()}
	u, err := New(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSched(u)
	taken := map[uint64]bool{}
	dropped := map[uint64]bool{}
	var inflight []*job

	take := func() bool {
		j, _, err := s.take(now)
		if err != nil {
			t.Fatal(err)
		}
		if j == nil {
			return false
		}
		if len(j.rs) == 0 || len(j.rs) > cfg.MaxReadings {
			t.Fatalf("batch of %d readings", len(j.rs))
		}
		for i := range j.rs {
			seq := j.first + uint64(i)
			if taken[seq] {
				t.Fatalf("seq %d taken twice (batch %d..%d, fresh %v)", seq, j.first, j.last(), j.fresh)
			}
			if dropped[seq] {
				t.Fatalf("seq %d was dropped before it was read", seq)
			}
			taken[seq] = true
		}
		if j.epoch != 3 {
			t.Fatalf("epoch %d", j.epoch)
		}
		u.claim(span{j.epoch, j.first, j.last()})
		inflight = append(inflight, j)
		return true
	}
	finish := func(i int) {
		j := inflight[i]
		inflight = append(inflight[:i], inflight[i+1:]...)
		if err := src.Ack(t.Context(), j.first, j.last()); err != nil {
			t.Fatal(err)
		}
		u.unclaim(span{j.epoch, j.first, j.last()})
		u.putJob(j)
	}

	for step := 0; step < 400; step++ {
		switch k := rng.IntN(10); {
		case k < 3:
			appendN(1 + rng.IntN(2*cfg.MaxReadings))
		case k < 6:
			if len(inflight) < 6 {
				take()
			}
		case k < 9:
			if len(inflight) > 0 {
				finish(rng.IntN(len(inflight)))
			}
		default:
			// The queue drops its oldest entries (quota policy).
			if h := src.Head(); h != 0 {
				last := h + uint64(rng.IntN(20))
				for seq := h; seq <= min(last, src.Tail()); seq++ {
					// Seqs in the pending fresh batch were read already:
					// they are sent anyway (and their Ack is a no-op).
					if !taken[seq] && !(seq >= s.fresh && seq < s.next) {
						dropped[seq] = true
					}
				}
				src.Drop(h, last)
			}
		}
		now = now.Add(time.Duration(rng.IntN(5)) * time.Millisecond)
	}
	for len(inflight) > 0 {
		finish(0)
	}
	for range 100_000 {
		if !take() {
			now = now.Add(cfg.MaxAge)
			if !take() {
				break
			}
		}
		finish(0)
	}
	for seq := uint64(1); seq <= src.Tail(); seq++ {
		if !taken[seq] && !dropped[seq] {
			t.Fatalf("seq %d never taken (old %d fresh %d next %d)", seq, s.old, s.fresh, s.next)
		}
	}
	if n := src.Stored(); n != 0 {
		t.Fatalf("%d stored at the end", n)
	}
	src.mu.Lock()
	again := src.again
	src.mu.Unlock()
	if again != 0 {
		t.Fatalf("%d seqs acked twice", again)
	}
}

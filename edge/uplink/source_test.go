package uplink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tributary-iot/tributary/protocol"
)

// MemSource is an in-memory Source for tests, faithful to the queue's
// contract: sequence numbers start at 1 and rise; Read returns the
// contiguous run from the first stored seq >= from and stops at a gap;
// Ack deletes and is idempotent; Notify is signalled after each Append.
// It counts acks per seq so tests can check that every reading was
// acknowledged exactly once.
type MemSource struct {
	mu      sync.Mutex
	epoch   uint64
	entries []memEntry // entries[i] has seq i+1
	head    int        // index of the first entry that may be stored
	stored  int
	acks    []uint8 // per seq: times an Ack covered it while stored
	again   int     // seqs acked again after they were deleted by an Ack
	failAck int     // the next failAck Ack calls fail
	reads   int
	notify  chan struct{}
}

type memEntry struct {
	r  protocol.Reading
	ok bool
}

// NewMemSource returns an empty source of the given epoch.
func NewMemSource(epoch uint64) *MemSource {
	return &MemSource{epoch: epoch, notify: make(chan struct{}, 1)}
}

var _ Source = (*MemSource)(nil)

// Append stores readings under the next seqs (a commit) and signals.
func (s *MemSource) Append(rs ...protocol.Reading) (first, last uint64) {
	s.mu.Lock()
	first = uint64(len(s.entries)) + 1
	for _, r := range rs {
		s.entries = append(s.entries, memEntry{r, true})
		s.acks = append(s.acks, 0)
	}
	s.stored += len(rs)
	last = uint64(len(s.entries))
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return first, last
}

// Drop deletes [first, last] without an ack, as a queue's drop-oldest
// policy would.
func (s *MemSource) Drop(first, last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq := first; seq <= last && seq <= uint64(len(s.entries)); seq++ {
		if e := &s.entries[seq-1]; e.ok {
			e.ok = false
			e.r = protocol.Reading{}
			s.stored--
		}
	}
}

// FailAcks makes the next n Ack calls fail.
func (s *MemSource) FailAcks(n int) {
	s.mu.Lock()
	s.failAck += n
	s.mu.Unlock()
}

func (s *MemSource) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

func (s *MemSource) Notify() <-chan struct{} { return s.notify }

func (s *MemSource) Head() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.head < len(s.entries) && !s.entries[s.head].ok {
		s.head++
	}
	if s.head == len(s.entries) {
		return 0
	}
	return uint64(s.head) + 1
}

func (s *MemSource) Tail() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.entries))
}

// memSize is the byte size Read charges per reading (a stand-in for the
// queue's stored size).
func memSize(r *protocol.Reading) int {
	return 40 + len(r.Device) + len(r.Name) + len(r.Unit) + len(r.Str) + len(r.Data)
}

func (s *MemSource) Read(from uint64, maxReadings, maxBytes int, dst []protocol.Reading) (uint64, []protocol.Reading, error) {
	dst = dst[:0]
	if maxReadings <= 0 {
		return 0, dst, fmt.Errorf("memsource: maxReadings %d", maxReadings)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	i := max(int(min(from, uint64(len(s.entries))+1))-1, s.head)
	for i < len(s.entries) && !s.entries[i].ok {
		i++
	}
	if i == len(s.entries) {
		return 0, dst, nil
	}
	first := uint64(i) + 1
	size := 0
	for ; i < len(s.entries) && s.entries[i].ok && len(dst) < maxReadings; i++ {
		size += memSize(&s.entries[i].r)
		if len(dst) > 0 && size > maxBytes {
			break
		}
		dst = append(dst, s.entries[i].r)
	}
	return first, dst, nil
}

func (s *MemSource) Ack(ctx context.Context, first, last uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAck > 0 {
		s.failAck--
		return errors.New("memsource: injected ack failure")
	}
	if first == 0 || first > last || last > uint64(len(s.entries)) {
		return fmt.Errorf("memsource: ack [%d, %d] outside [1, %d]", first, last, len(s.entries))
	}
	for seq := first; seq <= last; seq++ {
		e := &s.entries[seq-1]
		switch {
		case e.ok:
			e.ok = false
			e.r = protocol.Reading{}
			s.stored--
			s.acks[seq-1]++
		case s.acks[seq-1] > 0:
			s.again++
		}
	}
	return nil
}

// Stored is the number of readings still stored.
func (s *MemSource) Stored() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored
}

// Acked is the number of readings deleted by an Ack.
func (s *MemSource) Acked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.acks {
		if a > 0 {
			n++
		}
	}
	return n
}

// CheckAckedOnce reports every seq in [1, Tail] not acked exactly once
// (dropped seqs excepted), and any ack of an already deleted seq.
func (s *MemSource) CheckAckedOnce(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var missing []uint64
	for i, e := range s.entries {
		if e.ok {
			missing = append(missing, uint64(i)+1)
		}
	}
	if len(missing) > 0 {
		t.Errorf("memsource: %d readings never acked, e.g. seqs %v", len(missing), missing[:min(len(missing), 10)])
	}
	if s.again > 0 {
		t.Errorf("memsource: %d seqs acked again after they were deleted", s.again)
	}
}

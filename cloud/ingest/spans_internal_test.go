package ingest

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/tributary-iot/tributary/protocol"
)

// model is a set of seqs as a map, the reference for spans.
type model map[uint64]bool

func (m model) spans() spans {
	var seqs []uint64
	for s := range m {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	return fromSeqs(seqs)
}

func checkInvariant(t *testing.T, ss spans) {
	t.Helper()
	for i, s := range ss {
		if s.lo > s.hi {
			t.Fatalf("span %d: %d > %d", i, s.lo, s.hi)
		}
		if i > 0 && ss[i-1].hi+1 >= s.lo {
			t.Fatalf("spans %d and %d touch or overlap: %v", i-1, i, ss)
		}
	}
}

// FuzzSpans applies adds and removes from the fuzzer to spans and to a
// map, and compares add, remove, missing, intersect and count.
func FuzzSpans(f *testing.F) {
	f.Add([]byte{0, 1, 5, 0, 7, 9, 1, 3, 8, 0, 10, 10})
	f.Add([]byte{0, 0, 0, 0, 2, 2, 1, 0, 4})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var ss spans
		m := model{}
		for len(ops) >= 3 {
			op, lo := ops[0]%4, uint64(ops[1]%64)
			hi := lo + uint64(ops[2]%16)
			ops = ops[3:]
			switch op {
			case 0:
				ss = ss.add(lo, hi)
				for s := lo; s <= hi; s++ {
					m[s] = true
				}
			case 1:
				ss = ss.remove(lo, hi)
				for s := lo; s <= hi; s++ {
					delete(m, s)
				}
			case 2:
				var want spans
				for s := lo; s <= hi; s++ {
					if !m[s] {
						want = want.add(s, s)
					}
				}
				if got := ss.missing(lo, hi); !slices.Equal(got, want) {
					t.Fatalf("missing(%d, %d) of %v = %v, want %v", lo, hi, ss, got, want)
				}
			case 3:
				var want spans
				for s := lo; s <= hi; s++ {
					if m[s] {
						want = want.add(s, s)
					}
				}
				if got := ss.intersect(lo, hi); !slices.Equal(got, want) {
					t.Fatalf("intersect(%d, %d) of %v = %v, want %v", lo, hi, ss, got, want)
				}
			}
			checkInvariant(t, ss)
			if want := m.spans(); !slices.Equal(ss, want) {
				t.Fatalf("set %v, want %v", ss, want)
			}
			if ss.count() != uint64(len(m)) {
				t.Fatalf("count %d, want %d", ss.count(), len(m))
			}
		}
	})
}

func TestSpansEdges(t *testing.T) {
	const top = ^uint64(0)
	ss := spans{}.add(top-2, top).add(0, 0).add(1, 1)
	if !slices.Equal(ss, spans{{0, 1}, {top - 2, top}}) {
		t.Fatalf("%v", ss)
	}
	if got := ss.missing(top-5, top); !slices.Equal(got, spans{{top - 5, top - 3}}) {
		t.Errorf("missing at the top: %v", got)
	}
	if got := ss.remove(top, top); !slices.Equal(got, spans{{0, 1}, {top - 2, top - 1}}) {
		t.Errorf("remove at the top: %v", got)
	}
	kept, dropped := spans{{1, 1}, {3, 3}, {5, 5}}.trim(2)
	if !slices.Equal(kept, spans{{3, 3}, {5, 5}}) || !slices.Equal(dropped, spans{{1, 1}}) {
		t.Errorf("trim: %v %v", kept, dropped)
	}
	st := ackState{updated: 1700000000, acked: spans{{0, 5}, {7, 7}, {top - 1, top}}, pending: spans{{9, 12}}}
	got, err := decodeAckState(st.encode())
	if err != nil || !slices.Equal(got.acked, st.acked) || !slices.Equal(got.pending, st.pending) || got.updated != st.updated {
		t.Errorf("round trip: %+v, %v", got, err)
	}
}

// FuzzDecodeAckState: no panics; what decodes is a valid set and survives
// an encode and decode unchanged.
func FuzzDecodeAckState(f *testing.F) {
	f.Add((&ackState{updated: 5, acked: spans{{1, 100}, {200, 300}}, pending: spans{{301, 400}}, pendingFrom: 1_700_000_000_000}).encode())
	f.Add([]byte{1, 5, 1, 0, 9, 0}) // version 1: no pendingFrom
	f.Add((&ackState{}).encode())
	f.Add(binary.AppendUvarint([]byte{1, 0, 2, 0, 0}, 1<<63))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeAckState(b)
		if err != nil {
			return
		}
		checkInvariant(t, st.acked)
		checkInvariant(t, st.pending)
		again, err := decodeAckState(st.encode())
		if err != nil || again.updated != st.updated || again.pendingFrom != st.pendingFrom || !slices.Equal(again.acked, st.acked) || !slices.Equal(again.pending, st.pending) {
			t.Fatalf("%x decodes as %+v, which round-trips as %+v, %v", b, st, again, err)
		}
	})
}

// FuzzParseAckKey: a key of the ack log parses to not ok on garbage,
// never a panic, and what parses is a valid gateway id and encodes back to
// the same bytes.
func FuzzParseAckKey(f *testing.F) {
	f.Add(ackKey{"gw-1", 7}.bytes())
	f.Add(ackKey{"a", 1<<64 - 1}.bytes())
	f.Add(append([]byte("bad id!\x00"), make([]byte, 8)...))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, ok := parseAckKey(b)
		if !ok {
			return
		}
		if err := protocol.CheckDeviceID(k.gateway); err != nil {
			t.Fatalf("%x parsed with gateway %q: %v", b, k.gateway, err)
		}
		if got := k.bytes(); !bytes.Equal(got, b) {
			t.Fatalf("%x parses to %+v, which encodes as %x", b, k, got)
		}
	})
}

func TestAckKey(t *testing.T) {
	k := ackKey{"gw-1", 1<<64 - 1}
	got, ok := parseAckKey(k.bytes())
	if !ok || got != k {
		t.Errorf("%+v %v", got, ok)
	}
	if _, ok := parseAckKey([]byte("short")); ok {
		t.Error("short key parsed")
	}
}

package queue

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// dedupeChunk is how many hashes one dedupe record holds: 512 bytes,
// seven records to a page. (bbolt never splits a node of four elements
// or fewer, so records near a page in size would make multi-page nodes
// that need contiguous free runs.)
const dedupeChunk = 64

// hashSet remembers natural-key hashes for dedupe: two generations of
// maps, so old keys are forgotten by dropping a whole map rather than by
// deleting entries one by one (a FIFO of deletes leaves a Go map full of
// tombstones that slow every probe). It holds between gen and 2×gen of
// the most recent hashes.
type hashSet struct {
	gen       int
	cur, prev map[uint64]struct{}
}

func newHashSet(gen int) *hashSet {
	return &hashSet{gen: gen, cur: make(map[uint64]struct{})}
}

func (s *hashSet) has(h uint64) bool {
	if _, ok := s.cur[h]; ok {
		return true
	}
	_, ok := s.prev[h]
	return ok
}

func (s *hashSet) add(h uint64) { s.cur[h] = struct{}{} }

// undo forgets hashes added by a commit that failed.
func (s *hashSet) undo(h uint64) { delete(s.cur, h) }

// rotate starts a new generation once the current one is full; call it
// between commits.
func (s *hashSet) rotate() {
	if s.gen > 0 && len(s.cur) >= s.gen {
		s.prev, s.cur = s.cur, make(map[uint64]struct{}, s.gen)
	}
}

// dedupeAppend records the hashes of seqs first.. in the dedupe bucket:
// records of up to dedupeChunk hashes keyed by the seq of their first,
// extending the last record while it has room.
func (q *Queue) dedupeAppend(b *bolt.Bucket, first uint64, hs []uint64, d *delta) error {
	w := &q.w
	b.FillPercent = 1.0
	d.dedupeAdded += len(hs)
	if k, v := b.Cursor().Last(); k != nil && len(k) == 8 {
		n := len(v) / 8
		if binary.BigEndian.Uint64(k)+uint64(n) == first && n < dedupeChunk {
			take := min(dedupeChunk-n, len(hs))
			start := len(w.vals)
			w.vals = append(w.vals, v...)
			for _, h := range hs[:take] {
				w.vals = binary.BigEndian.AppendUint64(w.vals, h)
			}
			if err := b.Put(q.key(binary.BigEndian.Uint64(k)), w.vals[start:]); err != nil {
				return err
			}
			first += uint64(take)
			hs = hs[take:]
		}
	}
	for len(hs) > 0 {
		take := min(dedupeChunk, len(hs))
		start := len(w.vals)
		for _, h := range hs[:take] {
			w.vals = binary.BigEndian.AppendUint64(w.vals, h)
		}
		if err := b.Put(q.key(first), w.vals[start:]); err != nil {
			return err
		}
		first += uint64(take)
		hs = hs[take:]
	}
	return nil
}

// dedupeTrim deletes the oldest dedupe records while at least
// DedupeWindow hashes remain. (The in-memory set forgets by generations,
// see hashSet, so it may remember more until the next restart.)
func (q *Queue) dedupeTrim(b *bolt.Bucket, d *delta) error {
	count := q.w.dedupeCount + d.dedupeAdded
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		n := len(v) / 8
		if count-n < q.lim.dedupeWindow {
			break
		}
		if err := c.Delete(); err != nil {
			return err
		}
		count -= n
		d.dedupeAdded -= n
		d.freed = true
	}
	return nil
}

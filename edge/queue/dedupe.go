package queue

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

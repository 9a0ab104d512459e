package ingest

// span is the inclusive seq range [lo, hi].
type span struct{ lo, hi uint64 }

func (s span) len() uint64 { return s.hi - s.lo + 1 }

// spans is a set of seqs: sorted, disjoint, and never adjacent (touching
// spans are merged), so a contiguous run is always one span.
type spans []span

// count is the number of seqs in the set.
func (ss spans) count() uint64 {
	var n uint64
	for _, s := range ss {
		n += s.len()
	}
	return n
}

// search returns the index of the first span whose hi >= seq.
func (ss spans) search(seq uint64) int {
	lo, hi := 0, len(ss)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ss[m].hi < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// add returns the set with [lo, hi] added (it may reuse ss's array).
func (ss spans) add(lo, hi uint64) spans {
	// First span that touches or follows [lo, hi]: hi+1 >= lo (care at 0).
	i := 0
	if lo > 0 {
		i = ss.search(lo - 1)
	}
	j := i
	for j < len(ss) && (hi == ^uint64(0) || ss[j].lo <= hi+1) {
		lo, hi = min(lo, ss[j].lo), max(hi, ss[j].hi)
		j++
	}
	// Replace ss[i:j] by the merged span.
	if i == j {
		ss = append(ss, span{})
		copy(ss[i+1:], ss[i:])
		ss[i] = span{lo, hi}
		return ss
	}
	ss[i] = span{lo, hi}
	return append(ss[:i+1], ss[j:]...)
}

// remove returns the set without [lo, hi] (it may reuse ss's array).
func (ss spans) remove(lo, hi uint64) spans {
	i := ss.search(lo)
	if i == len(ss) || ss[i].lo > hi {
		return ss
	}
	var keep [2]span
	k := keep[:0]
	if ss[i].lo < lo {
		k = append(k, span{ss[i].lo, lo - 1})
	}
	j := i
	for j < len(ss) && ss[j].lo <= hi {
		j++
	}
	if last := ss[j-1]; last.hi > hi {
		k = append(k, span{hi + 1, last.hi})
	}
	out := make(spans, 0, len(ss)-(j-i)+len(k))
	out = append(out, ss[:i]...)
	out = append(out, k...)
	return append(out, ss[j:]...)
}

// missing returns the parts of [lo, hi] not in the set, in order.
func (ss spans) missing(lo, hi uint64) spans {
	var out spans
	cur := lo
	for i := ss.search(lo); i < len(ss) && ss[i].lo <= hi; i++ {
		if ss[i].lo > cur {
			out = append(out, span{cur, ss[i].lo - 1})
		}
		if ss[i].hi >= hi {
			return out
		}
		cur = ss[i].hi + 1
	}
	return append(out, span{cur, hi})
}

// intersect returns the parts of [lo, hi] in the set.
func (ss spans) intersect(lo, hi uint64) spans {
	var out spans
	for i := ss.search(lo); i < len(ss) && ss[i].lo <= hi; i++ {
		out = append(out, span{max(lo, ss[i].lo), min(hi, ss[i].hi)})
	}
	return out
}

// trim drops the lowest spans until at most max remain, returning the
// result and the spans dropped.
func (ss spans) trim(max int) (spans, spans) {
	if len(ss) <= max {
		return ss, nil
	}
	n := len(ss) - max
	return append(spans(nil), ss[n:]...), ss[:n]
}

// fromSeqs builds a set from seqs in ascending order.
func fromSeqs(seqs []uint64) spans {
	var out spans
	for _, s := range seqs {
		if n := len(out); n > 0 && out[n-1].hi+1 == s {
			out[n-1].hi = s
			continue
		}
		out = append(out, span{s, s})
	}
	return out
}

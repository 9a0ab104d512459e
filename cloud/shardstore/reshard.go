package shardstore

import (
	"context"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// A reshard closes its parent shards at once: a parent's
// EndingSequenceNumber takes the counter's next value (which no record
// ever gets), so it is above all the parent's records and below every
// child's. Parents stay readable until the retention period has passed
// since they closed; then the trimmer removes them. Reshards are
// immediate: the stream never leaves ACTIVE.

// reshard is the state of one resharding transaction.
type reshard struct {
	s     *Store
	c     *streamMeta // the clone being changed
	next  uint64
	now   int64
	added []uint32 // shards created
}

func (s *Store) newReshard(m *streamMeta) *reshard {
	return &reshard{s: s, c: m.clone(), next: s.w.next, now: s.nowMs()}
}

func (r *reshard) close(idx uint32) {
	sh := r.c.shard(idx)
	sh.Closed = true
	sh.Last = r.next
	sh.ClosedAt = r.now
	r.next++
}

func (r *reshard) create(start, end HashKey, parent, adjacent int64) uint32 {
	idx := r.c.NextShard
	r.c.NextShard++
	r.c.Shards = append(r.c.Shards, shardMeta{
		Index: idx, Start: start, End: end, Parent: parent, Adjacent: adjacent,
		First: r.next, Created: r.now,
	})
	r.added = append(r.added, idx)
	return idx
}

// split closes idx and creates [Start, at−1] and [at, End].
func (r *reshard) split(idx uint32, at HashKey) {
	sh := *r.c.shard(idx)
	r.close(idx)
	r.create(sh.Start, at.sub1(), int64(idx), -1)
	r.create(at, sh.End, int64(idx), -1)
	r.c.derive()
}

// merge closes a and b (adjacent, either order) and creates their union
// with parent a and adjacent parent b.
func (r *reshard) merge(a, b uint32) uint32 {
	sa, sb := *r.c.shard(a), *r.c.shard(b)
	lo, hi := sa, sb
	if sb.Start.Cmp(sa.Start) < 0 {
		lo, hi = sb, sa
	}
	r.close(a)
	r.close(b)
	idx := r.create(lo.Start, hi.End, int64(a), int64(b))
	r.c.derive()
	return idx
}

// commit creates the new shards' buckets and saves the metadata; the
// returned function publishes it.
func (r *reshard) commit(tx *bolt.Tx, what string) (func(), error) {
	sb := tx.Bucket(bucketRecords).Bucket(u64key(r.c.ID))
	for _, idx := range r.added {
		if _, err := sb.CreateBucket(u32key(idx)); err != nil {
			return nil, err
		}
	}
	if err := r.s.saveStream(tx, r.c, r.next); err != nil {
		return nil, err
	}
	return func() {
		r.s.setNext(r.next)
		r.s.publishStream(r.c.Name, r.c)
		r.s.log.Info("stream resharded", "stream", r.c.Name, "op", what, "open_shards", len(r.c.open), "new_shards", len(r.added))
	}, nil
}

// provisioned refuses resharding an ON_DEMAND stream, as Kinesis does.
func provisioned(m *streamMeta) error {
	if m.mode() == OnDemand {
		return invalidf("stream %s is in ON_DEMAND mode, whose shards are not resharded by hand: switch it to PROVISIONED first (UpdateStreamMode)", m.Name)
	}
	return nil
}

func (s *Store) openShard(m *streamMeta, shardID string) (*shardMeta, error) {
	if err := provisioned(m); err != nil {
		return nil, err
	}
	idx, ok := ParseShardID(shardID)
	var sh *shardMeta
	if ok {
		sh = m.shard(idx)
	}
	if sh == nil {
		return nil, errorf(ErrShardNotFound, "could not find shard %s in stream %s", shardID, m.Name)
	}
	if sh.Closed {
		return nil, errorf(ErrInvalidArgument, "shard %s in stream %s is closed: only open shards can be split or merged", shardID, m.Name)
	}
	return sh, nil
}

// SplitShard closes an open shard and creates two children: one from its
// starting hash key to newStartingHashKey−1, one from newStartingHashKey to
// its ending hash key (so StartingHashKey < newStartingHashKey ≤
// EndingHashKey). Each child's parent is the split shard.
func (s *Store) SplitShard(ctx context.Context, stream, shardID string, newStartingHashKey HashKey) error {
	return s.do(ctx, func(tx *bolt.Tx) (func(), error) {
		m := s.streams[stream]
		if m == nil {
			return nil, streamNotFound(stream)
		}
		sh, err := s.openShard(m, shardID)
		if err != nil {
			return nil, err
		}
		if newStartingHashKey.Cmp(sh.Start) <= 0 || newStartingHashKey.Cmp(sh.End) > 0 {
			return nil, invalidf("NewStartingHashKey %s used in SplitShard on shard %s in stream %s must be greater than the shard's StartingHashKey %s and at most its EndingHashKey %s",
				newStartingHashKey, shardID, stream, sh.Start, sh.End)
		}
		if open := s.openShardTotal(); open+1 > s.opts.MaxShards {
			return nil, errorf(ErrLimitExceeded, "splitting would exceed the shard limit %d (open shards now: %d)", s.opts.MaxShards, open)
		}
		r := s.newReshard(m)
		r.split(sh.Index, newStartingHashKey)
		return r.commit(tx, "split")
	})
}

// MergeShards closes two open shards with adjacent hash key ranges and
// creates one child covering both, whose parent is shardID and adjacent
// parent adjacentShardID.
func (s *Store) MergeShards(ctx context.Context, stream, shardID, adjacentShardID string) error {
	return s.do(ctx, func(tx *bolt.Tx) (func(), error) {
		m := s.streams[stream]
		if m == nil {
			return nil, streamNotFound(stream)
		}
		a, err := s.openShard(m, shardID)
		if err != nil {
			return nil, err
		}
		b, err := s.openShard(m, adjacentShardID)
		if err != nil {
			return nil, err
		}
		if !adjacent(a, b) && !adjacent(b, a) {
			return nil, invalidf("shards %s and %s in stream %s are not an adjacent pair of shards eligible for merging", shardID, adjacentShardID, stream)
		}
		r := s.newReshard(m)
		r.merge(a.Index, b.Index)
		return r.commit(tx, "merge")
	})
}

// UpdateShardCount reshards the stream to target open shards of equal
// size (UNIFORM_SCALING, the only scaling type) and returns the number of
// open shards before. Like Kinesis it splits and merges: first every open
// shard that straddles a boundary of the uniform layout is split there
// (repeatedly), then the shards inside each uniform range are merged left
// to right into one. That keeps the lineage exact (every child has one
// parent, or two adjacent ones) at the price of short-lived intermediate
// shards, which are closed at once, hold no records and expire with the
// retention period like any closed shard. target must be within [half,
// double] the current open shard count and the shard limit. A stream
// already in that layout is left as it is.
func (s *Store) UpdateShardCount(ctx context.Context, stream string, target int) (int, error) {
	var prev int
	err := s.do(ctx, func(tx *bolt.Tx) (func(), error) {
		m := s.streams[stream]
		if m == nil {
			return nil, streamNotFound(stream)
		}
		open := len(m.open)
		prev = open
		if err := provisioned(m); err != nil {
			return nil, err
		}
		if target < 1 {
			return nil, invalidf("target shard count %d must be at least 1", target)
		}
		if target > 2*open || 2*target < open {
			return nil, errorf(ErrLimitExceeded, "UpdateShardCount cannot scale stream %s from %d to %d shards: the target must be between half and double the current open shard count", stream, open, target)
		}
		if total := s.openShardTotal(); total-open+target > s.opts.MaxShards {
			return nil, errorf(ErrLimitExceeded, "UpdateShardCount to %d shards would exceed the shard limit %d (open shards now: %d)", target, s.opts.MaxShards, total)
		}
		starts := uniformStarts(target)
		if uniform(m, starts) {
			return nil, nil
		}
		r := s.newReshard(m)
		for _, b := range starts[1:] {
			sh := r.c.route(b)
			if sh.Start != b {
				r.split(sh.Index, b)
			}
		}
		for i, lo := range starts {
			hi := MaxHashKey
			if i+1 < len(starts) {
				hi = starts[i+1].sub1()
			}
			var in []uint32
			for _, j := range r.c.open {
				sh := &r.c.Shards[j]
				if sh.Start.Cmp(lo) >= 0 && sh.End.Cmp(hi) <= 0 {
					in = append(in, sh.Index)
				}
			}
			sort.Slice(in, func(a, b int) bool { return r.c.shard(in[a]).Start.Cmp(r.c.shard(in[b]).Start) < 0 })
			for len(in) > 1 {
				in = append([]uint32{r.merge(in[0], in[1])}, in[2:]...)
			}
		}
		return r.commit(tx, "update-shard-count")
	})
	return prev, err
}

// uniform reports whether m's open shards start exactly at starts.
func uniform(m *streamMeta, starts []HashKey) bool {
	if len(m.open) != len(starts) {
		return false
	}
	for i, j := range m.open {
		if m.Shards[j].Start != starts[i] {
			return false
		}
	}
	return true
}

// adjacent reports whether b starts right after a ends.
func adjacent(a, b *shardMeta) bool { return a.End != MaxHashKey && a.End.add1() == b.Start }

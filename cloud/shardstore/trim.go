package shardstore

import (
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TrimStats says what one Trim deleted.
type TrimStats struct {
	Records int // expired records deleted from open or live closed shards
	Shards  int // expired closed shards removed (with their records)
}

// Trim deletes the records older than their stream's retention period and
// removes closed shards that closed before it (every record of theirs has
// expired). Reads already skip expired records; Trim reclaims the space.
// It works in transactions of at most 50,000 deletions so that puts
// interleave. The trimmer calls it every TrimInterval.
func (s *Store) Trim(ctx context.Context) (TrimStats, error) {
	var total TrimStats
	for {
		var st TrimStats
		more := false
		err := s.do(ctx, func(tx *bolt.Tx) (func(), error) {
			var err error
			st, more, err = s.trimRound(tx)
			return s.trimPublish(st), err
		})
		if err != nil {
			return total, err
		}
		total.Records += st.Records
		total.Shards += st.Shards
		if !more {
			if total.Records > 0 || total.Shards > 0 {
				s.log.Info("trimmed expired data", "records", total.Records, "shards", total.Shards)
			}
			return total, nil
		}
	}
}

type trimChange struct {
	m       *streamMeta
	dropped []uint32
}

// trimRound deletes up to trimChunk expired records and every expired
// closed shard; more reports that expired records remain.
func (s *Store) trimRound(tx *bolt.Tx) (st TrimStats, more bool, err error) {
	now := s.nowMs()
	budget := trimChunk
	s.w.trimChanges = s.w.trimChanges[:0]
	records := tx.Bucket(bucketRecords)
	var keys [][]byte
	for _, m := range s.streams {
		horizon := m.horizonMs(now)
		sb := records.Bucket(u64key(m.ID))
		var dropped []uint32
		for i := range m.Shards {
			sh := &m.Shards[i]
			if sh.Closed && sh.ClosedAt < horizon {
				if err := sb.DeleteBucket(u32key(sh.Index)); err != nil {
					return st, false, err
				}
				dropped = append(dropped, sh.Index)
				continue
			}
			if budget == 0 {
				more = true
				continue
			}
			b := sb.Bucket(u32key(sh.Index))
			keys = keys[:0]
			c := b.Cursor()
			for k, v := c.First(); k != nil && recordTime(v) < horizon; k, v = c.Next() {
				if budget == 0 {
					more = true
					break
				}
				keys = append(keys, append([]byte(nil), k...))
				budget--
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return st, false, err
				}
			}
			st.Records += len(keys)
		}
		if len(dropped) > 0 {
			c := m.clone()
			keep := c.Shards[:0]
			for _, sh := range c.Shards {
				if !(sh.Closed && sh.ClosedAt < horizon) {
					keep = append(keep, sh)
				}
			}
			c.Shards = keep
			c.derive()
			if err := s.saveStream(tx, c, s.w.next); err != nil {
				return st, false, err
			}
			s.w.trimChanges = append(s.w.trimChanges, trimChange{c, dropped})
			st.Shards += len(dropped)
		}
	}
	return st, more, nil
}

func (s *Store) trimPublish(st TrimStats) func() {
	changes := append([]trimChange(nil), s.w.trimChanges...)
	return func() {
		for _, ch := range changes {
			s.publishStream(ch.m.Name, ch.m)
			s.dropRuntime(ch.m.ID, ch.dropped)
		}
	}
}

func (s *Store) trimmer() {
	defer close(s.trimDone)
	if s.opts.TrimInterval < 0 {
		<-s.closing
		return
	}
	t := time.NewTicker(s.opts.TrimInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			if _, err := s.Trim(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Error("shardstore: trim failed", "err", err)
			}
		}
	}
}

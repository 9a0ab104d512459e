package shardstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
)

// One writer goroutine owns every write transaction. Put calls queue a
// request (a bounded channel: past pendingRequests waiting calls, Put
// blocks, honouring its context); the writer takes everything pending, up
// to MaxBatch records (one call is never split), routes and admits each
// entry, writes them all in one transaction, commits (fsync) and then
// releases the callers. The next round starts as soon as the commit
// returns, so batches grow with load without any timer. Control operations
// (create, delete, reshard, retention, trim) run in their own transactions
// between rounds.

const (
	stPending int32 = iota
	stTaken
	stCancelled
)

type putReq struct {
	ctx    context.Context
	stream string
	n      int
	hashes []HashKey
	vals   [][]byte // encoded values; the writer fills in time and CRC
	sizes  []int    // partition key + data bytes, for the write limits
	state  atomic.Int32
	done   chan struct{}

	// results, set by the writer
	err   error
	pos   []uint64 // 0: not stored (errs[i] says why)
	shard []uint32
	rts   []*shardRuntime // the shard of each stored entry, for its counters
	errs  []error
	ts    int64
}

type ctrlReq struct {
	fn    func(tx *bolt.Tx) (publish func(), err error)
	state atomic.Int32
	done  chan struct{}
	err   error
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (s *Store) run() {
	defer close(s.writerDone)
	for {
		select {
		case <-s.closing:
			s.shutdown()
			return
		case c := <-s.ctrl:
			s.runCtrl(c)
		case r := <-s.puts:
			w := &s.w
			w.batch = append(w.batch[:0], r)
			n := r.n
		gather:
			for n < s.opts.MaxBatch {
				select {
				case r := <-s.puts:
					w.batch = append(w.batch, r)
					n += r.n
				default:
					break gather
				}
			}
			s.commitPuts(w.batch)
			clear(w.batch)
		}
	}
}

// shutdown fails everything still queued.
func (s *Store) shutdown() {
	for {
		select {
		case r := <-s.puts:
			if r.state.CompareAndSwap(stPending, stTaken) {
				r.err = ErrClosed
				close(r.done)
			}
		case c := <-s.ctrl:
			if c.state.CompareAndSwap(stPending, stTaken) {
				c.err = ErrClosed
				close(c.done)
			}
		default:
			return
		}
	}
}

func (s *Store) runCtrl(c *ctrlReq) {
	if !c.state.CompareAndSwap(stPending, stTaken) {
		return
	}
	var publish func()
	err := s.db.Update(func(tx *bolt.Tx) error {
		p, err := c.fn(tx)
		publish = p
		return err
	})
	if err == nil && publish != nil {
		publish()
	}
	if err != nil {
		if _, ok := errors.AsType[*Error](err); !ok {
			s.log.Error("shardstore: control transaction failed", "err", err)
			err = s.commitError(err)
		}
	}
	c.err = err
	close(c.done)
}

// do runs fn in a write transaction of its own on the writer goroutine;
// publish runs after the commit.
func (s *Store) do(ctx context.Context, fn func(tx *bolt.Tx) (func(), error)) error {
	c := &ctrlReq{fn: fn, done: make(chan struct{})}
	select {
	case s.ctrl <- c:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		if c.state.CompareAndSwap(stPending, stCancelled) {
			return ctx.Err()
		}
		<-c.done // taken: it finishes within one transaction
		return c.err
	case <-s.writerDone:
		select {
		case <-c.done:
			return c.err
		default:
			return ErrClosed
		}
	}
}

func (s *Store) commitPuts(batch []*putReq) {
	w := &s.w
	tx, err := s.db.Begin(true)
	if err != nil {
		s.failAll(batch, fmt.Errorf("shardstore: begin: %w", err))
		return
	}
	now := s.opts.Now()
	nowNs := now.UnixNano()
	ts := max(now.UnixMilli(), w.lastTs) // arrival times never go back
	next := w.next
	w.keys = w.keys[:0]
	clear(w.bkts)
	records := tx.Bucket(bucketRecords)
	stored := 0
	var txErr error
	for _, r := range batch {
		if !r.state.CompareAndSwap(stPending, stTaken) {
			continue // cancelled by its caller
		}
		m := s.streams[r.stream]
		if m == nil {
			r.err = streamNotFound(r.stream)
			continue
		}
		r.ts = ts
		var sb *bolt.Bucket
		od := s.onDemandState(m)
		for i := range r.n {
			sh := m.route(r.hashes[i])
			rt := s.runtime(m.ID, sh.Index)
			if od != nil && !od.admit(now, r.sizes[i]) || od == nil && !rt.admitWrite(nowNs, r.sizes[i], &s.thr) {
				rt.c.writeExceeded.Add(1)
				r.errs[i] = errorf(ErrThrottled, "rate exceeded for shard %s in stream %s", ShardID(sh.Index), m.Name)
				continue
			}
			k := rtKey{m.ID, sh.Index}
			b := w.bkts[k]
			if b == nil {
				if sb == nil {
					sb = records.Bucket(u64key(m.ID))
				}
				b = sb.Bucket(u32key(sh.Index))
				b.FillPercent = 1.0
				w.bkts[k] = b
			}
			v := r.vals[i]
			sealRecord(v, ts)
			start := len(w.keys)
			w.keys = binary.BigEndian.AppendUint64(w.keys, next)
			if err := b.Put(w.keys[start:start+8:start+8], v); err != nil {
				txErr = err
				break
			}
			r.pos[i], r.shard[i] = next, sh.Index
			r.rts[i] = rt
			next++
			stored++
		}
		if txErr != nil {
			break
		}
	}
	if txErr == nil && stored > 0 {
		txErr = tx.Bucket(bucketMeta).Put(keyState, encodeState(next, ts))
	}
	if txErr == nil {
		if stored > 0 {
			txErr = tx.Commit()
		} else {
			txErr = tx.Rollback()
		}
	} else {
		_ = tx.Rollback()
	}
	if txErr != nil {
		s.log.Error("shardstore: commit failed", "err", txErr)
		err := s.commitError(txErr)
		for _, r := range batch {
			if r.state.Load() == stTaken {
				r.err = err
			}
		}
	} else if stored > 0 {
		countStored(batch)
		w.lastTs = ts
		s.lastTs.Store(ts)
		s.setNext(next)
	}
	for _, r := range batch {
		if r.state.Load() == stTaken {
			close(r.done)
		}
	}
}

// commitError describes a failed commit: nothing of it was stored.
func (s *Store) commitError(err error) error {
	if boltfile.NoSpace(err) {
		return errorf(ErrNoSpace, "no space to grow %s (%v): nothing of this call was stored; free disk space and retry", s.path, err)
	}
	return fmt.Errorf("shardstore: commit: %w", err)
}

func (s *Store) failAll(batch []*putReq, err error) {
	s.log.Error("shardstore: write failed", "err", err)
	for _, r := range batch {
		if r.state.CompareAndSwap(stPending, stTaken) {
			r.err = err
			close(r.done)
		}
	}
}

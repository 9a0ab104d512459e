package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// One round of the writer is one write transaction, in these steps:
//
//	plan      split the control requests, choose bbolt's size limit;
//	          begin the transaction and apply acks, dead letters and
//	          quarantines (beginRound, ctrl.go)
//	admit     take the held appends, FIFO, while the quota estimate
//	          (quota.go) says they fit; mark duplicates
//	store     put the admitted readings under consecutive seqs
//	make room under DropOldest, delete the oldest readings for the
//	          appends that did not fit (they go in a later round)
//	commit    write the state record, commit with fsync
//	release   apply the changes to memory and release the callers
//
// A failure before the commit rolls back and fails the requests taken
// into the round; bbolt refusing to grow the file (the estimate was short)
// undoes the round in memory and retries it (refused).

// roundState is one round's working set.
type roundState struct {
	d     delta
	ctrl  []*request // acks, dead letters, quarantines (not compactions)
	limit int64      // bbolt MaxSize for this transaction
	// onlyDeletes: no control request adds data (no dead letter).
	onlyDeletes bool
	// tight: near the quota, every freed page counts (see begin).
	tight   bool
	tx      *bolt.Tx // nil once committed or rolled back
	entries *bolt.Bucket

	avail    int        // pages the appends may allocate (math.MaxInt: no quota)
	est      estimator  // pages of the admitted appends
	taken    []*request // admitted appends
	stopped  int        // index in held of the first append that did not fit, -1 if all did
	firstNew uint64     // seq of the first reading stored in this round
	tooLarge bool       // an append was failed with ErrTooLarge
}

// delta collects one round's changes, applied to memory only after the
// commit succeeds.
type delta struct {
	st                  state
	depth, bytes        int64
	dlCount             int
	dlBytes             int64
	dedupeAdded         int
	freed               bool // something was deleted: the next round may fit more
	dropped             int
	dropFirst, dropLast uint64
	modified            bool
	headKnown           bool
	head                uint64
	oldestRecv          int64
	stored              int
	compact             []*request
	rest                []*request // appends left for a later round
}

// round runs one transaction; it reports whether another round should
// follow at once (more may fit now).
func (q *Queue) round() bool {
	q.sweep()
	if !q.actionable() {
		return false
	}
	q.w.retry = false
	rs := q.plan()
	if !q.beginRound(rs) {
		return false
	}
	q.admit(rs)
	if err := q.store(rs); err != nil {
		return q.abort(rs, err)
	}
	if err := q.makeRoom(rs); err != nil {
		return q.abort(rs, err)
	}
	if err := q.commit(rs); err != nil {
		if errors.Is(err, berrors.ErrMaxSizeReached) {
			return q.refused(rs)
		}
		return q.abort(rs, err)
	}
	return q.release(rs)
}

// plan splits the control requests (compactions run after the commit)
// and sets the round's size limit and tightness.
func (q *Queue) plan() *roundState {
	w := &q.w
	rs := &roundState{ctrl: w.ctrl[:0:0], onlyDeletes: true, stopped: -1}
	rs.d.st = w.st
	for _, r := range w.ctrl {
		switch r.op {
		case opCompact:
			rs.d.compact = append(rs.d.compact, r)
			continue
		case opDeadLetter:
			rs.onlyDeletes = false
		}
		rs.ctrl = append(rs.ctrl, r)
	}
	rs.limit = q.roundLimit(rs)
	rs.tight = q.isTight()
	w.keys, w.vals, w.added = w.keys[:0], w.vals[:0], w.added[:0]
	return rs
}

// beginRound begins the transaction and applies the control requests in it. On
// failure it fails the round's requests and reports false.
func (q *Queue) beginRound(rs *roundState) bool {
	w := &q.w
	tx, err := q.begin(rs)
	if err != nil {
		err = fmt.Errorf("queue: begin: %w", err)
		var held []*request
		for _, r := range w.held {
			if r.state.CompareAndSwap(stPending, stTaken) {
				held = append(held, r)
			}
		}
		q.failRound(rs.ctrl, held, err)
		for _, r := range rs.d.compact {
			if r.state.CompareAndSwap(stPending, stTaken) {
				r.finish(err)
			}
		}
		w.ctrl = w.ctrl[:0]
		return false
	}
	rs.tx = tx
	rs.entries = tx.Bucket(bucketEntries)
	rs.entries.FillPercent = 1.0
	if err := q.applyCtrl(tx, rs.ctrl, &rs.d); err != nil {
		_ = tx.Rollback()
		q.failRound(rs.ctrl, nil, err)
		w.ctrl = rs.d.compact
		return false
	}
	return true
}

// begin starts a write transaction with bbolt's size limit set. When
// tight, it holds off readers while bbolt starts the transaction: bbolt
// releases the pages freed by earlier commits only if no read transaction
// is open, and near the quota every page counts.
func (q *Queue) begin(rs *roundState) (*bolt.Tx, error) {
	if q.db == nil {
		return nil, errBroken
	}
	if q.lim.quota > 0 {
		q.db.MaxSize = int(rs.limit)
	}
	if rs.tight {
		q.dbMu.Lock()
		defer q.dbMu.Unlock()
	}
	return q.db.Begin(true)
}

// admit takes the held appends, FIFO, as many as the quota lets in. An
// append that does not fit stops the admission: it and those after it
// wait for a later round (d.rest).
func (q *Queue) admit(rs *roundState) {
	w := &q.w
	rs.avail = math.MaxInt
	if q.lim.quota > 0 {
		rs.avail = q.availPages(rs)
	}
	rs.est = estimator{ps: q.ps, dedupe: q.lim.dedupeWindow > 0}
	for i, r := range w.held {
		if !r.state.CompareAndSwap(stPending, stTaken) {
			continue // cancelled; sweep removes it
		}
		if !q.admitOne(rs, r) {
			r.state.Store(stPending)
			rs.stopped = i
			rs.d.rest = w.held[i:]
			return
		}
		rs.taken = append(rs.taken, r)
	}
}

// admitOne adds r's new readings to the estimate and its new keys to the
// dedupe set, and reports whether it fits; if not, both are left as they
// were.
func (q *Queue) admitOne(rs *roundState, r *request) bool {
	w := &q.w
	nAdded, snapshot := len(w.added), rs.est
	dups := 0
	for j := range r.hashes {
		if q.duplicate(r, j) {
			dups++
			continue
		}
		rs.est.add(len(r.entry(j)))
	}
	if rs.est.pages() > rs.avail {
		for _, h := range w.added[nAdded:] {
			w.dedupe.undo(h)
		}
		w.added = w.added[:nAdded]
		rs.est = snapshot
		return false
	}
	r.res = AppendResult{Duplicates: dups}
	return true
}

// duplicate reports whether reading j of r repeats a natural key in the
// dedupe window (or earlier in this round) and marks it in r.dup; a new
// key joins the window.
func (q *Queue) duplicate(r *request, j int) bool {
	w := &q.w
	h := r.hashes[j]
	if q.lim.dedupeWindow > 0 {
		if w.dedupe.has(h) {
			if r.dup == nil {
				r.dup = make([]bool, r.n)
			}
			r.dup[j] = true
			return true
		}
		w.dedupe.add(h)
		w.added = append(w.added, h)
	}
	if r.dup != nil {
		r.dup[j] = false
	}
	return false
}

// store puts the admitted readings under consecutive seqs and records
// their natural-key hashes in the dedupe bucket.
func (q *Queue) store(rs *roundState) error {
	w := &q.w
	d := &rs.d
	seq := d.st.next
	w.hs = w.hs[:0]
	for _, r := range rs.taken {
		for j := 0; j < r.n; j++ {
			if r.dup != nil && r.dup[j] {
				continue
			}
			v := r.entry(j)
			if err := rs.entries.Put(q.key(seq), v); err != nil {
				return fmt.Errorf("queue: put: %w", err)
			}
			if r.res.First == 0 {
				r.res.First = seq
			}
			r.res.Last = seq
			r.res.Stored++
			d.bytes += int64(len(v))
			w.hs = append(w.hs, r.hashes[j])
			seq++
		}
		d.st.duplicates += uint64(r.res.Duplicates)
		d.modified = d.modified || r.res.Duplicates > 0
	}
	rs.firstNew = d.st.next
	d.stored = int(seq - rs.firstNew)
	d.depth += int64(d.stored)
	d.st.appended += uint64(d.stored)
	d.st.next = seq
	if d.stored > 0 {
		d.modified = true
	}
	if q.lim.dedupeWindow == 0 {
		return nil
	}
	b := rs.tx.Bucket(bucketDedupe)
	if d.stored > 0 {
		if err := q.dedupeAppend(b, rs.firstNew, w.hs, d); err != nil {
			return err
		}
	}
	if w.dedupeCount+d.dedupeAdded >= q.lim.dedupeWindow+dedupeChunk {
		return q.dedupeTrim(b, d)
	}
	return nil
}

// makeRoom handles the appends that did not fit: under DropOldest it
// deletes the oldest readings, about as many bytes as they need, so that
// a later round stores them (pages freed by a transaction are reusable
// only by later ones). An append that cannot fit even in an empty queue
// fails with ErrTooLarge.
func (q *Queue) makeRoom(rs *roundState) error {
	if rs.stopped < 0 {
		return nil
	}
	d := &rs.d
	if q.opts.Policy == DropOldest {
		need := estimator{ps: q.ps, dedupe: rs.est.dedupe}
		for _, r := range d.rest {
			for j := 0; j < r.n; j++ {
				need.add(len(r.entry(j)))
			}
		}
		short := need.pages() - (rs.avail - rs.est.pages())
		if err := q.dropOldest(rs.entries, int64(short+2)*int64(q.ps), rs.firstNew, d); err != nil {
			return err
		}
	}
	if rs.stopped == 0 && rs.tight && !d.freed && d.dropped == 0 && q.w.depth+d.depth == 0 && len(d.compact) == 0 {
		// Nothing left to acknowledge or drop, and it still does not fit.
		r := d.rest[0]
		if r.state.CompareAndSwap(stPending, stTaken) {
			r.finish(fmt.Errorf("%w: %d readings do not fit in the quota of %d bytes even with the queue empty",
				ErrTooLarge, r.n, q.lim.quota))
			rs.tooLarge = true
		}
	}
	return nil
}

// commit writes the state record and commits with fsync, or rolls back
// when the round changed nothing.
func (q *Queue) commit(rs *roundState) error {
	if q.lim.quota > 0 && len(rs.taken) == 0 && rs.onlyDeletes {
		q.db.MaxSize = int(q.lim.ackLimit) // this commit only deletes
	}
	tx := rs.tx
	rs.tx = nil
	if !rs.d.modified && !rs.d.freed {
		if err := tx.Rollback(); err != nil {
			return fmt.Errorf("queue: commit: %w", err)
		}
		return nil
	}
	if err := q.finishTx(tx, &rs.d); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("queue: commit: %w", err)
	}
	return nil
}

// finishTx writes the state record and finds the new head.
func (q *Queue) finishTx(tx *bolt.Tx, d *delta) error {
	w := &q.w
	if err := tx.Bucket(bucketMeta).Put(keyState, d.st.encode(w.vals[len(w.vals):])); err != nil {
		return err
	}
	if d.freed || w.depth == 0 {
		k, v := tx.Bucket(bucketEntries).Cursor().First()
		d.headKnown = true
		if k != nil {
			d.head = binary.BigEndian.Uint64(k)
			d.oldestRecv, _ = decodeReceived(v)
		}
	}
	return nil
}

// release applies a committed round to memory, publishes it, releases
// its callers and reports whether another round should follow at once.
func (q *Queue) release(rs *roundState) bool {
	w := &q.w
	d := &rs.d
	q.applyDelta(d)
	if rs.tight && rs.stopped < 0 {
		q.decaySlack()
	}
	w.tight = q.nearQuota(rs)
	if q.opts.Policy == Block {
		q.setBlocked(rs)
	}
	q.publish()
	if d.stored > 0 {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	q.releaseCallers(rs)
	q.runCompactions(d.compact)
	if w.overQuota && d.freed {
		q.shrinkIfOver()
	}
	again := len(w.held) > 0 || len(w.ctrl) > 0
	if rs.stopped >= 0 {
		again = len(w.held) > 0 && (d.freed || d.dropped > 0 || rs.tooLarge)
	}
	if again {
		w.retry = true
	}
	return again
}

// setBlocked updates the Block policy's state: full once appends did not
// fit; free again once they all did, or once something was deleted with
// nobody waiting.
func (q *Queue) setBlocked(rs *roundState) {
	w := &q.w
	full := rs.stopped >= 0 || w.blocked && len(rs.taken) == 0 && !rs.d.freed
	if full != w.blocked {
		if full {
			q.log.Warn("queue full: holding appends until readings are acknowledged", "quota", q.lim.quota, "depth", w.depth)
		} else {
			q.log.Info("queue has room again: appends resume", "depth", w.depth)
		}
	}
	w.blocked = full
	q.blocked.Store(full)
}

// releaseCallers finishes the round's control requests and appends (the
// first append carries the drops made for it in earlier rounds) and keeps
// the appends that did not fit for the next round.
func (q *Queue) releaseCallers(rs *roundState) {
	w := &q.w
	for _, r := range rs.ctrl {
		if r.state.Load() == stTaken {
			r.finish(nil)
		}
	}
	w.ctrl = w.ctrl[:0]
	for i, r := range rs.taken {
		if i == 0 {
			r.res.Dropped = w.dropDebt
			w.dropDebt = 0
		}
		r.finish(nil)
	}
	w.dropDebt += rs.d.dropped
	w.held = append(w.held[:0], rs.d.rest...)
	clear(w.held[len(w.held):cap(w.held)])
	w.recount()
	if w.blocked {
		w.held = q.failTries(w.held)
	}
}

// refused handles bbolt's ErrMaxSizeReached: the estimate was short. The
// transaction is gone; undo the round in memory, estimate more
// conservatively and try again.
func (q *Queue) refused(rs *roundState) bool {
	w := &q.w
	q.undoDedupe()
	for _, r := range rs.taken {
		r.state.Store(stPending)
	}
	q.growSlack()
	w.retry = true
	if len(rs.taken) > 0 {
		for _, r := range rs.ctrl {
			if r.state.Load() == stTaken {
				r.state.Store(stPending)
			}
		}
		return true
	}
	// Even without appends the commit does not fit: fail the dead letters
	// (the oldest are kept) and, after many tries, the acks. Finished
	// requests stay taken, so sweep removes them.
	for _, r := range rs.ctrl {
		if r.state.Load() != stTaken {
			continue
		}
		if r.op == opDeadLetter || w.slack >= 1<<10 {
			r.finish(fmt.Errorf("%w: no room to commit", ErrFull))
		} else {
			r.state.Store(stPending)
		}
	}
	q.compactIfFragmented()
	return true
}

// abort ends a round on an unexpected error: every request taken in it
// fails with err.
func (q *Queue) abort(rs *roundState, err error) bool {
	if rs.tx != nil {
		_ = rs.tx.Rollback()
		rs.tx = nil
	}
	q.undoDedupe()
	q.log.Error("commit failed", "err", err)
	q.failRound(rs.ctrl, rs.taken, err)
	return false
}

func (q *Queue) failRound(ctrl, taken []*request, err error) {
	w := &q.w
	for _, r := range ctrl {
		if r.state.Load() == stTaken || r.state.CompareAndSwap(stPending, stTaken) {
			r.finish(err)
		}
	}
	var compact []*request
	for _, r := range w.ctrl {
		if r.op == opCompact {
			compact = append(compact, r)
		}
	}
	w.ctrl = compact
	out := w.held[:0]
	isTaken := make(map[*request]bool, len(taken))
	for _, r := range taken {
		isTaken[r] = true
		r.finish(err)
	}
	for _, r := range w.held {
		if !isTaken[r] {
			if r.state.Load() == stTaken {
				r.state.Store(stPending)
			}
			out = append(out, r)
		}
	}
	clear(w.held[len(out):])
	w.held = out
}

func (q *Queue) undoDedupe() {
	w := &q.w
	for _, h := range w.added {
		w.dedupe.undo(h)
	}
	w.added = w.added[:0]
}

func (q *Queue) applyDelta(d *delta) {
	w := &q.w
	w.st = d.st
	w.depth += d.depth
	w.bytes += d.bytes
	w.dlCount += d.dlCount
	w.dlBytes += d.dlBytes
	w.dedupeCount += d.dedupeAdded
	w.dedupe.rotate()
	w.added = w.added[:0]
	if d.modified || d.freed {
		w.commits++
	}
	if d.headKnown {
		q.head.Store(d.head)
		w.oldestRecv = d.oldestRecv
	}
	q.tail.Store(w.st.next - 1)
	if d.dropped > 0 {
		q.log.Warn("queue full: dropped the oldest readings", "policy", DropOldest,
			"count", d.dropped, "first_seq", d.dropFirst, "last_seq", d.dropLast, "dropped_total", w.st.dropped)
	}
}

func (q *Queue) publish() {
	w := &q.w
	q.statsMu.Lock()
	q.stats = Stats{
		Depth: w.depth, Bytes: w.bytes, OldestReceived: w.oldestRecv,
		Appended: w.st.appended, Duplicates: w.st.duplicates, Dropped: w.st.dropped,
		Acked: w.st.acked, Corrupt: w.st.corrupt, Commits: w.commits, DeadLetters: w.dlCount,
	}
	if w.depth == 0 {
		q.stats.OldestReceived = 0
	}
	q.statsMu.Unlock()
}

package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/tributary-iot/tributary/protocol"
)

// The writer goroutine owns every write transaction. Producers hand it
// requests through two bounded channels: appends (held back while the
// quota is used up) and control operations (acks, dead letters,
// quarantine, compaction), which always proceed because they are what
// frees space. Each round gathers everything pending, up to MaxBatch
// readings, into one transaction, commits (fsync) and then releases all
// the callers; the next round starts as soon as the commit returns, so
// batches grow by themselves while a commit is in flight.

type opKind uint8

const (
	opAppend opKind = iota
	opAck
	opDeadLetter
	opQuarantine
	opCompact
)

// request states: pending until the writer takes it into a commit (or the
// caller cancels it first).
const (
	stPending int32 = iota
	stTaken
	stCancelled
)

type request struct {
	op    opKind
	try   bool
	ctx   context.Context
	state atomic.Int32
	done  chan struct{}
	err   error

	// opAppend: encoded entries enc[ends[i-1]:ends[i]], natural-key hashes.
	n      int
	enc    []byte
	ends   []uint64
	hashes []uint64
	dup    []bool // set per round: reading i is a duplicate
	res    AppendResult

	first, last uint64 // opAck; first is the seq for opQuarantine
	why         error  // opQuarantine
	dl          []byte // opDeadLetter: encoded dead letter
}

func (r *request) entry(i int) []byte {
	start := uint64(0)
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.enc[start:r.ends[i]]
}

func (r *request) finish(err error) {
	r.err = err
	close(r.done)
}

type writer struct {
	st          state
	depth       int64
	bytes       int64
	oldestRecv  int64
	dlCount     int
	dlBytes     int64
	commits     uint64
	lastCommit  time.Time // start of the latest commit (CommitInterval)
	dedupe      *hashSet
	dedupeCount int

	held      []*request // appends waiting for a commit, FIFO
	heldN     int
	ctrl      []*request
	blocked   bool // held appends wait for space (Block policy)
	retry     bool
	timer     *time.Timer
	tight     bool // near the quota: count every freed page (see begin)
	slack     int  // pages added to estimates after bbolt refused a commit
	okRounds  int
	overQuota bool
	dropDebt  int // readings dropped for appends not yet committed

	keys  []byte   // key arena of the current transaction
	vals  []byte   // dedupe value arena of the current transaction
	added []uint64 // hashes added to the dedupe map this round (undone on failure)
	seqs  []uint64 // seqs being deleted
	hs    []uint64 // hashes of the readings being stored
}

const (
	retryInterval = 100 * time.Millisecond
	maxRounds     = 16
	// roundOverhead is the pages a commit rewrites besides new leaves: the
	// root, the meta leaf, the right edge and branch path of the entries
	// and dedupe trees, the dead-letter leaf.
	roundOverhead = 12
	// dedupeChunk is how many hashes one dedupe record holds: 512 bytes,
	// seven records to a page. (bbolt never splits a node of four elements
	// or fewer, so records near a page in size would make multi-page nodes
	// that need contiguous free runs.)
	dedupeChunk = 64
)

func (q *Queue) run() {
	defer close(q.done)
	w := &q.w
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	defer w.timer.Stop()
	for {
		if !q.waitWork() {
			q.shutdown()
			return
		}
		for range maxRounds {
			if !q.linger() {
				q.shutdown()
				return
			}
			q.gather()
			w.lastCommit = time.Now()
			if !q.round() {
				break
			}
		}
	}
}

func (q *Queue) actionable() bool {
	w := &q.w
	return len(w.ctrl) > 0 || len(w.held) > 0 && (!w.blocked || w.retry)
}

// waitWork blocks until there is something to commit; false on Close.
func (q *Queue) waitWork() bool {
	w := &q.w
	for !q.actionable() {
		var appends chan *request
		if w.heldN < q.opts.MaxBatch {
			appends = q.appends
		}
		var tick <-chan time.Time
		if w.blocked {
			w.timer.Reset(retryInterval)
			tick = w.timer.C
		}
		select {
		case <-q.closing:
			return false
		case r := <-appends:
			q.accept(r)
		case r := <-q.ctrl:
			w.ctrl = append(w.ctrl, r)
		case <-tick:
			w.retry = true
		}
	}
	select {
	case <-q.closing:
		return false
	default:
		return true
	}
}

// linger waits until CommitInterval has passed since the last commit
// started, taking appends meanwhile; false on Close.
func (q *Queue) linger() bool {
	w := &q.w
	d := q.opts.CommitInterval - time.Since(w.lastCommit)
	if d <= 0 || w.blocked {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		var appends chan *request
		if w.heldN < q.opts.MaxBatch {
			appends = q.appends
		}
		select {
		case <-q.closing:
			return false
		case r := <-appends:
			q.accept(r)
		case r := <-q.ctrl:
			w.ctrl = append(w.ctrl, r)
		case <-t.C:
			return true
		}
	}
}

// gather takes whatever else is pending without waiting.
func (q *Queue) gather() {
	w := &q.w
	for range pendingRequests {
		select {
		case r := <-q.ctrl:
			w.ctrl = append(w.ctrl, r)
			continue
		default:
		}
		break
	}
	for w.heldN < q.opts.MaxBatch {
		select {
		case r := <-q.appends:
			q.accept(r)
		default:
			return
		}
	}
}

func (q *Queue) accept(r *request) {
	w := &q.w
	if w.blocked && r.try {
		if r.state.CompareAndSwap(stPending, stTaken) {
			r.finish(ErrFull)
		}
		return
	}
	w.held = append(w.held, r)
	w.heldN += r.n
}

func (q *Queue) shutdown() {
	w := &q.w
	fail := func(r *request) {
		if r.state.CompareAndSwap(stPending, stTaken) {
			r.finish(ErrClosed)
		}
	}
	for _, r := range w.held {
		fail(r)
	}
	for _, r := range w.ctrl {
		fail(r)
	}
	w.held, w.ctrl = nil, nil
	for {
		select {
		case r := <-q.appends:
			fail(r)
		case r := <-q.ctrl:
			fail(r)
		default:
			return
		}
	}
}

// sweep drops cancelled requests and fails those whose context ended.
func (q *Queue) sweep() {
	w := &q.w
	keep := func(list []*request) []*request {
		out := list[:0]
		for _, r := range list {
			switch r.state.Load() {
			case stCancelled, stTaken: // cancelled, or finished
				continue
			case stPending:
				if err := r.ctx.Err(); err != nil {
					if r.state.CompareAndSwap(stPending, stTaken) {
						r.finish(err)
					}
					continue
				}
			}
			out = append(out, r)
		}
		clear(list[len(out):])
		return out
	}
	w.held = keep(w.held)
	w.ctrl = keep(w.ctrl)
	w.heldN = 0
	for _, r := range w.held {
		w.heldN += r.n
	}
}

// delta collects one round's changes, applied to memory only after the
// commit succeeds.
type delta struct {
	st                   state
	depth, bytes         int64
	dlCount              int
	dlBytes              int64
	dedupeAdded          int
	freed                bool // something was deleted: the next round may fit more
	dropped              int
	dropFirst, dropLast  uint64
	modified             bool
	headKnown            bool
	head                 uint64
	oldestRecv           int64
	stored               int
	compact              []*request
	ctrlDone, appendDone []*request
	rest                 []*request // appends left for a later round
}

func (q *Queue) key(seq uint64) []byte {
	w := &q.w
	w.keys = binary.BigEndian.AppendUint64(w.keys, seq)
	return w.keys[len(w.keys)-8:]
}

// begin starts a write transaction with bbolt's size limit set. When tight,
// it holds off readers while bbolt starts the transaction: bbolt releases
// the pages freed by earlier commits only if no read transaction is open,
// and near the quota every page counts.
func (q *Queue) begin(tight bool, limit int64) (*bolt.Tx, error) {
	if q.db == nil {
		return nil, errBroken
	}
	if q.lim.quota > 0 {
		q.db.MaxSize = int(limit)
	}
	if tight {
		q.dbMu.Lock()
		defer q.dbMu.Unlock()
	}
	return q.db.Begin(true)
}

// availPages estimates how many pages this transaction can allocate
// without bbolt refusing to grow the file past limit.
func (q *Queue) availPages(tx *bolt.Tx, tight bool, limit int64) int {
	st := q.db.Stats()
	free := st.FreePageN
	if tight {
		free += st.PendingPageN
	}
	ps := int64(q.ps)
	hw := tx.Size() / ps
	// bbolt grows the file to the high water mark plus AllocSize, and
	// refuses (ErrMaxSizeReached) when that would pass MaxSize.
	room := max(0, (limit-int64(q.lim.allocSize))/ps-1-hw)
	return free + int(room) - roundOverhead - q.w.slack
}

// estimator predicts the leaf pages bbolt fills with sequential entries
// at FillPercent 1.0 (a page closes when the next element would not fit,
// but holds at least two).
type estimator struct {
	ps, cur, cnt, full, n int
	dedupe                bool
}

func (e *estimator) add(vlen int) {
	sz := 16 + 8 + vlen // leaf element header, key, value
	if e.cnt >= 2 && e.cur+sz > e.ps {
		e.full += (e.cur + e.ps - 1) / e.ps
		e.cur, e.cnt = 0, 0
	}
	if e.cnt == 0 {
		e.cur = 16 // page header
	}
	e.cur += sz
	e.cnt++
	e.n++
}

func (e *estimator) pages() int {
	if e.n == 0 {
		return 0
	}
	leaves := e.full + (e.cur+e.ps-1)/e.ps
	p := leaves + leaves/64 + 1 // branch pages
	if e.dedupe {
		p += (8*e.n+8*dedupeChunk-1)/(8*dedupeChunk) + 1
	}
	return p
}

// round runs one transaction; it reports whether another round should
// follow at once (more may fit now).
func (q *Queue) round() bool {
	w := &q.w
	q.sweep()
	if !q.actionable() {
		return false
	}
	w.retry = false
	var d delta
	d.st = w.st
	ctrl := w.ctrl[:0:0]
	onlyDeletes := true
	for _, r := range w.ctrl {
		switch r.op {
		case opCompact:
			d.compact = append(d.compact, r)
			continue
		case opDeadLetter:
			onlyDeletes = false
		}
		ctrl = append(ctrl, r)
	}
	limit := q.lim.appendLimit
	if len(w.held) == 0 && onlyDeletes {
		limit = q.lim.ackLimit
	}
	tight := q.lim.quota > 0 && (w.tight || w.blocked || w.slack > 0)
	w.keys, w.vals, w.added = w.keys[:0], w.vals[:0], w.added[:0]

	tx, err := q.begin(tight, limit)
	if err != nil {
		err = fmt.Errorf("queue: begin: %w", err)
		var held []*request
		for _, r := range w.held {
			if r.state.CompareAndSwap(stPending, stTaken) {
				held = append(held, r)
			}
		}
		q.failRound(ctrl, held, err)
		for _, r := range d.compact {
			if r.state.CompareAndSwap(stPending, stTaken) {
				r.finish(err)
			}
		}
		w.ctrl = w.ctrl[:0]
		return false
	}
	entries := tx.Bucket(bucketEntries)
	entries.FillPercent = 1.0
	if err := q.applyCtrl(tx, ctrl, &d); err != nil {
		_ = tx.Rollback()
		q.failRound(ctrl, nil, err)
		w.ctrl = d.compact
		return false
	}

	// Appends, FIFO, as many as the quota lets in.
	avail := math.MaxInt
	if q.lim.quota > 0 {
		avail = q.availPages(tx, tight, limit)
	}
	est := estimator{ps: q.ps, dedupe: q.lim.dedupeWindow > 0}
	var taken []*request
	stopped := -1
	for i, r := range w.held {
		if !r.state.CompareAndSwap(stPending, stTaken) {
			continue // cancelled; sweep removes it
		}
		nAdded, snapshot := len(w.added), est
		dups := 0
		for j, h := range r.hashes {
			if q.lim.dedupeWindow > 0 {
				if w.dedupe.has(h) {
					if r.dup == nil {
						r.dup = make([]bool, r.n)
					}
					r.dup[j] = true
					dups++
					continue
				}
				w.dedupe.add(h)
				w.added = append(w.added, h)
			}
			if r.dup != nil {
				r.dup[j] = false
			}
			est.add(len(r.entry(j)))
		}
		if est.pages() > avail {
			for _, h := range w.added[nAdded:] {
				w.dedupe.undo(h)
			}
			w.added = w.added[:nAdded]
			est = snapshot
			r.state.Store(stPending)
			stopped = i
			break
		}
		r.res = AppendResult{Duplicates: dups}
		taken = append(taken, r)
	}
	if stopped >= 0 {
		d.rest = w.held[stopped:]
	}

	// Store the taken appends with consecutive seqs.
	seq := d.st.next
	w.hs = w.hs[:0]
	for _, r := range taken {
		for j := 0; j < r.n; j++ {
			if r.dup != nil && r.dup[j] {
				continue
			}
			v := r.entry(j)
			if err := entries.Put(q.key(seq), v); err != nil {
				return q.abort(tx, ctrl, taken, fmt.Errorf("queue: put: %w", err))
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
	firstNew := d.st.next
	d.stored = int(seq - firstNew)
	d.depth += int64(d.stored)
	d.st.appended += uint64(d.stored)
	d.st.next = seq
	if d.stored > 0 {
		d.modified = true
		if q.lim.dedupeWindow > 0 {
			if err := q.dedupeAppend(tx.Bucket(bucketDedupe), firstNew, w.hs, &d); err != nil {
				return q.abort(tx, ctrl, taken, err)
			}
		}
	}
	if q.lim.dedupeWindow > 0 && w.dedupeCount+d.dedupeAdded >= q.lim.dedupeWindow+dedupeChunk {
		if err := q.dedupeTrim(tx.Bucket(bucketDedupe), &d); err != nil {
			return q.abort(tx, ctrl, taken, err)
		}
	}

	// Appends that did not fit: make room (DropOldest) or wait (Block).
	if stopped >= 0 && q.opts.Policy == DropOldest {
		need := estimator{ps: q.ps, dedupe: est.dedupe}
		for _, r := range d.rest {
			for j := 0; j < r.n; j++ {
				need.add(len(r.entry(j)))
			}
		}
		short := need.pages() - (avail - est.pages())
		if err := q.dropOldest(entries, int64(short+2)*int64(q.ps), firstNew, &d); err != nil {
			return q.abort(tx, ctrl, taken, err)
		}
	}
	tooLarge := false
	if stopped == 0 && tight && !d.freed && d.dropped == 0 && w.depth+d.depth == 0 && len(d.compact) == 0 {
		// Nothing left to acknowledge or drop, and it still does not fit.
		r := d.rest[0]
		if r.state.CompareAndSwap(stPending, stTaken) {
			r.finish(fmt.Errorf("%w: %d readings do not fit in the quota of %d bytes even with the queue empty",
				ErrTooLarge, r.n, q.lim.quota))
			tooLarge = true
		}
	}

	if q.lim.quota > 0 && len(taken) == 0 && onlyDeletes {
		q.db.MaxSize = int(q.lim.ackLimit) // this commit only deletes
	}
	if d.modified || d.freed {
		if err := q.finishTx(tx, &d); err != nil {
			return q.abort(tx, ctrl, taken, err)
		}
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		if errors.Is(err, berrors.ErrMaxSizeReached) {
			return q.refused(ctrl, taken, &d)
		}
		return q.abort(nil, ctrl, taken, fmt.Errorf("queue: commit: %w", err))
	}

	// Committed: apply to memory, publish, then release the callers (who
	// may look at Stats at once).
	q.applyDelta(&d, tight && stopped < 0)
	w.tight = q.lim.quota > 0 && (stopped >= 0 || avail-est.pages() < 4*est.pages()+64)
	if q.opts.Policy == Block {
		// Full once appends did not fit; free again once they all did, or
		// once something was deleted with nobody waiting.
		full := stopped >= 0 || w.blocked && len(taken) == 0 && !d.freed
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
	q.publish()
	if d.stored > 0 {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	for _, r := range ctrl {
		if r.state.Load() == stTaken {
			r.finish(nil)
		}
	}
	w.ctrl = w.ctrl[:0]
	for i, r := range taken {
		if i == 0 {
			r.res.Dropped = w.dropDebt
			w.dropDebt = 0
		}
		r.finish(nil)
	}
	w.dropDebt += d.dropped
	w.held = append(w.held[:0], d.rest...)
	clear(w.held[len(w.held):cap(w.held)])
	w.heldN = 0
	for _, r := range w.held {
		w.heldN += r.n
	}
	if w.blocked {
		w.held = q.failTries(w.held)
	}
	q.runCompactions(d.compact)
	if w.overQuota && d.freed {
		q.shrinkIfOver()
	}
	again := len(w.held) > 0 || len(w.ctrl) > 0
	if stopped >= 0 {
		again = len(w.held) > 0 && (d.freed || d.dropped > 0 || tooLarge)
	}
	if again {
		w.retry = true
	}
	return again
}

func (q *Queue) failTries(held []*request) []*request {
	out := held[:0]
	for _, r := range held {
		if r.try {
			if r.state.CompareAndSwap(stPending, stTaken) {
				r.finish(ErrFull)
			}
			continue
		}
		out = append(out, r)
	}
	clear(held[len(out):])
	q.w.heldN = 0
	for _, r := range out {
		q.w.heldN += r.n
	}
	return out
}

// refused handles bbolt's ErrMaxSizeReached: the estimate was short. The
// transaction is gone; undo the round in memory, estimate more
// conservatively and try again.
func (q *Queue) refused(ctrl, taken []*request, d *delta) bool {
	w := &q.w
	q.undoDedupe()
	for _, r := range taken {
		r.state.Store(stPending)
	}
	w.slack = min(max(2*w.slack, 16), 1<<20)
	w.tight = true
	q.log.Debug("commit refused by the size limit; retrying with a larger estimate", "slack_pages", w.slack)
	w.retry = true
	if len(taken) == 0 {
		// Even without appends the commit does not fit: fail the dead
		// letters (the oldest are kept) and, after many tries, the acks.
		// Finished requests stay taken, so sweep removes them.
		for _, r := range ctrl {
			if r.state.Load() != stTaken {
				continue
			}
			if r.op == opDeadLetter || w.slack >= 1<<10 {
				r.finish(fmt.Errorf("%w: no room to commit", ErrFull))
			} else {
				r.state.Store(stPending)
			}
		}
		if st := q.db.Stats(); (st.FreePageN+st.PendingPageN)*q.ps > 4*q.lim.allocSize {
			q.log.Info("free pages are fragmented; compacting")
			if err := q.compactNow(); err != nil {
				q.log.Error("compaction failed", "err", err)
			}
		}
		return true
	}
	for _, r := range ctrl {
		if r.state.Load() == stTaken {
			r.state.Store(stPending)
		}
	}
	return true
}

// abort ends a round on an unexpected error: every request taken in it
// fails with err.
func (q *Queue) abort(tx *bolt.Tx, ctrl, taken []*request, err error) bool {
	if tx != nil {
		_ = tx.Rollback()
	}
	q.undoDedupe()
	q.log.Error("commit failed", "err", err)
	q.failRound(ctrl, taken, err)
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

func (q *Queue) applyDelta(d *delta, decay bool) {
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
	if decay && w.slack > 0 {
		if w.okRounds++; w.okRounds >= 64 {
			w.slack /= 2
			w.okRounds = 0
		}
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

// applyCtrl runs acks, dead letters and quarantines in tx.
func (q *Queue) applyCtrl(tx *bolt.Tx, ctrl []*request, d *delta) error {
	for _, r := range ctrl {
		if !r.state.CompareAndSwap(stPending, stTaken) {
			continue
		}
		var err error
		switch r.op {
		case opAck:
			err = q.applyAck(tx.Bucket(bucketEntries), r, d)
		case opDeadLetter:
			err = q.putDeadLetter(tx.Bucket(bucketDead), r.dl, d)
		case opQuarantine:
			err = q.applyQuarantine(tx, r, d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (q *Queue) applyAck(b *bolt.Bucket, r *request, d *delta) error {
	n, bytes, err := q.deleteRange(b, r.first, r.last, nil)
	if err != nil {
		return err
	}
	if n > 0 {
		d.st.acked += uint64(n)
		d.depth -= int64(n)
		d.bytes -= bytes
		d.freed = true
	}
	return nil
}

// deleteRange deletes the entries with seqs in [first, last], or (with
// budget) the oldest entries until budget bytes are gone; it returns how
// many it deleted and their encoded bytes.
func (q *Queue) deleteRange(b *bolt.Bucket, first, last uint64, budget *int64) (n int, bytes int64, err error) {
	w := &q.w
	w.seqs = w.seqs[:0]
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], first)
	c := b.Cursor()
	for k, v := c.Seek(key[:]); k != nil; k, v = c.Next() {
		s := binary.BigEndian.Uint64(k)
		if s > last || budget != nil && *budget <= 0 {
			break
		}
		w.seqs = append(w.seqs, s)
		bytes += int64(len(v))
		if budget != nil {
			*budget -= int64(24 + len(v))
		}
	}
	for _, s := range w.seqs {
		binary.BigEndian.PutUint64(key[:], s)
		if err := b.Delete(key[:]); err != nil {
			return 0, 0, err
		}
	}
	return len(w.seqs), bytes, nil
}

// dropOldest deletes the oldest entries (below seq limit) until about
// bytes are freed, for DropOldest.
func (q *Queue) dropOldest(b *bolt.Bucket, bytes int64, limit uint64, d *delta) error {
	if limit <= 1 {
		return nil
	}
	budget := bytes
	n, size, err := q.deleteRange(b, 1, limit-1, &budget)
	if err != nil || n == 0 {
		return err
	}
	d.dropFirst, d.dropLast = q.w.seqs[0], q.w.seqs[n-1]
	d.dropped += n
	d.st.dropped += uint64(n)
	d.depth -= int64(n)
	d.bytes -= size
	d.freed = true
	return nil
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

func (q *Queue) applyQuarantine(tx *bolt.Tx, r *request, d *delta) error {
	b := tx.Bucket(bucketEntries)
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], r.first)
	v := b.Get(key[:])
	if v == nil {
		return nil
	}
	var dec decoder
	var tmp protocol.Reading
	err := dec.decodeEntry(v, &tmp)
	if err == nil {
		return nil // not damaged (any more)
	}
	q.log.Error("damaged queue entry moved to the dead letters", "seq", r.first, "err", err)
	dl := encodeDeadLetter(DeadLetter{
		Time:    time.Now(),
		Reason:  fmt.Sprintf("corrupt queue entry seq %d (epoch %d): %v", r.first, q.epoch, err),
		Payload: v,
	}, q.lim.dlPayloadMax)
	if err := q.putDeadLetter(tx.Bucket(bucketDead), dl, d); err != nil {
		return err
	}
	size := int64(len(v))
	if err := b.Delete(key[:]); err != nil {
		return err
	}
	d.st.corrupt++
	d.depth--
	d.bytes -= size
	d.freed = true
	return nil
}

func (q *Queue) putDeadLetter(b *bolt.Bucket, enc []byte, d *delta) error {
	w := &q.w
	b.FillPercent = 1.0
	if err := b.Put(q.key(d.st.dlNext), enc); err != nil {
		return err
	}
	d.st.dlNext++
	d.dlCount++
	d.dlBytes += int64(len(enc))
	d.modified = true
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		count, bytes := w.dlCount+d.dlCount, w.dlBytes+d.dlBytes
		if count <= 1 || count <= q.lim.dlMax && (q.lim.dlBytesMax == 0 || bytes <= q.lim.dlBytesMax) {
			break
		}
		size := int64(len(v))
		if err := c.Delete(); err != nil {
			return err
		}
		d.dlCount--
		d.dlBytes -= size
		d.freed = true
	}
	return nil
}

func (q *Queue) runCompactions(reqs []*request) {
	if len(reqs) == 0 {
		return
	}
	var err error
	done := false
	for _, r := range reqs {
		if !r.state.CompareAndSwap(stPending, stTaken) {
			continue
		}
		if !done {
			err, done = q.compactNow(), true
		}
		r.finish(err)
	}
	w := &q.w
	out := w.ctrl[:0]
	for _, r := range w.ctrl {
		if r.op != opCompact {
			out = append(out, r)
		}
	}
	w.ctrl = out
}

// shrinkIfOver compacts once the file is over the quota (it was opened
// with a lower one) and enough pages are free for the copy to fit.
func (q *Queue) shrinkIfOver() {
	fs := q.fileSize()
	if fs <= q.lim.quota {
		q.w.overQuota = false
		return
	}
	st := q.db.Stats()
	if int64(st.FreePageN+st.PendingPageN)*int64(q.ps) >= fs-q.lim.quota+int64(q.lim.allocSize) {
		if err := q.compactNow(); err == nil {
			q.w.overQuota = q.fileSize() > q.lim.quota
		}
	}
}

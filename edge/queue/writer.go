package queue

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// The writer goroutine owns every write transaction. Producers hand it
// requests through two bounded channels: appends (held back while the
// quota is used up) and control operations (acks, dead letters,
// quarantine, compaction), which always proceed because they are what
// frees space. Each round gathers everything pending, up to MaxBatch
// readings, into one transaction, commits (fsync) and then releases all
// the callers; the next round starts as soon as the commit returns, so
// batches grow by themselves while a commit is in flight. round.go has
// the steps of a round, quota.go the page and quota accounting.

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
		var tick <-chan time.Time
		if w.blocked {
			w.timer.Reset(retryInterval)
			tick = w.timer.C
		}
		switch q.await(tick) {
		case wokeClosing:
			return false
		case wokeTimer:
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
		switch q.await(t.C) {
		case wokeClosing:
			return false
		case wokeTimer:
			return true
		}
	}
}

// woke says what ended an await.
type woke uint8

const (
	wokeRequest woke = iota // a request was taken
	wokeTimer
	wokeClosing
)

// await waits for one request (appends only while the batch has room),
// the timer (nil: none) or Close.
func (q *Queue) await(timer <-chan time.Time) woke {
	w := &q.w
	var appends chan *request
	if w.heldN < q.opts.MaxBatch {
		appends = q.appends
	}
	select {
	case <-q.closing:
		return wokeClosing
	case r := <-appends:
		q.accept(r)
	case r := <-q.ctrl:
		w.ctrl = append(w.ctrl, r)
	case <-timer:
		return wokeTimer
	}
	return wokeRequest
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
	w.recount()
}

// recount sums the readings of the held appends.
func (w *writer) recount() {
	w.heldN = 0
	for _, r := range w.held {
		w.heldN += r.n
	}
}

func (q *Queue) key(seq uint64) []byte {
	w := &q.w
	w.keys = binary.BigEndian.AppendUint64(w.keys, seq)
	return w.keys[len(w.keys)-8:]
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
	q.w.held = out
	q.w.recount()
	return out
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

package queue

// Page and quota accounting. bbolt never shrinks its file and grows it in
// steps of AllocSize; the writer estimates, before each commit, the pages
// the new entries need (simulating bbolt's page packing) against the free
// pages plus the growth room left under the round's limit. bbolt's own
// MaxSize is the hard stop: when an estimate is short, bbolt refuses the
// commit and the writer adds slack to later estimates (growSlack), which
// decays again after many rounds that fit (decaySlack).

const (
	// roundOverhead is the pages a commit rewrites besides new leaves: the
	// root, the meta leaf, the right edge and branch path of the entries
	// and dedupe trees, the dead-letter leaf.
	roundOverhead = 12
	// maxSlack bounds the pages added to estimates after refusals.
	maxSlack = 1 << 20
)

// roundLimit is bbolt's MaxSize for the round: appends may use the file
// up to the quota less a reserve, a round that only deletes may use it
// all, so an Ack can always commit.
func (q *Queue) roundLimit(rs *roundState) int64 {
	if len(q.w.held) == 0 && rs.onlyDeletes {
		return q.lim.ackLimit
	}
	return q.lim.appendLimit
}

// isTight reports whether the round runs near the quota, where it holds
// off readers to count every freed page (see begin and availPages).
func (q *Queue) isTight() bool {
	w := &q.w
	return q.lim.quota > 0 && (w.tight || w.blocked || w.slack > 0)
}

// nearQuota reports whether the next round should run tight: appends did
// not fit, or the room left is within a few rounds like this one.
func (q *Queue) nearQuota(rs *roundState) bool {
	used := rs.est.pages()
	return q.lim.quota > 0 && (rs.stopped >= 0 || rs.avail-used < 4*used+64)
}

// availPages estimates how many pages the round's transaction can
// allocate without bbolt refusing to grow the file past its limit.
func (q *Queue) availPages(rs *roundState) int {
	st := q.db.Stats()
	free := st.FreePageN
	if rs.tight {
		free += st.PendingPageN
	}
	ps := int64(q.ps)
	hw := rs.tx.Size() / ps
	// bbolt grows the file to the high water mark plus AllocSize, and
	// refuses (ErrMaxSizeReached) when that would pass MaxSize.
	room := max(0, (rs.limit-int64(q.lim.allocSize))/ps-1-hw)
	return free + int(room) - roundOverhead - q.w.slack
}

// growSlack makes estimates more conservative after bbolt refused a
// commit.
func (q *Queue) growSlack() {
	w := &q.w
	w.slack = min(max(2*w.slack, 16), maxSlack)
	w.tight = true
	q.log.Debug("commit refused by the size limit; retrying with a larger estimate", "slack_pages", w.slack)
}

// decaySlack halves the slack after 64 tight rounds in which every append
// fit.
func (q *Queue) decaySlack() {
	w := &q.w
	if w.slack > 0 {
		if w.okRounds++; w.okRounds >= 64 {
			w.slack /= 2
			w.okRounds = 0
		}
	}
}

// compactIfFragmented compacts when a commit without appends was refused
// although many pages are free: they are scattered.
func (q *Queue) compactIfFragmented() {
	if st := q.db.Stats(); (st.FreePageN+st.PendingPageN)*q.ps > 4*q.lim.allocSize {
		q.log.Info("free pages are fragmented; compacting")
		if err := q.compactNow(); err != nil {
			q.log.Error("compaction failed", "err", err)
		}
	}
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

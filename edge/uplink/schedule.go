package uplink

import (
	"math"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// span is a claimed range of sequence numbers: a batch in flight or
// parked. The backlog end never reads into a claimed span.
type span struct{ epoch, first, last uint64 }

// sched holds the two cursors. Only the goroutine running Run touches it
// (claims are shared with the jobs, under Uplink.claimsMu).
//
// Sequence numbers below old are acknowledged or claimed; [old, fresh) is
// the backlog; the pending fresh batch holds [fresh, next); next onwards is
// unread. When old reaches fresh there is no backlog and one cursor.
type sched struct {
	u     *Uplink
	src   Source
	share float64

	epoch uint64
	old   uint64
	fresh uint64
	next  uint64

	fb      *job  // pending fresh batch, readings [fresh, next)
	fbSize  sizer // its encoded size bound
	fbSeen  time.Time
	fbCut   bool // it cannot grow: full, over the byte bound, or a gap follows
	oldSize sizer
	scratch []protocol.Reading
	credit  float64 // smooth weighted round robin between the ends
	// flush: shutting down; a partial fresh batch is sent at once and
	// schedule returns when nothing is left to send.
	flush bool
}

func newSched(u *Uplink) *sched {
	s := &sched{u: u, src: u.src, share: u.cfg.BacklogShare}
	s.reset(s.src.Epoch())
	return s
}

// reset starts over: everything stored is backlog; fresh readings are
// those numbered after the current tail.
func (s *sched) reset(epoch uint64) {
	s.epoch = epoch
	s.old = s.src.Head()
	s.fresh = s.src.Tail() + 1
	s.next = s.fresh
	s.old = min(s.old, s.fresh)
	if s.fb == nil {
		s.fb = s.u.getJob()
	}
	s.dropFresh()
	s.credit = 0
}

func (s *sched) dropFresh() {
	clear(s.fb.rs)
	s.fb.rs = s.fb.rs[:0]
	s.fbCut = false
	s.next = s.fresh
}

func (s *sched) maxReadings() int { return s.u.cfg.MaxReadings }
func (s *sched) maxBytes() int    { return int(s.u.maxBytes.Load()) }

// take returns the next batch to send, or nil and how long to wait at
// most before asking again (0: until the queue signals new readings).
func (s *sched) take(now time.Time) (j *job, wait time.Duration, err error) {
	if e := s.src.Epoch(); e != s.epoch {
		s.u.log.Warn("queue epoch changed; starting over from the queue's head", "old_epoch", s.epoch, "epoch", e)
		s.reset(e)
	}
	freshReady, wait, err := s.pollFresh(now)
	if err != nil {
		return nil, 0, err
	}
	if s.old < s.fresh && (!freshReady || s.preferOld()) {
		j, err := s.takeOld()
		if err != nil || j != nil {
			return j, 0, err
		}
		s.credit = 0 // the backlog is drained: one cursor again
	}
	s.u.c.backlog.Store(s.fresh - s.old)
	if freshReady {
		return s.takeFresh(), 0, nil
	}
	return nil, wait, nil
}

// preferOld is called when both ends have a batch ready: of every N such
// choices about share·N go to the backlog.
func (s *sched) preferOld() bool {
	s.credit += s.share
	if s.credit >= 1-1e-9 {
		s.credit--
		return true
	}
	return false
}

// pollFresh grows the pending fresh batch from the queue and reports
// whether it is ready (full, cut by a gap, or old enough), else how long
// until its age makes it ready (0 when it is empty).
func (s *sched) pollFresh(now time.Time) (ready bool, wait time.Duration, err error) {
	maxN := s.maxReadings()
	if len(s.fb.rs) == 0 {
		// More than a batch waits at the fresh end: the uplink fell
		// behind (an outage, a slow link). Leave all but the newest batch
		// to the backlog end so live data keeps flowing.
		if tail := s.src.Tail(); tail >= s.next && tail-s.next >= uint64(maxN) {
			s.next = tail + 1 - uint64(maxN)
			s.fresh = s.next
		}
	}
	for !s.fbCut && len(s.fb.rs) < maxN {
		budget := max(s.maxBytes()-s.fbSize.total, 1)
		first, rs, err := s.src.Read(s.next, maxN-len(s.fb.rs), budget, s.scratch)
		s.scratch = rs[:0]
		if err != nil {
			return false, 0, err
		}
		if len(rs) == 0 {
			break
		}
		if len(s.fb.rs) == 0 {
			s.fresh, s.next = first, first
			s.fbSeen = now
			s.fbSize.reset(s.u.cfg.Gateway)
		} else if first != s.next {
			s.fbCut = true // a gap ends the batch
		}
		for i := 0; i < len(rs) && !s.fbCut && len(s.fb.rs) < maxN; i++ {
			if len(s.fb.rs) > 0 && !s.fbSize.fits(&rs[i], s.maxBytes()) {
				s.fbCut = true
				break
			}
			s.fbSize.add(&rs[i])
			s.fb.rs = append(s.fb.rs, rs[i])
			s.next++
		}
		clear(rs)
	}
	n := len(s.fb.rs)
	if n == 0 {
		return false, 0, nil
	}
	if s.fbCut || n >= maxN || s.flush {
		return true, 0, nil
	}
	maxAge := s.u.cfg.MaxAge
	left := maxAge - now.Sub(s.fbSeen)
	if rcv := s.fb.rs[0].Received; rcv != 0 {
		left = min(left, maxAge-now.Sub(time.UnixMicro(rcv)))
	}
	if left <= 0 {
		return true, 0, nil
	}
	return false, left, nil
}

func (s *sched) takeFresh() *job {
	j := s.fb
	j.epoch, j.first, j.fresh = s.epoch, s.fresh, true
	s.fb = s.u.getJob()
	s.fresh = s.next
	s.fbCut = false
	s.u.c.freshBatches.Add(1)
	return j
}

// takeOld reads the next batch from the backlog end, skipping claimed
// spans, or returns nil when the backlog is drained (old meets fresh).
func (s *sched) takeOld() (*job, error) {
	for {
		if s.old >= s.fresh {
			s.old = s.fresh
			return nil, nil
		}
		limit := s.fresh - 1
		if c, ok := s.u.claimFrom(s.epoch, s.old); ok {
			if c.first <= s.old {
				s.old = c.last + 1
				continue
			}
			limit = min(limit, c.first-1)
		}
		want := int(min(uint64(s.maxReadings()), limit-s.old+1))
		j := s.u.getJob()
		first, rs, err := s.src.Read(s.old, want, s.maxBytes(), j.rs)
		j.rs = rs
		switch {
		case err != nil:
			s.u.putJob(j)
			return nil, err
		case len(rs) == 0 || first >= s.fresh:
			s.u.putJob(j)
			s.old = s.fresh
			return nil, nil
		case first > limit:
			s.u.putJob(j) // starts in a claimed span or past it
			s.old = first
			continue
		}
		n := int(min(uint64(len(rs)), limit-first+1))
		s.oldSize.reset(s.u.cfg.Gateway)
		k := 0
		for ; k < n; k++ {
			if k > 0 && !s.oldSize.fits(&rs[k], s.maxBytes()) {
				break
			}
			s.oldSize.add(&rs[k])
		}
		clear(rs[k:])
		j.rs = rs[:k]
		j.epoch, j.first, j.fresh = s.epoch, first, false
		s.old = first + uint64(k)
		s.u.c.oldBatches.Add(1)
		return j, nil
	}
}

// sizer bounds the encoded size of a batch from above as readings are
// added, following protocol.AppendBatch: exact for values and time
// deltas; a string table index at the width of the table so far.
type sizer struct {
	strs         map[string]struct{}
	total        int
	prevT, prevR int64
}

func (z *sizer) reset(gateway string) {
	if z.strs == nil {
		z.strs = make(map[string]struct{}, 64)
	} else {
		clear(z.strs)
	}
	z.strs[""] = struct{}{}
	// map head 1; keys 0..5 one byte each; version [1, 0] 3; gateway;
	// epoch, first seq and the two array heads at most 9 each; "" 1.
	z.total = 1 + 6 + 3 + textLen(gateway) + 4*9 + 1
	z.prevT, z.prevR = 0, 0
}

func (z *sizer) cost(r *protocol.Reading) int {
	n := 1 + 3*headLen(uint64(len(z.strs)+2)) // row head; device, name, unit indexes
	for _, s := range [3]string{r.Device, r.Name, r.Unit} {
		if _, ok := z.strs[s]; !ok {
			n += textLen(s)
		}
	}
	switch r.Kind {
	case protocol.KindFloat:
		n += numberLen(r.Value)
	case protocol.KindString:
		n += textLen(r.Str)
	case protocol.KindData:
		n += headLen(uint64(len(r.Data))) + len(r.Data)
	default:
		n++ // bool, null
	}
	n += intLen(r.Time-z.prevT) + intLen(r.Received-z.prevR)
	if r.HasSum || r.Flags != 0 {
		n += 2
	}
	if r.HasSum {
		n += numberLen(r.Sum)
	}
	return n
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6}

// numberLen is the size of a number as protocol.AppendBatch writes it: an
// integer when integral, else a decimal fraction 4([-k, m]) of up to 6
// decimals when exact, else at most a double (9 bytes).
func numberLen(f float64) int {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 && !(f == 0 && math.Signbit(f)) {
		return intLen(int64(f))
	}
	for k := 1; k < len(pow10); k++ {
		m := math.Round(f * pow10[k])
		if math.Abs(m) >= 1<<53 {
			break
		}
		if m/pow10[k] == f {
			return 3 + intLen(int64(m)) // tag, array head, exponent, mantissa
		}
	}
	return 9
}

func (z *sizer) fits(r *protocol.Reading, limit int) bool { return z.total+z.cost(r) <= limit }

func (z *sizer) add(r *protocol.Reading) {
	z.total += z.cost(r)
	z.strs[r.Device] = struct{}{}
	z.strs[r.Name] = struct{}{}
	z.strs[r.Unit] = struct{}{}
	z.prevT, z.prevR = r.Time, r.Received
}

func headLen(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	}
	return 9
}

func intLen(v int64) int {
	if v < 0 {
		return headLen(uint64(-(v + 1)))
	}
	return headLen(uint64(v))
}

func textLen(s string) int { return headLen(uint64(len(s))) + len(s) }

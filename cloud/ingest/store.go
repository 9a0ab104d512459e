package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// keyLocks serialises the requests of one (gateway, epoch): two requests
// with overlapping seqs can never both write them. Entries live only
// while held or awaited, so the map is bounded by the requests in flight.
type keyLocks struct {
	mu sync.Mutex
	m  map[ackKey]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

func (l *keyLocks) ref(k ackKey) *keyLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	kl := l.m[k]
	if kl == nil {
		kl = &keyLock{ch: make(chan struct{}, 1)}
		l.m[k] = kl
	}
	kl.refs++
	return kl
}

func (l *keyLocks) unref(k ackKey, kl *keyLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if kl.refs--; kl.refs == 0 {
		delete(l.m, k)
	}
}

// acquire waits for k's lock until ctx is done.
func (l *keyLocks) acquire(ctx context.Context, k ackKey) (release func(), err error) {
	kl := l.ref(k)
	select {
	case kl.ch <- struct{}{}:
		return func() { <-kl.ch; l.unref(k, kl) }, nil
	case <-ctx.Done():
		l.unref(k, kl)
		return nil, ctx.Err()
	}
}

// tryAcquire takes k's lock if it is free.
func (l *keyLocks) tryAcquire(k ackKey) (release func(), ok bool) {
	kl := l.ref(k)
	select {
	case kl.ch <- struct{}{}:
		return func() { <-kl.ch; l.unref(k, kl) }, true
	default:
		l.unref(k, kl)
		return nil, false
	}
}

// store writes the batch's readings not acknowledged before and
// acknowledges the batch. See the package documentation for the order of
// events and what a crash at each point leaves behind.
func (in *Ingest) store(ctx context.Context, b *protocol.Batch, log *slog.Logger) (*response, *httpError) {
	k := ackKey{b.Gateway, b.Epoch}
	first, last := b.FirstSeq, b.LastSeq()
	resp := &response{Gateway: b.Gateway, Epoch: b.Epoch, First: first, Last: last}
	release, err := in.locks.acquire(ctx, k)
	if err != nil {
		return nil, fail(http.StatusServiceUnavailable, "request cancelled while waiting for an earlier batch of this gateway")
	}
	defer release()

	st, err := in.acks.load(k)
	if err != nil {
		log.Error("cannot read the ack log", "err", err)
		return nil, fail(http.StatusInternalServerError, "ack log: %v", err)
	}
	fresh := st.acked.missing(first, last)
	// Readings an interrupted earlier write did store: acknowledge them
	// now rather than write them twice.
	fresh, settled := in.settleRecovered(b, &st, fresh)
	if settled > 0 {
		in.m.recovered.Add(float64(settled))
		log.Info("readings left pending by the last run were found in the stream: acknowledged, not written again",
			"epoch", b.Epoch, "readings", settled)
	}
	nFresh := int(fresh.count())
	resp.Duplicates = len(b.Readings) - nFresh
	if resp.Duplicates > 0 {
		in.m.duplicates.Add(float64(resp.Duplicates))
		in.m.duplicateBatches.Inc()
	}
	if nFresh == 0 {
		if settled > 0 {
			st.acked = st.acked.add(first, last)
			if herr := in.save(k, &st, st.pending.count()+uint64(settled), log); herr != nil {
				return nil, herr
			}
		}
		log.Debug("batch acknowledged before: not stored again", "epoch", b.Epoch, "first", first, "last", last)
		return resp, nil
	}

	entries, seqs, err := buildEntries(b, fresh)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "%v", err)
	}

	// Seqs left pending by an earlier request (or run) whose write had an
	// unknown outcome: if written now, they may be in the stream twice.
	again := intersectAll(st.pending, fresh)

	// 1. Mark the fresh seqs pending (durable) before writing anything.
	before := st.pending.count() + uint64(settled)
	if before == 0 || st.pendingFrom == 0 {
		st.pendingFrom = in.opts.Now().UnixMilli()
	}
	for _, s := range fresh {
		st.pending = st.pending.add(s.lo, s.hi)
	}
	st.pending, _ = st.pending.trim(in.opts.MaxSpans)
	if herr := in.save(k, &st, before, log); herr != nil {
		return nil, herr
	}
	before = st.pending.count()

	// 2. Write the records; throttled entries are retried for a while.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.opts.PutTimeout)
	outcome, werr := in.write(wctx, entries, log)
	cancel()

	// 3. Record the outcome: acknowledge what is written, keep pending
	// what may be (unknown outcome), clear what surely is not.
	var written, notWritten []uint64
	for i, o := range outcome {
		switch o {
		case entryWritten:
			written = append(written, seqs[i]...)
		case entryNotWritten:
			notWritten = append(notWritten, seqs[i]...)
		}
	}
	// Seqs of different devices interleave; each device's are ascending.
	slices.Sort(written)
	slices.Sort(notWritten)
	stored := len(written)
	if len(again) > 0 {
		var n uint64
		for _, seq := range written {
			if i := again.search(seq); i < len(again) && again[i].lo <= seq {
				n++
			}
		}
		if n > 0 {
			in.m.rewritten.Add(float64(n))
			log.Warn("readings whose earlier write had an unknown outcome were written again: they may appear twice in the stream",
				"epoch", b.Epoch, "readings", n, "seqs", fmtSpans(again, 8))
		}
	}
	if werr == nil {
		st.acked = st.acked.add(first, last)
		st.pending = st.pending.remove(first, last)
	} else {
		// Acknowledge the part written, so a resend writes only the rest,
		// unless that would fragment the set past its bound; then those
		// seqs stay pending and count as possible duplicates if resent.
		ws := fromSeqs(written)
		acked := st.acked.clone()
		for _, s := range ws {
			acked = acked.add(s.lo, s.hi)
		}
		if len(acked) <= in.opts.MaxSpans {
			st.acked = acked
			for _, s := range ws {
				st.pending = st.pending.remove(s.lo, s.hi)
			}
		}
		for _, s := range fromSeqs(notWritten) {
			st.pending = st.pending.remove(s.lo, s.hi)
		}
	}
	var forgotten spans
	st.acked, forgotten = st.acked.trim(in.opts.MaxSpans)
	if len(forgotten) > 0 {
		in.m.forgottenSpans.Add(float64(len(forgotten)))
		log.Warn("too many separate acknowledged ranges for one epoch: forgetting the oldest (a resend of them would be stored again)",
			"epoch", b.Epoch, "forgotten", fmtSpans(forgotten, 4), "limit", in.opts.MaxSpans)
	}
	if st.pending.count() == 0 {
		st.pendingFrom = 0
	}
	if herr := in.save(k, &st, before, log); herr != nil {
		return nil, herr
	}
	in.m.readings.Add(float64(stored))

	if werr != nil {
		return nil, werr
	}
	resp.Stored = stored
	log.Debug("batch stored", "epoch", b.Epoch, "first", first, "last", last, "stored", stored,
		"duplicates", resp.Duplicates, "records", len(entries))
	return resp, nil
}

// save persists st, keeping the count of uncertain seqs current.
func (in *Ingest) save(k ackKey, st *ackState, pendingBefore uint64, log *slog.Logger) *httpError {
	st.updated = in.opts.Now().Unix()
	if err := in.acks.save(k, st); err != nil {
		log.Error("cannot write the ack log", "err", err)
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: true, msg: fmt.Sprintf("ack log: %v", err)}
	}
	in.uncertain.Add(int64(st.pending.count()) - int64(pendingBefore))
	return nil
}

func (ss spans) clone() spans { return append(spans(nil), ss...) }

func intersectAll(a, b spans) spans {
	var out spans
	for _, s := range b {
		out = append(out, a.intersect(s.lo, s.hi)...)
	}
	return out
}

// buildEntries groups the readings at the fresh seqs by device (each
// device's in seq order) and encodes them as stream records, split at
// protocol.TargetRecordBytes. seqs[i] are the seqs entries[i] holds.
func buildEntries(b *protocol.Batch, fresh spans) (entries []Entry, seqs [][]uint64, err error) {
	type group struct {
		device string
		rs     []protocol.Reading
		seqs   []uint64
	}
	var groups []*group
	byDevice := map[string]*group{}
	for _, s := range fresh {
		for seq := s.lo; ; seq++ {
			r := &b.Readings[seq-b.FirstSeq]
			g := byDevice[r.Device]
			if g == nil {
				g = &group{device: r.Device}
				byDevice[r.Device] = g
				groups = append(groups, g)
			}
			g.rs = append(g.rs, *r)
			g.seqs = append(g.seqs, seq)
			if seq == s.hi {
				break
			}
		}
	}
	for _, g := range groups {
		off := 0
		err := protocol.EncodeRecords(b.Gateway, g.rs, 0, func(data []byte, rs []protocol.Reading) error {
			entries = append(entries, Entry{PartitionKey: protocol.PartitionKey(g.device), Data: bytes.Clone(data)})
			seqs = append(seqs, g.seqs[off:off+len(rs)])
			off += len(rs)
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("device %s: %w", g.device, err)
		}
	}
	return entries, seqs, nil
}

// entryOutcome is what became of one entry.
type entryOutcome uint8

const (
	entryNotWritten entryOutcome = iota // never sent, refused or throttled: surely not in the stream
	entryWritten                        // durable in the stream
	entryUnknown                        // the backend failed without saying
)

// write puts entries in chunks of at most MaxPutEntries and MaxPutBytes.
// When no device has records in two chunks (the usual case: one record
// per device per batch), the chunks are written concurrently, so a store
// with group commit makes them durable together (one fsync instead of one
// per chunk) and per-device order cannot change. Otherwise they are
// written one after the other, and writing stops at the first chunk it
// cannot finish: throttled past ThrottleWait (a 429), or failed (a 503).
func (in *Ingest) write(ctx context.Context, entries []Entry, log *slog.Logger) ([]entryOutcome, *httpError) {
	out := make([]entryOutcome, len(entries))
	var bounds [][2]int
	for start := 0; start < len(entries); {
		end, size := start, 0
		for end < len(entries) && end-start < MaxPutEntries {
			n := len(entries[end].Data) + len(entries[end].PartitionKey)
			if end > start && size+n > MaxPutBytes {
				break
			}
			size += n
			end++
		}
		bounds = append(bounds, [2]int{start, end})
		start = end
	}
	if len(bounds) > 1 && !keySpansChunks(entries, bounds) {
		errs := make([]*httpError, len(bounds))
		var wg sync.WaitGroup
		for i, b := range bounds {
			wg.Go(func() {
				t := newThrottleBudget(in.opts.ThrottleWait)
				errs[i] = in.putChunk(ctx, entries[b[0]:b[1]], out[b[0]:b[1]], &t, log)
			})
		}
		wg.Wait()
		// A 503 (outcome unknown or failed) says more than a 429.
		var first *httpError
		for _, e := range errs {
			if e != nil && (first == nil || first.status == http.StatusTooManyRequests && e.status != http.StatusTooManyRequests) {
				first = e
			}
		}
		return out, first
	}
	t := newThrottleBudget(in.opts.ThrottleWait)
	for _, b := range bounds {
		if herr := in.putChunk(ctx, entries[b[0]:b[1]], out[b[0]:b[1]], &t, log); herr != nil {
			return out, herr
		}
	}
	return out, nil
}

// keySpansChunks reports whether a partition key has entries in two
// chunks. Entries are grouped by key, so only chunk edges need a look.
func keySpansChunks(entries []Entry, bounds [][2]int) bool {
	for _, b := range bounds[1:] {
		if entries[b[0]].PartitionKey == entries[b[0]-1].PartitionKey {
			return true
		}
	}
	return false
}

// throttleBudget is how long one request keeps retrying throttled
// entries, counted from the start of its writes.
type throttleBudget struct {
	deadline time.Time
	delay    time.Duration
}

func newThrottleBudget(wait time.Duration) throttleBudget {
	return throttleBudget{deadline: time.Now().Add(wait), delay: 5 * time.Millisecond}
}

// next returns how long to wait before retrying, or false when the budget
// is spent.
func (t *throttleBudget) next() (time.Duration, bool) {
	d := t.delay/2 + rand.N(t.delay/2+1)
	if time.Now().Add(d).After(t.deadline) {
		return 0, false
	}
	t.delay = min(2*t.delay, 200*time.Millisecond)
	return d, true
}

func (in *Ingest) putChunk(ctx context.Context, entries []Entry, out []entryOutcome, t *throttleBudget, log *slog.Logger) *httpError {
	todo := make([]int, len(entries))
	for i := range todo {
		todo[i] = i
	}
	batch := make([]Entry, 0, len(entries))
	for {
		batch = batch[:0]
		for _, i := range todo {
			batch = append(batch, entries[i])
		}
		t0 := time.Now()
		res, err := in.opts.Backend.Put(ctx, in.opts.Stream, batch)
		in.m.putSeconds.Observe(time.Since(t0).Seconds())
		throttled := todo[:0:0]
		switch {
		case err != nil && len(res) != len(batch) && errors.Is(err, ErrThrottled):
			throttled = todo
		case err != nil && len(res) != len(batch):
			for _, i := range todo {
				out[i] = entryUnknown
			}
			return in.unavailable(log, "the stream backend failed: %v", err)
		case len(res) != len(batch):
			for _, i := range todo {
				out[i] = entryUnknown
			}
			return in.unavailable(log, "the stream backend answered %d results for %d records", len(res), len(batch))
		default:
			var failed error
			for j, i := range todo {
				switch e := res[j].Err; {
				case e == nil:
					out[i] = entryWritten
				case errors.Is(e, ErrOutcomeUnknown):
					out[i] = entryUnknown
					failed = e
				case errors.Is(e, ErrThrottled):
					throttled = append(throttled, i)
				default:
					failed = e
				}
			}
			if failed != nil {
				return in.unavailable(log, "the stream backend did not write every record: %v", failed)
			}
		}
		if len(throttled) == 0 {
			return nil
		}
		in.m.throttledEntries.Add(float64(len(throttled)))
		d, ok := t.next()
		if !ok {
			if in.limitLog.allow("throttled") {
				log.Warn("stream shards at capacity: answering 429", "records_throttled", len(throttled), "retried_for", in.opts.ThrottleWait)
			}
			return &httpError{status: http.StatusTooManyRequests, retryAfter: true,
				msg: fmt.Sprintf("stream %s is at capacity (%d records throttled for %v): retry later", in.opts.Stream, len(throttled), in.opts.ThrottleWait)}
		}
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return in.unavailable(log, "writing to the stream timed out: %v", ctx.Err())
		}
		todo = throttled
	}
}

func (in *Ingest) unavailable(log *slog.Logger, format string, args ...any) *httpError {
	msg := fmt.Sprintf(format, args...)
	if in.limitLog.allow("unavailable") {
		log.Error("answering 503: " + msg)
	}
	return &httpError{status: http.StatusServiceUnavailable, retryAfter: true, msg: msg}
}

// fmtSpans formats at most n spans for logs.
func fmtSpans(ss spans, n int) string {
	var b strings.Builder
	for i, s := range ss {
		if i == n {
			fmt.Fprintf(&b, " …(%d more)", len(ss)-n)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if s.lo == s.hi {
			fmt.Fprintf(&b, "%d", s.lo)
		} else {
			fmt.Fprintf(&b, "%d-%d", s.lo, s.hi)
		}
	}
	return b.String()
}

package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/tributary-iot/tributary/protocol"
)

// store writes the batch's readings not acknowledged before and
// acknowledges the batch, in the steps the package documentation
// describes (see there what a crash at each point leaves behind): under
// the (gateway, epoch) lock, it loads the ack state and finds the fresh
// seqs, marks them pending (durable), writes their records and records
// the outcome (durable).
func (in *Ingest) store(ctx context.Context, b *protocol.Batch, log *slog.Logger) (*response, *httpError) {
	op := &storeOp{in: in, b: b, log: log, k: ackKey{b.Gateway, b.Epoch}}
	op.resp = &response{Gateway: b.Gateway, Epoch: b.Epoch, First: b.FirstSeq, Last: b.LastSeq()}
	release, err := in.locks.acquire(ctx, op.k)
	if err != nil {
		return nil, fail(http.StatusServiceUnavailable, "request cancelled while waiting for an earlier batch of this gateway")
	}
	defer release()

	if herr := op.load(ctx); herr != nil {
		return nil, herr
	}
	if herr := op.applyCaps(); herr != nil {
		return nil, herr
	}
	if op.fresh.count() == 0 {
		return op.acknowledgeKnown()
	}
	entries, seqs, err := buildEntries(b, op.fresh)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "%v", err)
	}
	if herr := op.markPending(); herr != nil {
		return nil, herr
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.opts.PutTimeout)
	outcome, werr := in.write(wctx, entries, log)
	cancel()
	stored, herr := op.recordOutcome(outcome, seqs, werr)
	if herr != nil {
		return nil, herr
	}
	op.resp.Stored = stored
	log.Debug("batch stored", "epoch", b.Epoch, "first", op.resp.First, "last", op.resp.Last, "stored", stored,
		"duplicates", op.resp.Duplicates, "refused", op.resp.Refused, "records", len(entries))
	return op.resp, nil
}

// storeOp is one batch on its way through store.
type storeOp struct {
	in   *Ingest
	b    *protocol.Batch
	log  *slog.Logger
	k    ackKey
	resp *response

	st      ackState
	fresh   spans  // seqs to write
	again   spans  // fresh seqs an earlier write left pending: they may be in the stream already
	settled int    // pending seqs found in the stream (recoverPending, recoverLive), acknowledged without writing
	before  uint64 // pending seqs counted in Ingest.uncertain for this key
}

// load reads the ack state and finds the fresh seqs: those neither
// acknowledged before nor found in the stream after a crash or an unknown
// outcome (recoverLive).
func (op *storeOp) load(ctx context.Context) *httpError {
	in, b := op.in, op.b
	st, err := in.acks.load(op.k)
	if err != nil {
		op.log.Error("cannot read the ack log", "err", err)
		return fail(http.StatusInternalServerError, "ack log: %v", err)
	}
	op.st = st
	op.before = st.pending.count()
	fresh := st.acked.missing(op.resp.First, op.resp.Last)
	op.fresh, op.settled = settleFound(b, &op.st, fresh, in.recovered[b.Gateway])
	if op.settled > 0 {
		in.m.recovered.Add(float64(op.settled))
		op.log.Info("readings left pending by the last run were found in the stream: acknowledged, not written again",
			"epoch", b.Epoch, "readings", op.settled)
	}
	if herr := op.recoverLive(ctx); herr != nil {
		return herr
	}
	op.again = intersectAll(op.st.pending, op.fresh)
	op.resp.Duplicates = len(b.Readings) - int(op.fresh.count())
	if op.resp.Duplicates > 0 {
		in.m.duplicates.Add(float64(op.resp.Duplicates))
		in.m.duplicateBatches.Inc()
	}
	return nil
}

// acknowledgeKnown answers a batch with nothing to write: acknowledged
// before, found in the stream or refused by the caps (then that is
// recorded).
func (op *storeOp) acknowledgeKnown() (*response, *httpError) {
	if op.settled > 0 || op.resp.Refused > 0 {
		op.st.acked = op.st.acked.add(op.resp.First, op.resp.Last)
		if herr := op.save(); herr != nil {
			return nil, herr
		}
	}
	op.log.Debug("batch acknowledged before: not stored again", "epoch", op.b.Epoch, "first", op.resp.First, "last", op.resp.Last)
	return op.resp, nil
}

// markPending records the fresh seqs as pending (durable) before any of
// their records is written.
func (op *storeOp) markPending() *httpError {
	st := &op.st
	if st.pending.count() == 0 || st.pendingFrom == 0 {
		st.pendingFrom = op.in.opts.Now().UnixMilli()
	}
	for _, s := range op.fresh {
		st.pending = st.pending.add(s.lo, s.hi)
	}
	st.pending, _ = st.pending.trim(op.in.opts.MaxSpans)
	return op.save()
}

// recordOutcome acknowledges what is written, keeps pending what may be
// (unknown outcome), clears what surely is not, and saves that (durable).
// It returns how many readings were stored, and werr if set.
func (op *storeOp) recordOutcome(outcome []entryOutcome, seqs [][]uint64, werr *httpError) (int, *httpError) {
	in, st := op.in, &op.st
	written, notWritten := sortOutcome(outcome, seqs)
	op.countRewritten(written)
	if werr == nil {
		st.acked = st.acked.add(op.resp.First, op.resp.Last)
		st.pending = st.pending.remove(op.resp.First, op.resp.Last)
	} else {
		op.acknowledgePart(written, notWritten)
	}
	var forgotten spans
	st.acked, forgotten = st.acked.trim(in.opts.MaxSpans)
	if len(forgotten) > 0 {
		in.m.forgottenSpans.Add(float64(len(forgotten)))
		op.log.Warn("too many separate acknowledged ranges for one epoch: forgetting the oldest (a resend of them would be stored again)",
			"epoch", op.b.Epoch, "forgotten", fmtSpans(forgotten, 4), "limit", in.opts.MaxSpans)
	}
	if st.pending.count() == 0 {
		st.pendingFrom = 0
	}
	if herr := op.save(); herr != nil {
		return 0, herr
	}
	in.m.readings.Add(float64(len(written)))
	if werr != nil {
		return 0, werr
	}
	return len(written), nil
}

// sortOutcome returns the seqs of the entries written and of those surely
// not written, each ascending (seqs of different devices interleave).
func sortOutcome(outcome []entryOutcome, seqs [][]uint64) (written, notWritten []uint64) {
	for i, o := range outcome {
		switch o {
		case entryWritten:
			written = append(written, seqs[i]...)
		case entryNotWritten:
			notWritten = append(notWritten, seqs[i]...)
		}
	}
	slices.Sort(written)
	slices.Sort(notWritten)
	return written, notWritten
}

// countRewritten counts (and logs) the written seqs that an earlier write
// with an unknown outcome may have stored already.
func (op *storeOp) countRewritten(written []uint64) {
	if len(op.again) == 0 {
		return
	}
	var n uint64
	for _, seq := range written {
		if i := op.again.search(seq); i < len(op.again) && op.again[i].lo <= seq {
			n++
		}
	}
	if n > 0 {
		op.in.m.rewritten.Add(float64(n))
		op.log.Warn("readings whose earlier write had an unknown outcome were written again: they may appear twice in the stream",
			"epoch", op.b.Epoch, "readings", n, "seqs", fmtSpans(op.again, 8))
	}
}

// acknowledgePart acknowledges the part of a failed write that was
// written, so a resend writes only the rest, unless that would fragment
// the set past its bound; then those seqs stay pending and count as
// possible duplicates if resent. Seqs surely not written leave pending.
func (op *storeOp) acknowledgePart(written, notWritten []uint64) {
	st := &op.st
	ws := fromSeqs(written)
	acked := st.acked.clone()
	for _, s := range ws {
		acked = acked.add(s.lo, s.hi)
	}
	if len(acked) <= op.in.opts.MaxSpans {
		st.acked = acked
		for _, s := range ws {
			st.pending = st.pending.remove(s.lo, s.hi)
		}
	}
	for _, s := range fromSeqs(notWritten) {
		st.pending = st.pending.remove(s.lo, s.hi)
	}
}

// save persists the state, keeping the count of uncertain seqs current.
func (op *storeOp) save() *httpError {
	in, st := op.in, &op.st
	st.updated = in.opts.Now().Unix()
	if err := in.acks.save(op.k, st); err != nil {
		op.log.Error("cannot write the ack log", "err", err)
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: true, msg: err.Error()}
	}
	now := st.pending.count()
	in.uncertain.Add(int64(now) - int64(op.before))
	op.before = now
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

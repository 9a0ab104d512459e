package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// maxLiveScanRecords bounds the records one live recovery reads back: the
// stream's records of every gateway since the oldest pending mark of the
// (gateway, epoch). Readings not found within it are written again (and
// counted as possible duplicates).
const maxLiveScanRecords = 200_000

// recoverLive makes a resend of seqs left pending by a write with an
// unknown outcome exact, when the backend can both settle its unknown
// writes and be read back (Settler and Scanner: Kafka). Under the (gateway,
// epoch) lock, so no other write of these seqs is under way, it waits
// until every entry a Put reported unknown has resolved, reads the stream
// back from the oldest pending mark, and acknowledges the pending readings
// found there instead of writing them again. Live recoveries run one at a
// time, and the whole of one (the wait included) is bounded by PutTimeout;
// a backend that does not settle, or a stream that cannot be read, is a
// 503: the outcome is still unknown, and the gateway retries later.
func (op *storeOp) recoverLive(ctx context.Context) *httpError {
	in, b, st := op.in, op.b, &op.st
	again := intersectAll(st.pending, op.fresh)
	if len(again) == 0 || in.settler == nil || in.scanner == nil || st.pendingFrom == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.opts.PutTimeout)
	defer cancel()
	select {
	case in.recoverSlot <- struct{}{}:
		defer func() { <-in.recoverSlot }()
	case <-rctx.Done():
		return in.unavailable(op.log, "another gateway's unknown writes are being checked in the stream: retry later")
	}
	in.m.liveRecoveries.Inc()
	if err := in.settler.Settle(rctx); err != nil {
		in.m.liveRecoveryFailures.Inc()
		return in.unavailable(op.log, "%d readings of this batch were written earlier with an unknown outcome that has not resolved yet (the stream is unreachable?): %v",
			again.count(), err)
	}
	want := make(map[protocol.Key]struct{}, again.count())
	for _, s := range again {
		for seq := s.lo; seq <= s.hi && seq >= s.lo; seq++ {
			want[b.Readings[seq-b.FirstSeq].Key()] = struct{}{}
		}
	}
	found := make(map[protocol.Key]struct{}, len(want))
	from, to := time.UnixMilli(st.pendingFrom).Add(-time.Second), in.opts.Now().Add(time.Second)
	records, err := scanReadings(rctx, in.scanner, in.opts.Stream, from, to, maxLiveScanRecords,
		func(gw string) bool { return gw == b.Gateway },
		func(_ string, r *protocol.Reading) error {
			if k := r.Key(); hasKey(want, k) {
				found[k] = struct{}{}
			}
			return nil
		})
	switch {
	case errors.Is(err, errScanFull):
		op.log.Warn("too many records to read back for the readings whose write had an unknown outcome: those not found are written again and may appear twice",
			"epoch", b.Epoch, "records", records, "from", from)
	case err != nil:
		in.m.liveRecoveryFailures.Inc()
		return in.unavailable(op.log, "reading the stream back for %d readings whose earlier write had an unknown outcome: %v", again.count(), err)
	}
	var n int
	op.fresh, n = settleFound(b, st, op.fresh, found)
	op.settled += n
	in.m.recovered.Add(float64(n))
	if err == nil {
		// Read to the end after settling: the pending seqs not found are
		// surely not in the stream, so writing them now is no duplicate.
		for _, s := range intersectAll(st.pending, op.fresh) {
			st.pending = st.pending.remove(s.lo, s.hi)
		}
		if st.pending.count() == 0 {
			st.pendingFrom = 0
		}
	}
	op.log.Info("stream read back for readings whose earlier write had an unknown outcome",
		"epoch", b.Epoch, "pending", again.count(), "found", n, "records", records, "from", from)
	return nil
}

func hasKey(m map[protocol.Key]struct{}, k protocol.Key) bool {
	_, ok := m[k]
	return ok
}

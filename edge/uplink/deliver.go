package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/internal/backoff"

	"github.com/klauspost/compress/gzip"

	"github.com/tributary-iot/tributary/protocol"
)

// job is one batch on its way: readings [first, first+len(rs)) of epoch.
// Its buffers are reused through Uplink.jobPool.
type job struct {
	epoch uint64
	first uint64
	rs    []protocol.Reading
	fresh bool

	batch        protocol.Batch
	raw          []byte       // encoded rs[encLo:encHi]
	zbuf         []byte       // zstd output
	gzbuf        bytes.Buffer // gzip output
	body         []byte       // what goes on the wire: raw, zbuf or gzbuf's bytes
	encLo, encHi int

	parked []part // sub-ranges the cloud refused, retried every Backoff.Max
}

// part is the sub-range rs[lo:hi] of a job.
type part struct{ lo, hi int }

// parked counts a part parked (sign 1) or no longer parked (sign -1).
func (c *counters) parked(p part, sign int64) {
	c.parkedRanges.Add(sign)
	c.parkedReadings.Add(sign * int64(p.hi-p.lo))
}

func (j *job) last() uint64 { return j.first + uint64(len(j.rs)) - 1 }

// outcome of sending one part.
type outcome int

const (
	acked    outcome = iota // the cloud acknowledged it and the queue deleted it
	refused                 // 400 (or local validation): malformed
	tooLarge                // 413 (or over protocol.MaxBatchBytes)
	stopped                 // Run's context ended first
)

// runJob delivers a job: it holds a request slot while it sends, and
// gives it up while its parked parts wait for their next try.
func (u *Uplink) runJob(j *job) {
	defer u.jobs.Done()
	u.settle(j, 0, len(j.rs), u.attempt(j, 0, len(j.rs)))
	if len(j.parked) > 0 {
		// Keep only the parked readings' strings alive while they wait.
		keep := 0
		for _, p := range j.parked { // in ascending order, disjoint
			if p.lo > keep {
				clear(j.rs[keep:p.lo])
			}
			keep = max(keep, p.hi)
		}
		clear(j.rs[keep:])
		j.encLo, j.encHi = -1, -1
	}
	held := true
	for len(j.parked) > 0 && u.run.Err() == nil {
		u.releaseSlot()
		held = false
		if !backoff.Sleep(u.run, backoff.Equal.Apply(u.cfg.Backoff.Max)) {
			break
		}
		select {
		case u.slots <- struct{}{}:
			held = true
		case <-u.run.Done():
		}
		if !held {
			break
		}
		u.retryParked(j)
	}
	u.unpark(j)
	u.unclaim(span{j.epoch, j.first, j.last()})
	u.putJob(j)
	if held {
		u.releaseSlot()
	} else {
		u.signal()
	}
}

// retryParked re-sends each parked part once.
func (u *Uplink) retryParked(j *job) {
	kept := j.parked[:0]
	for _, p := range j.parked {
		if u.run.Err() == nil && u.attempt(j, p.lo, p.hi) == acked {
			u.c.parked(p, -1)
			u.log.Info("refused readings accepted on retry", "epoch", j.epoch,
				"first", j.first+uint64(p.lo), "last", j.first+uint64(p.hi)-1)
			continue
		}
		kept = append(kept, p)
	}
	j.parked = kept
	if u.c.parkedReadings.Load() == 0 {
		u.refusal.Store(nil)
	}
}

// unpark forgets the job's parked parts when Run ends (they stay in the
// queue and are sent again after a restart).
func (u *Uplink) unpark(j *job) {
	for _, p := range j.parked {
		u.c.parked(p, -1)
	}
	j.parked = j.parked[:0]
}

// settle finishes rs[lo:hi] given the outcome of sending it whole.
//
//   - 413: split in half and deliver each half; a lone reading is parked.
//   - 400: bisect to isolate what the cloud refuses. Halves the cloud
//     takes are acknowledged; a refused half is bisected again down to
//     one reading, unless both halves are refused (the fault is not in
//     one reading: a version or gateway problem), and then both are
//     parked whole. Nothing refused is ever deleted.
func (u *Uplink) settle(j *job, lo, hi int, o outcome) {
	var why string
	switch o {
	case tooLarge:
		why = "a single reading is over the cloud's size limit"
	case refused:
		why = "refused as malformed"
	default:
		return
	}
	if hi-lo == 1 {
		u.park(j, lo, hi, why)
		return
	}
	u.c.splits.Add(1)
	mid := lo + (hi-lo)/2
	if o == tooLarge { // the first half is settled before the second is sent
		u.settle(j, lo, mid, u.attempt(j, lo, mid))
		u.settle(j, mid, hi, u.attempt(j, mid, hi))
		return
	}
	a := u.attempt(j, lo, mid)
	b := u.attempt(j, mid, hi)
	if a == refused && b == refused {
		u.park(j, lo, mid, why)
		u.park(j, mid, hi, why)
		return
	}
	u.settle(j, lo, mid, a)
	u.settle(j, mid, hi, b)
}

func (u *Uplink) park(j *job, lo, hi int, why string) {
	j.parked = append(j.parked, part{lo, hi})
	u.c.parked(part{lo, hi}, 1)
	msg := ""
	if p := u.refusal.Load(); p != nil {
		msg = *p
	}
	u.log.Error("readings parked: "+why+"; they stay in the queue and are retried every "+u.cfg.Backoff.Max.String(),
		"epoch", j.epoch, "first", j.first+uint64(lo), "last", j.first+uint64(hi)-1, "readings", hi-lo, "cloud_error", msg)
	u.signal()
}

// attempt sends rs[lo:hi] until the cloud gives an answer that settles
// it (2xx, 400, 413) or Run's context ends. Transient failures (network,
// 401, 429, 5xx, other 4xx) wait at the shared gate and retry.
func (u *Uplink) attempt(j *job, lo, hi int) outcome {
	for tries := 0; ; tries++ {
		if u.gate.wait(u.run) != nil {
			return stopped
		}
		if err := u.encode(j, lo, hi); err != nil {
			if errors.Is(err, protocol.ErrTooLarge) && hi-lo > 1 {
				return tooLarge
			}
			msg := "the gateway cannot encode it: " + err.Error()
			u.refusal.Store(&msg)
			u.c.setError(msg)
			return refused
		}
		if tries > 0 {
			u.c.retries.Add(1)
		}
		first, last := j.first+uint64(lo), j.first+uint64(hi)-1
		gen := u.gate.generation()
		r := u.post(j)
		if r.err != nil && u.run.Err() != nil {
			return stopped // cut off by the drain timeout: not the cloud's failure
		}
		if r.err == nil && r.status/100 == 2 {
			if r.msg = u.checkAck(r.body, j.epoch, first, last); r.msg == "" {
				return u.acked(j, lo, hi)
			}
			r.badAck = true
		}
		switch {
		case r.status == http.StatusBadRequest:
			u.c.malformed.Add(1)
			msg := fmt.Sprintf("400 from the cloud for readings %d..%d of epoch %d: %s", first, last, j.epoch, r.msg)
			u.refusal.Store(&r.msg)
			u.c.setError(msg)
			if ok, n := u.logs.refused.Allow(); ok {
				u.log.Error("the cloud refused a batch as malformed: this is a bug in the gateway or the cloud; the readings are kept",
					"epoch", j.epoch, "first", first, "last", last, "cloud_error", r.msg, "suppressed", n)
			}
			return refused
		case r.status == http.StatusRequestEntityTooLarge:
			u.c.tooLarge.Add(1)
			u.c.setError(fmt.Sprintf("413 from the cloud for %d bytes (%d encoded): %s", len(j.body), len(j.raw), r.msg))
			u.lowerMaxBytes(len(j.raw))
			return tooLarge
		}
		d := u.gate.fail(gen, r.retryAfter)
		u.transient(r, first, last, d)
		if u.run.Err() != nil {
			return stopped
		}
	}
}

// transient counts and logs a failure that is retried.
func (u *Uplink) transient(r response, first, last uint64, retryIn time.Duration) {
	var msg string
	switch {
	case r.badAck:
		u.c.badAcks.Add(1)
		msg = fmt.Sprintf("%d with an acknowledgement that does not match the request: %s", r.status, r.msg)
		u.c.setError(msg)
		if ok, n := u.logs.badAck.Allow(); ok {
			u.log.Error("the cloud answered a batch with an acknowledgement that does not match it; the readings are kept and the batch is sent again",
				"status", r.status, "problem", r.msg, "first", first, "last", last, "retry_in", retryIn, "suppressed", n)
		}
		return
	case r.err != nil:
		u.c.network.Add(1)
		msg = r.err.Error()
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		u.c.unauthorized.Add(1)
		u.unauthorized.Store(true)
		msg = fmt.Sprintf("token rejected for gateway %s (%d): %s", u.cfg.Gateway, r.status, r.msg)
		u.c.setError(msg)
		if ok, n := u.logs.auth.Allow(); ok {
			u.log.Error("token rejected for gateway "+u.cfg.Gateway+"; backing off", "status", r.status,
				"cloud_error", r.msg, "retry_in", retryIn, "suppressed", n)
		}
		return
	case r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable:
		u.c.throttled.Add(1)
		msg = fmt.Sprintf("%d %s (retry after %v)", r.status, r.msg, r.retryAfter)
	case r.status/100 == 4:
		u.c.other4xx.Add(1)
		msg = fmt.Sprintf("%d: %s", r.status, r.msg)
	default:
		u.c.other5xx.Add(1)
		msg = fmt.Sprintf("%d: %s", r.status, r.msg)
	}
	u.c.setError(msg)
	if ok, n := u.logs.transient.Allow(); ok {
		u.log.Warn("upload failed; retrying", "err", msg, "first", first, "last", last,
			"retry_in", retryIn, "backoff", u.gate.current(), "suppressed", n)
	}
}

// acked deletes an acknowledged part from the queue, retrying the Ack
// until it succeeds or the drain context ends.
func (u *Uplink) acked(j *job, lo, hi int) outcome {
	first, last := j.first+uint64(lo), j.first+uint64(hi)-1
	if u.gate.current() > 0 {
		u.log.Info("upload recovered", "after_backoff", u.gate.current())
	}
	u.gate.success()
	u.unauthorized.Store(false)
	u.c.batches.Add(1)
	u.c.lastSuccess.Store(time.Now().UnixNano())
	if e := u.src.Epoch(); e != j.epoch {
		u.log.Warn("queue epoch changed while a batch was in flight; not deleting", "batch_epoch", j.epoch, "epoch", e,
			"first", first, "last", last)
		return acked
	}
	retry := backoff.Backoff{Initial: u.cfg.Backoff.Initial, Max: u.cfg.Backoff.Max, Jitter: backoff.None}
	for {
		err := u.src.Ack(u.drain, first, last)
		if err == nil {
			u.c.readings.Add(uint64(hi - lo))
			return acked
		}
		u.c.ackFailures.Add(1)
		u.c.setError("queue ack: " + err.Error())
		if ok, n := u.logs.ack.Allow(); ok {
			u.log.Error("the cloud has the batch but the queue cannot delete it; retrying (a restart would resend it, deduplicated by the cloud)",
				"first", first, "last", last, "err", err, "suppressed", n)
		}
		if !backoff.Sleep(u.drain, retry.Next()) {
			return stopped
		}
	}
}

// lowerMaxBytes makes later batches smaller after a 413 for a batch of
// rawLen encoded bytes: half of it, but not below MinMaxBytes.
func (u *Uplink) lowerMaxBytes(rawLen int) {
	for {
		cur := u.maxBytes.Load()
		nv := max(int64(rawLen/2), MinMaxBytes)
		if nv >= cur {
			return
		}
		if u.maxBytes.CompareAndSwap(cur, nv) {
			if ok, _ := u.logs.tooLarge.Allow(); ok {
				u.log.Warn("the cloud refused a batch as too large; sending smaller batches", "refused_bytes", rawLen, "max_bytes", nv)
			}
			return
		}
	}
}

// encode fills j.body with rs[lo:hi] encoded and compressed, unless it
// already holds them.
func (u *Uplink) encode(j *job, lo, hi int) error {
	if j.encLo == lo && j.encHi == hi {
		return nil
	}
	j.encLo, j.encHi = -1, -1
	j.batch = protocol.Batch{Gateway: u.cfg.Gateway, Epoch: j.epoch, FirstSeq: j.first + uint64(lo), Readings: j.rs[lo:hi]}
	raw, err := protocol.AppendBatch(j.raw[:0], &j.batch)
	j.batch.Readings = nil
	j.raw = raw
	if err != nil {
		return err
	}
	switch u.cfg.Compression {
	case CompressionZstd:
		j.zbuf = u.zenc.EncodeAll(raw, j.zbuf[:0])
		j.body = j.zbuf
	case CompressionGzip:
		w := u.gzPool.Get().(*gzip.Writer)
		j.gzbuf.Reset()
		w.Reset(&j.gzbuf)
		_, err := w.Write(raw)
		if err == nil {
			err = w.Close()
		}
		u.gzPool.Put(w)
		if err != nil {
			return fmt.Errorf("uplink: gzip: %w", err)
		}
		j.body = j.gzbuf.Bytes()
	default:
		j.body = raw
	}
	j.encLo, j.encHi = lo, hi
	return nil
}

// response is what one POST came to.
type response struct {
	status     int
	msg        string // the cloud's error message, or what is wrong with its acknowledgement
	body       []byte // a 2xx's body: the acknowledgement
	badAck     bool   // a 2xx whose acknowledgement does not match the request
	retryAfter time.Duration
	err        error // no HTTP response
}

// ack is the cloud's answer to a stored batch (cloud/ingest): the
// gateway, epoch and sequence range it acknowledges.
type ack struct {
	Gateway *string `json:"gateway"`
	Epoch   *uint64 `json:"epoch"`
	First   *uint64 `json:"first"`
	Last    *uint64 `json:"last"`
}

// checkAck returns what is wrong with an acknowledgement of readings
// first..last of epoch, or "" when it acknowledges exactly them: a body
// that does not parse, lacks a field, or names another gateway, epoch or
// range (a proxy's page, another gateway's answer, a confused cloud)
// deletes nothing.
func (u *Uplink) checkAck(body []byte, epoch, first, last uint64) string {
	var a ack
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Sprintf("not a JSON acknowledgement (%v): %.80q", err, strings.TrimSpace(string(body)))
	}
	switch {
	case a.Gateway == nil || a.Epoch == nil || a.First == nil || a.Last == nil:
		return "the acknowledgement lacks gateway, epoch, first or last"
	case *a.Gateway != u.cfg.Gateway:
		return fmt.Sprintf("it acknowledges gateway %.130q, not %q", *a.Gateway, u.cfg.Gateway)
	case *a.Epoch != epoch || *a.First != first || *a.Last != last:
		return fmt.Sprintf("it acknowledges epoch %d readings %d..%d, not epoch %d readings %d..%d",
			*a.Epoch, *a.First, *a.Last, epoch, first, last)
	}
	return ""
}

const maxErrorBody = 16 << 10

// post sends j.body once.
func (u *Uplink) post(j *job) response {
	ctx, cancel := context.WithTimeout(u.drain, u.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.ingestURL, bytes.NewReader(j.body))
	if err != nil {
		return response{err: err}
	}
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	if u.cfg.Compression != CompressionNone {
		req.Header.Set("Content-Encoding", u.cfg.Compression)
	}
	req.Header.Set("Authorization", "Bearer "+u.cfg.Token)
	req.Header.Set("User-Agent", "tributary-agent")
	u.c.requests.Add(1)
	u.c.bytesRaw.Add(uint64(len(j.raw)))
	u.c.bytesComp.Add(uint64(len(j.body)))
	u.c.inFlight.Add(1)
	defer u.c.inFlight.Add(-1)
	resp, err := u.client.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode}
	if r.status/100 == 2 {
		r.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return r
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	r.msg = errorMessage(body, resp.Status)
	if r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable {
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// errorMessage extracts {"error": "..."} from a JSON error body, else the
// body's first line, else the status text.
func errorMessage(body []byte, status string) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return status
	}
	return strconv.Quote(s)
}

package kinesisbackend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tributary-iot/tributary/internal/backoff"
)

// Put writes entries to stream ("" means Config.Stream) and returns one
// Result per entry, in order: Err nil means written at ShardID and
// SequenceNumber; otherwise the entry was not written, and Err wraps
// ErrThrottled if retrying later may succeed (shard at capacity or a
// transient failure until the deadline), ErrInvalidEntry if it never can,
// or the error Kinesis gave.
//
// Put's own error means the outcome of some entries is unknown: it wraps
// ErrOutcomeUnknown when a call failed without an answer and was not
// acknowledged on a later attempt before the deadline (those entries may
// have been written; the Results, returned too, say which entries are known
// to be written), or reports a stream that is neither a name nor an ARN
// (nothing sent, nil Results).
//
// Entries of one partition key are written in their order; see the package
// doc for how, and for the bound on Put's duration.
func (b *Backend) Put(ctx context.Context, stream string, entries []Entry) ([]Result, error) {
	if stream == "" {
		stream = b.cfg.Stream
	}
	if err := checkStream(stream); err != nil {
		return nil, err
	}
	start := time.Now()
	defer func() { b.m.putSeconds.Observe(time.Since(start).Seconds()) }()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.PutTimeout)
		defer cancel()
	}
	p := newPut(b, b.stream(stream), entries)
	return p.run(ctx)
}

// entryState is Put's bookkeeping for one entry.
type entryState struct {
	size     int // data + partition key
	attempts int
	shard    *shardState // where the last attempt was routed
	lastErr  error       // of the last failed attempt
	// maybeWritten: an attempt failed without an answer, so the entry may
	// be in the stream; only an acknowledgement settles it.
	maybeWritten bool
	done         bool
}

// put is one Put call in progress.
//
// Each partition key has a queue of its pending entries, in order. A round
// takes the head of every queue whose shard can take it now, packs them
// into up to Concurrency PutRecords calls (≤ 500 entries, ≤ 5 MiB each),
// and sends those calls at once. Only a head is ever in flight for a key,
// so a key never has two entries in one call, and its next entry is sent
// only after the head was acknowledged.
type put struct {
	b       *Backend
	st      *streamState
	name    *string
	arn     *string
	entries []Entry
	results []Result
	state   []entryState
	queues  map[string][]int // partition key → pending entry indices, head first
	keys    []string         // keys with pending entries, in first-use order
	hashes  map[string]hashKey
	fatal   error // a whole-call error that no retry fixes
	cursor  int   // where the next round starts in keys
}

func newPut(b *Backend, st *streamState, entries []Entry) *put {
	p := &put{
		b:       b,
		st:      st,
		entries: entries,
		results: make([]Result, len(entries)),
		state:   make([]entryState, len(entries)),
		queues:  make(map[string][]int),
		hashes:  make(map[string]hashKey),
	}
	p.name, p.arn = streamRef(st.name)
	for i, e := range entries {
		if err := checkEntry(e); err != nil {
			p.results[i].Err = err
			p.state[i].done = true
			b.m.failed.Inc()
			continue
		}
		p.state[i].size = len(e.Data) + len(e.PartitionKey)
		q, ok := p.queues[e.PartitionKey]
		if !ok {
			p.keys = append(p.keys, e.PartitionKey)
			p.hashes[e.PartitionKey] = hashPartitionKey(e.PartitionKey)
		}
		p.queues[e.PartitionKey] = append(q, i)
	}
	return p
}

func checkEntry(e Entry) error {
	switch n := utf8.RuneCountInString(e.PartitionKey); {
	case n == 0:
		return fmt.Errorf("%w: empty partition key", ErrInvalidEntry)
	case n > MaxPartitionKeyLen:
		return fmt.Errorf("%w: partition key of %d characters (at most %d)", ErrInvalidEntry, n, MaxPartitionKeyLen)
	case !utf8.ValidString(e.PartitionKey):
		return fmt.Errorf("%w: partition key %q is not valid UTF-8", ErrInvalidEntry, e.PartitionKey)
	}
	if n := len(e.Data) + len(e.PartitionKey); n > MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes of data and partition key (at most %d)", ErrInvalidEntry, n, MaxRecordBytes)
	}
	return nil
}

func (p *put) run(ctx context.Context) ([]Result, error) {
	for len(p.keys) > 0 && p.fatal == nil && ctx.Err() == nil {
		p.st.refresh(ctx, p.b)
		round := time.Now()
		calls, wake := p.plan(round)
		if len(calls) == 0 {
			if !sleepUntil(ctx, wake) {
				break
			}
			continue
		}
		outs := p.send(ctx, calls)
		p.apply(round, calls, outs)
	}
	return p.finish(ctx)
}

// plan picks this round's calls: the head entry of each key whose shard
// admits it now. When nothing is admitted, wake is when something may be.
func (p *put) plan(now time.Time) (calls [][]int, wake time.Time) {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var cur []int
	curBytes := 0
	// Start where the last round stopped, so that when a round cannot
	// take every key (more than Concurrency × 500), all keys get turns.
	n := len(p.keys)
	start := p.cursor % n
	p.cursor = start
	for j := 0; j < n; j++ {
		k := p.keys[(start+j)%n]
		i := p.queues[k][0]
		size := p.state[i].size
		if len(cur) == MaxEntriesPerCall || curBytes+size > MaxBytesPerCall {
			calls = append(calls, cur)
			cur, curBytes = nil, 0
			if len(calls) == p.b.cfg.Concurrency {
				p.cursor = start + j // k's turn comes first next round
				break
			}
		}
		sh := st.route(p.hashes[k])
		if ok, at := st.admit(sh, now, size); !ok {
			if wake.IsZero() || at.Before(wake) {
				wake = at
			}
			continue
		}
		p.state[i].shard = sh
		cur = append(cur, i)
		curBytes += size
	}
	if len(cur) > 0 {
		calls = append(calls, cur)
	}
	return calls, wake
}

// minWait is the shortest pause of a Put that has nothing to send: tokens
// gather for a while, so that calls carry more than a record or two.
const minWait = 10 * time.Millisecond

// sleepUntil waits until t (at least minWait), or returns false when ctx
// ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	return backoff.Sleep(ctx, max(time.Until(t), minWait))
}

type callResult struct {
	out *kinesis.PutRecordsOutput
	err error
}

// send makes the round's calls concurrently. A call's context outlives
// ctx's deadline by up to RequestTimeout, so that a call in flight at the
// deadline ends with a known outcome; cancelling ctx cancels it.
func (p *put) send(ctx context.Context, calls [][]int) []callResult {
	outs := make([]callResult, len(calls))
	var wg sync.WaitGroup
	for c, idx := range calls {
		recs := make([]types.PutRecordsRequestEntry, len(idx))
		for j, i := range idx {
			e := &p.entries[i]
			data := e.Data
			if data == nil {
				data = []byte{} // empty records are valid; nil is "missing"
			}
			recs[j] = types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(e.PartitionKey)}
			if p.state[i].attempts > 0 {
				p.b.m.retries.Inc()
			}
			p.state[i].attempts++
		}
		in := &kinesis.PutRecordsInput{StreamName: p.name, StreamARN: p.arn, Records: recs}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.b.cfg.RequestTimeout)
			defer cancel()
			stop := context.AfterFunc(ctx, func() {
				if errors.Is(ctx.Err(), context.Canceled) {
					cancel()
				}
			})
			defer stop()
			t0 := time.Now()
			out, err := p.b.client.PutRecords(cctx, in)
			p.b.m.callSeconds.Observe(time.Since(t0).Seconds())
			outs[c] = callResult{out, err}
		})
	}
	wg.Wait()
	return outs
}

// apply records the round's outcomes.
func (p *put) apply(round time.Time, calls [][]int, outs []callResult) {
	now := time.Now()
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	cfg := p.b.cfg
	touched := make(map[string]bool)
	for c, idx := range calls {
		out, err := outs[c].out, outs[c].err
		if err == nil && len(out.Records) != len(idx) {
			err = fmt.Errorf("%w: %d results for %d records", errAnswerMismatch, len(out.Records), len(idx))
			out = nil
		}
		if err != nil {
			kind, throttled := classify(err)
			if throttled {
				err = fmt.Errorf("kinesisbackend: PutRecords: %w: %w", ErrThrottled, err)
				p.b.m.throttles.Add(float64(len(idx)))
			} else {
				err = fmt.Errorf("kinesisbackend: PutRecords: %w", err)
			}
			for _, i := range idx {
				p.state[i].lastErr = err
				if kind == unanswered {
					p.state[i].maybeWritten = true
				}
			}
			if kind == permanent {
				p.fatal = err
			} else {
				st.gate.fail(round, now, cfg.RetryBase, cfg.RetryMax)
			}
			continue
		}
		for j, r := range out.Records {
			i := idx[j]
			key := p.entries[i].PartitionKey
			sh := p.state[i].shard
			code := aws.ToString(r.ErrorCode)
			if code == "" {
				p.results[i] = Result{ShardID: aws.ToString(r.ShardId), SequenceNumber: aws.ToString(r.SequenceNumber)}
				p.state[i].done = true
				p.b.m.written.Inc()
				st.count(p.results[i].ShardID, p.state[i].size, false)
				p.queues[key] = p.queues[key][1:]
				touched[key] = true
				if sh.id != p.results[i].ShardID {
					// Routed elsewhere than predicted: the map is missing
					// or stale (a reshard). Relist when allowed.
					if st.ranges != nil {
						st.stale = true
					}
					if s := st.shardFor(p.results[i].ShardID); s != nil {
						sh = s
					}
				}
				sh.gate.ok(round)
				continue
			}
			e := &EntryError{Code: code, Message: aws.ToString(r.ErrorMessage)}
			p.state[i].lastErr = e
			if !retryableCode(code) {
				p.failKey(key, e)
				touched[key] = true
				continue
			}
			if s := st.shardFor(shardIDInMessage(e.Message)); s != nil {
				sh = s
			}
			if throttleCode(code) {
				p.b.m.throttles.Inc()
				st.count(sh.id, 0, true)
				if sh.bucket != nil {
					sh.bucket.drain(now)
				}
			}
			sh.gate.fail(round, now, cfg.RetryBase, cfg.RetryMax)
		}
		if len(idx) > 0 {
			st.gate.ok(round)
		}
	}
	if len(touched) > 0 {
		keys := p.keys[:0]
		for _, k := range p.keys {
			if len(p.queues[k]) > 0 {
				keys = append(keys, k)
			} else {
				delete(p.queues, k)
			}
		}
		p.keys = keys
	}
}

// failKey ends key's head with err and its later entries with an error
// wrapping it: sending them would put them ahead of the head.
func (p *put) failKey(key string, err error) {
	q := p.queues[key]
	for n, i := range q {
		if n == 0 {
			p.results[i].Err = err
		} else {
			p.results[i].Err = fmt.Errorf("kinesisbackend: not sent, an earlier entry for partition key %q failed: %w", key, err)
		}
		p.state[i].done = true
		p.b.m.failed.Inc()
	}
	p.queues[key] = nil
}

// finish fails what is left and builds the answer.
func (p *put) finish(ctx context.Context) ([]Result, error) {
	var cause error
	if p.fatal != nil {
		cause = p.fatal
	} else if err := ctx.Err(); err != nil {
		cause = err
	}
	unknown := 0
	var lastUnknown error
	for _, k := range p.keys {
		q := p.queues[k]
		for n, i := range q {
			s := &p.state[i]
			var err error
			switch {
			case p.fatal != nil:
				err = p.fatal
			case n > 0:
				err = fmt.Errorf("kinesisbackend: not sent by the deadline, behind an earlier entry for its partition key: %w (%w)", ErrThrottled, cause)
			case s.lastErr == nil:
				err = fmt.Errorf("kinesisbackend: not sent by the deadline, shard at capacity: %w (%w)", ErrThrottled, cause)
			case errors.Is(s.lastErr, ErrThrottled):
				err = fmt.Errorf("kinesisbackend: not written after %d attempts: %w (%w)", s.attempts, s.lastErr, cause)
			default:
				// Transient (InternalFailure, lost connection): retrying
				// later may succeed.
				err = fmt.Errorf("kinesisbackend: not written after %d attempts: %w: %w (%w)", s.attempts, ErrThrottled, s.lastErr, cause)
			}
			p.results[i].Err = err
			s.done = true
			p.b.m.failed.Inc()
			if s.maybeWritten {
				unknown++
				lastUnknown = s.lastErr
			}
		}
	}
	p.keys, p.queues = nil, nil
	if unknown > 0 {
		return p.results, fmt.Errorf("kinesisbackend: %d entries may or may not have been written (%w): %w", unknown, lastUnknown, ErrOutcomeUnknown)
	}
	return p.results, nil
}

// Kinds of whole-call failure.
const (
	notWritten = iota // rejected or never sent: retry
	unanswered        // may have been written: retry, but the outcome is open
	permanent         // no retry helps (no such stream, access denied)
)

// classify sorts a PutRecords error.
func classify(err error) (kind int, throttled bool) {
	if errors.Is(err, errAnswerMismatch) {
		return unanswered, false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if throttleCode(code) {
			return notWritten, true
		}
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
			return unanswered, false
		}
		switch code {
		case "InternalFailure", "InternalFailureException", "ServiceUnavailable", "InternalServerError":
			return unanswered, false
		case "ExpiredTokenException", "ExpiredToken", "RequestExpired", "IDPCommunicationError":
			return notWritten, false
		}
		return permanent, false
	}
	var ipe *smithy.InvalidParamsError
	var ser *smithy.SerializationError
	if errors.As(err, &ipe) || errors.As(err, &ser) {
		return permanent, false // refused before sending: a bug, not load
	}
	var se *smithyhttp.RequestSendError
	if errors.As(err, &se) {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return notWritten, false // never connected
		}
		return unanswered, false
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return unanswered, false
	}
	// Failed before sending (credentials, signing): nothing was written.
	return notWritten, false
}

var errAnswerMismatch = errors.New("kinesisbackend: answer does not match the request")

// throttleCode reports codes that mean "at capacity, slow down".
func throttleCode(code string) bool {
	switch code {
	case "ProvisionedThroughputExceededException", "KMSThrottlingException",
		"LimitExceededException", "ThrottlingException", "Throttling":
		return true
	}
	return false
}

// retryableCode reports whether an entry's ErrorCode may clear on retry.
// The KMS configuration errors do not; unknown codes are retried (until
// the deadline) rather than given up.
func retryableCode(code string) bool {
	switch code {
	case "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException",
		"KMSNotFoundException", "KMSOptInRequired", "AccessDeniedException",
		"ResourceNotFoundException", "InvalidArgumentException", "ValidationException":
		return false
	}
	return true
}

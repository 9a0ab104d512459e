package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/internal/backoff"
)

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
	delay    backoff.Backoff
}

func newThrottleBudget(wait time.Duration) throttleBudget {
	return throttleBudget{deadline: time.Now().Add(wait), delay: backoff.Backoff{Initial: 5 * time.Millisecond, Max: 200 * time.Millisecond}}
}

// next returns how long to wait before retrying, or false when the budget
// is spent.
func (t *throttleBudget) next() (time.Duration, bool) {
	d := t.delay.Next()
	if time.Now().Add(d).After(t.deadline) {
		return 0, false
	}
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

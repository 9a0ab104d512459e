package queue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/protocol"
)

const quota = 1 << 20

// logSink collects log records.
type logSink struct {
	mu      sync.Mutex
	records []slog.Record
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r.Clone())
	return nil
}
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *logSink) WithGroup(string) slog.Handler      { return s }

// sum adds up an int attribute of the records whose message contains msg.
func (s *logSink) sum(msg, attr string) (n int64, events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if !strings.Contains(r.Message, msg) {
			continue
		}
		events++
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == attr {
				switch a.Value.Kind() {
				case slog.KindInt64:
					n += a.Value.Int64()
				case slog.KindUint64:
					n += int64(a.Value.Uint64())
				}
			}
			return true
		})
	}
	return n, events
}

// fill appends batches of 100 readings with TryAppend until ErrFull,
// checking the quota after every step; it returns the readings stored.
func fill(t *testing.T, q *queue.Queue, path string, from int) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for i := 0; ; i++ {
		if i > 10_000 {
			t.Fatal("never full")
		}
		tail := q.Tail()
		res, err := q.TryAppend(ctx, readings("dev", from+n, 100))
		checkQuota(t, path, quota)
		if errors.Is(err, queue.ErrFull) {
			mustEqual(t, "tail after ErrFull", q.Tail(), tail)
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "result", res, queue.AppendResult{Stored: 100, First: tail + 1, Last: tail + 100})
		n += 100
	}
}

func TestQuotaBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		q, path := openQueue(t, queue.Options{MaxBytes: quota, Policy: queue.Block})
		checkQuota(t, path, quota)

		n := fill(t, q, path, 0)
		st := q.Stats()
		t.Logf("full after %d readings: %d encoded bytes, file %d bytes", n, st.Bytes, st.FileBytes)
		mustEqual(t, "depth", st.Depth, int64(n))
		mustEqual(t, "appended", st.Appended, uint64(n))
		mustEqual(t, "blocked", st.Blocked, true)
		// Exact and deterministic: 100-reading appends of 44-byte entries
		// (68 bytes with bbolt's element header and key) fill 1 MiB after
		// 11,100. Pinned so that a change to the encoding or to the space
		// estimate shows up here; update it deliberately.
		mustEqual(t, "readings stored when full", n, 11_100)
		if _, err := q.TryAppend(ctx, readings("dev", n, 1)); !errors.Is(err, queue.ErrFull) {
			t.Fatalf("TryAppend when full: %v", err)
		}

		// Append waits while full: through many retry intervals.
		type outcome struct {
			res queue.AppendResult
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := q.Append(ctx, readings("dev", n, 100))
			done <- outcome{res, err}
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case o := <-done:
			t.Fatalf("Append returned while full: %+v, %v", o.res, o.err)
		default:
		}
		checkQuota(t, path, quota)

		// A context that ends while waiting: nothing stored.
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := q.Append(cctx, readings("dev", n+100, 100))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Append with an expiring context: %v", err)
		}

		// An Ack frees space: the waiting Append completes.
		if err := q.Ack(ctx, 1, 1000); err != nil {
			t.Fatal(err)
		}
		o := <-done
		if o.err != nil {
			t.Fatal(o.err)
		}
		mustEqual(t, "waiting append", o.res, queue.AppendResult{Stored: 100, First: uint64(n + 1), Last: uint64(n + 100)})
		checkQuota(t, path, quota)
		st = q.Stats()
		mustEqual(t, "depth after ack", st.Depth, int64(n-1000+100))
		mustEqual(t, "tail (the cancelled append took no seqs)", q.Tail(), uint64(n+100))

		// The freed pages are reused: about as many readings fit again.
		m := fill(t, q, path, n+200)
		t.Logf("after acknowledging 1000: %d more fit", m+100)
		mustEqual(t, "readings that fit after acknowledging 1000", m+100, 900)
		mustEqual(t, "blocked", q.Stats().Blocked, true)

		// Acknowledge everything: the queue works as new within the quota.
		if err := q.Ack(ctx, 1, q.Tail()); err != nil {
			t.Fatal(err)
		}
		// Less than the first time by the dedupe records that accumulated
		// meanwhile (its window holds MaxBytes/64 = 16,384 keys, 8 bytes
		// each, about 90 readings' worth per 1,000 keys).
		k := fill(t, q, path, 1_000_000)
		if k < n-1500 {
			t.Errorf("after emptying, %d fit (first fill: %d)", k, n)
		}
	})
}

func TestQuotaBlockCloseFailsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q, path := openQueue(t, queue.Options{MaxBytes: quota})
		n := fill(t, q, path, 0)
		done := make(chan error, 1)
		go func() {
			_, err := q.Append(context.Background(), readings("dev", n, 100))
			done <- err
		}()
		synctest.Wait()
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, queue.ErrClosed) {
			t.Fatalf("waiting Append after Close: %v", err)
		}
	})
}

func TestQuotaDropOldest(t *testing.T) {
	ctx := context.Background()
	logs := &logSink{}
	q, path := openQueue(t, queue.Options{MaxBytes: quota, Policy: queue.DropOldest, Logger: slog.New(logs)})
	const batches, per = 400, 100 // about four times what fits
	dropped := 0
	for i := range batches {
		head := q.Head()
		res, err := q.TryAppend(ctx, readings("dev", i*per, per))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		checkQuota(t, path, quota)
		mustEqual(t, "stored", res.Stored, per)
		mustEqual(t, "first", res.First, uint64(i*per+1))
		if head > 0 {
			// Exactly the readings reported dropped left the head.
			mustEqual(t, "head advance", q.Head()-head, uint64(res.Dropped))
		}
		dropped += res.Dropped
		st := q.Stats()
		mustEqual(t, "Stats.Dropped", st.Dropped, uint64(dropped))
		mustEqual(t, "depth", st.Depth, int64((i+1)*per-dropped))
		mustEqual(t, "head", q.Head(), q.Tail()-uint64(st.Depth)+1)
		mustEqual(t, "blocked", st.Blocked, false)
	}
	st := q.Stats()
	t.Logf("kept %d readings, dropped %d, file %d bytes", st.Depth, st.Dropped, st.FileBytes)
	if dropped < batches*per/2 {
		t.Fatalf("only %d dropped", dropped)
	}
	logged, events := logs.sum("dropped the oldest readings", "count")
	mustEqual(t, "dropped readings logged", logged, int64(dropped))
	if events == 0 {
		t.Fatal("no drop events logged")
	}

	// The newest readings are kept, contiguous up to the tail.
	seqs, rs := readAll(t, q)
	mustEqual(t, "kept", int64(len(seqs)), st.Depth)
	for i, s := range seqs {
		mustEqual(t, "seq", s, q.Head()+uint64(i))
		want := reading("dev", int(s)-1)
		if !rs[i].Equal(&want) {
			t.Fatalf("seq %d = %v, want %v", s, rs[i].String(), want.String())
		}
	}
	mustEqual(t, "oldest received", st.OldestReceived, reading("dev", int(q.Head())-1).Received)
}

func TestTooLarge(t *testing.T) {
	q, _ := openQueue(t, queue.Options{MaxBytes: quota})
	rs := make([]protocol.Reading, 2000)
	for i := range rs {
		rs[i] = reading("dev", i)
		rs[i].Kind, rs[i].Value, rs[i].Str = protocol.KindString, 0, strings.Repeat("x", 200)
	}
	if _, err := q.Append(context.Background(), rs); !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	mustEqual(t, "depth", q.Stats().Depth, 0)
}

func newLogger(s *logSink) *slog.Logger { return slog.New(s) }

// Large readings (8 KiB data values) make bbolt nodes span pages, where
// the space estimate is least exact: bbolt's own size limit catches what
// the estimate misses, under both policies.
func TestQuotaLargeReadings(t *testing.T) {
	for _, policy := range []queue.Policy{queue.Block, queue.DropOldest} {
		t.Run(string(policy), func(t *testing.T) {
			ctx := context.Background()
			q, path := openQueue(t, queue.Options{MaxBytes: quota, Policy: policy})
			big := func(i int) []protocol.Reading {
				rs := readings("dev", i*3, 3)
				for k := range rs {
					rs[k].Kind, rs[k].Value, rs[k].Data = protocol.KindData, 0, bytes.Repeat([]byte{byte(i)}, 8<<10)
				}
				return rs
			}
			stored := 0
			for i := range 200 {
				res, err := q.TryAppend(ctx, big(i))
				checkQuota(t, path, quota)
				if policy == queue.Block && errors.Is(err, queue.ErrFull) {
					if err := q.Ack(ctx, q.Head(), q.Head()+8); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("append %d: %v", i, err)
				}
				stored += res.Stored
			}
			st := q.Stats()
			t.Logf("%s: stored %d, kept %d, dropped %d, file %d", policy, stored, st.Depth, st.Dropped, st.FileBytes)
			if st.Depth == 0 || stored < 300 {
				t.Fatalf("stats %+v", st)
			}
			_, rs := readAll(t, q)
			mustEqual(t, "readable", int64(len(rs)), st.Depth)
		})
	}
}

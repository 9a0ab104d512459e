package queue_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/protocol"
)

func TestAppendReadAck(t *testing.T) {
	ctx := context.Background()
	q, _ := openQueue(t, queue.Options{})
	if q.Epoch() == 0 {
		t.Fatal("epoch is 0")
	}
	mustEqual(t, "head of an empty queue", q.Head(), 0)
	first, out, err := q.Read(1, 10, 0, nil)
	if err != nil || len(out) != 0 || first != 0 {
		t.Fatalf("Read of an empty queue = %d, %d readings, %v", first, len(out), err)
	}

	res, err := q.Append(ctx, readings("dev-1", 0, 5))
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "result", res, queue.AppendResult{Stored: 5, First: 1, Last: 5})
	res, err = q.Append(ctx, readings("dev-1", 5, 3))
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "result", res, queue.AppendResult{Stored: 3, First: 6, Last: 8})
	mustEqual(t, "head", q.Head(), 1)
	mustEqual(t, "tail", q.Tail(), 8)

	first, out, err = q.Read(1, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "first", first, 1)
	mustEqual(t, "readings", len(out), 8)
	for i := range out {
		want := reading("dev-1", i)
		if !out[i].Equal(&want) {
			t.Fatalf("reading %d = %v, want %v", i, out[i].String(), want.String())
		}
	}

	if err := q.Ack(ctx, 1, 3); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ctx, 1, 3); err != nil { // idempotent
		t.Fatal(err)
	}
	mustEqual(t, "head after ack", q.Head(), 4)
	first, out, _ = q.Read(1, 2, 0, out)
	mustEqual(t, "first after ack", first, 4)
	mustEqual(t, "limited read", len(out), 2)

	st := q.Stats()
	mustEqual(t, "depth", st.Depth, 5)
	mustEqual(t, "acked", st.Acked, 3)
	mustEqual(t, "appended", st.Appended, 8)
	mustEqual(t, "oldest received", st.OldestReceived, reading("dev-1", 3).Received)
	if st.Bytes <= 0 || st.FileBytes <= 0 || st.Commits < 3 {
		t.Fatalf("stats %+v", st)
	}
	if err := q.Ack(ctx, 4, 100); err != nil {
		t.Fatal(err)
	}
	st = q.Stats()
	mustEqual(t, "depth", st.Depth, 0)
	mustEqual(t, "bytes", st.Bytes, 0)
	mustEqual(t, "oldest received", st.OldestReceived, 0)
	mustEqual(t, "head", q.Head(), 0)
	if err := q.Ack(ctx, 5, 4); err == nil {
		t.Fatal("Ack of an inverted range succeeded")
	}
}

func TestReadStopsAtGapAndLimits(t *testing.T) {
	ctx := context.Background()
	q, _ := openQueue(t, queue.Options{})
	if _, err := q.Append(ctx, readings("d", 0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ctx, 4, 5); err != nil {
		t.Fatal(err)
	}
	first, out, _ := q.Read(1, 0, 0, nil)
	mustEqual(t, "first", first, 1)
	mustEqual(t, "run before the gap", len(out), 3)
	first, out, _ = q.Read(4, 0, 0, nil)
	mustEqual(t, "first after the gap", first, 6)
	mustEqual(t, "run after the gap", len(out), 5)
	one, _ := queue.EncodeEntry(&out[0])
	first, out, _ = q.Read(6, 0, 2*len(one)+1, nil)
	mustEqual(t, "first", first, 6)
	mustEqual(t, "byte-limited run", len(out), 2)
	_, out, _ = q.Read(6, 0, 1, nil)
	mustEqual(t, "at least one reading", len(out), 1)
	_, out, _ = q.Read(11, 0, 0, nil)
	mustEqual(t, "past the tail", len(out), 0)
}

func TestAppendValidates(t *testing.T) {
	q, _ := openQueue(t, queue.Options{})
	bad := reading("dev", 1)
	bad.Device = "no spaces allowed"
	_, err := q.Append(context.Background(), []protocol.Reading{reading("dev", 0), bad})
	if !errors.Is(err, protocol.ErrBadDeviceID) {
		t.Fatalf("err = %v, want ErrBadDeviceID", err)
	}
	mustEqual(t, "depth", q.Stats().Depth, 0)
	res, err := q.Append(context.Background(), nil)
	if err != nil || res != (queue.AppendResult{}) {
		t.Fatalf("empty append = %+v, %v", res, err)
	}
}

func TestDedupe(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpen(t, path, queue.Options{})
	rs := readings("dev", 0, 4)
	rs = append(rs, rs[1]) // a repeat inside one append
	res, err := q.Append(ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "within a batch", res, queue.AppendResult{Stored: 4, Duplicates: 1, First: 1, Last: 4})
	res, _ = q.Append(ctx, readings("dev", 2, 4)) // 2, 3 seen
	mustEqual(t, "across batches", res, queue.AppendResult{Stored: 2, Duplicates: 2, First: 5, Last: 6})
	other := reading("dev", 2)
	other.Device = "dev-2" // same name and time, other device: distinct key
	res, _ = q.Append(ctx, []protocol.Reading{other})
	mustEqual(t, "other device", res.Stored, 1)
	if err := q.Ack(ctx, 1, 7); err != nil { // acknowledged readings stay remembered
		t.Fatal(err)
	}
	epoch := q.Epoch()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = mustOpen(t, path, queue.Options{})
	defer q.Close()
	mustEqual(t, "epoch after restart", q.Epoch(), epoch)
	res, _ = q.Append(ctx, readings("dev", 0, 7))
	mustEqual(t, "after restart", res, queue.AppendResult{Stored: 1, Duplicates: 6, First: 8, Last: 8})
	st := q.Stats()
	mustEqual(t, "duplicates (persisted)", st.Duplicates, 9)
	mustEqual(t, "appended (persisted)", st.Appended, 8)
	mustEqual(t, "acked (persisted)", st.Acked, 7)
}

func TestDedupeWindowTrims(t *testing.T) {
	ctx := context.Background()
	q, _ := openQueue(t, queue.Options{DedupeWindow: 100})
	if _, err := q.Append(ctx, readings("d", 0, 100)); err != nil {
		t.Fatal(err)
	}
	// The window keeps at least 100 keys and forgets whole records of 64
	// once 164 are held.
	for i := 100; i < 1100; i += 100 {
		if _, err := q.Append(ctx, readings("d", i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := q.Append(ctx, readings("d", 1000, 100))
	mustEqual(t, "recent keys remembered", res.Duplicates, 100)
	res, _ = q.Append(ctx, readings("d", 0, 10))
	mustEqual(t, "old keys forgotten", res.Stored, 10)
}

func TestNewFileNewEpoch(t *testing.T) {
	dir := t.TempDir()
	a, err := queue.Open(filepath.Join(dir, "a.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := queue.Open(filepath.Join(dir, "b.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Epoch() == b.Epoch() || a.Epoch() == 0 || b.Epoch() == 0 {
		t.Fatalf("epochs %d and %d", a.Epoch(), b.Epoch())
	}
	if _, err := queue.Open(filepath.Join(dir, "a.db"), queue.Options{}); !errors.Is(err, queue.ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
}

func TestNotify(t *testing.T) {
	q, _ := openQueue(t, queue.Options{})
	select {
	case <-q.Notify():
		t.Fatal("notified before any append")
	default:
	}
	if _, err := q.Append(context.Background(), readings("d", 0, 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-q.Notify():
	default:
		t.Fatal("no notification after a commit that stored readings")
	}
}

func TestConcurrentAppends(t *testing.T) {
	const producers, appends, per = 64, 40, 10
	ctx := context.Background()
	q, _ := openQueue(t, queue.Options{})
	type span struct{ first, last uint64 }
	spans := make([][]span, producers)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			dev := "dev-" + string(rune('A'+p%26)) + string(rune('a'+p/26))
			for a := range appends {
				res, err := q.Append(ctx, readings(dev, a*per, per))
				if err != nil || res.Stored != per || res.Last-res.First != per-1 {
					t.Errorf("append: %+v, %v", res, err)
					return
				}
				spans[p] = append(spans[p], span{res.First, res.Last})
			}
		})
	}
	wg.Wait()
	seqs, rs := readAll(t, q)
	mustEqual(t, "stored", len(rs), producers*appends*per)
	index := make(map[uint64]int, len(seqs))
	for i, s := range seqs {
		if i > 0 && s <= seqs[i-1] {
			t.Fatalf("seqs not increasing at %d", i)
		}
		index[s] = i
	}
	for p := range producers {
		dev := "dev-" + string(rune('A'+p%26)) + string(rune('a'+p/26))
		for a, sp := range spans[p] {
			for k := range per {
				want := reading(dev, a*per+k)
				got := rs[index[sp.first+uint64(k)]]
				if !got.Equal(&want) {
					t.Fatalf("producer %d append %d reading %d: got %v", p, a, k, got.String())
				}
			}
		}
	}
	if c := q.Stats().Commits; c >= producers*appends {
		t.Errorf("%d commits for %d appends: no group commit", c, producers*appends)
	} else {
		t.Logf("%d appends in %d commits", producers*appends, c)
	}
}

func TestCloseFailsPendingAndIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpen(t, path, queue.Options{})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := q.Append(ctx, readings("d", 0, 1)); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := q.Ack(ctx, 1, 1); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
	if _, _, err := q.Read(1, 1, 0, nil); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if err := q.AddDeadLetter(ctx, queue.DeadLetter{}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("AddDeadLetter after Close: %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	q, _ := openQueue(t, queue.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Append(ctx, readings("d", 0, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	q, _ := openQueue(t, queue.Options{DeadLetterMax: 3})
	big := make([]byte, queue.MaxDeadLetterPayload+10)
	for i := range 5 {
		d := queue.DeadLetter{Time: time.UnixMicro(baseTime + int64(i)).UTC(), Topic: "tributary/v1/devices/x/telemetry",
			Reason: "bad pack " + string(rune('0'+i)), Payload: []byte{byte(i)}}
		if i == 4 {
			d.Payload = big
		}
		if err := q.AddDeadLetter(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	dls, err := q.DeadLetters(0)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "kept", len(dls), 3)
	mustEqual(t, "stats", q.Stats().DeadLetters, 3)
	mustEqual(t, "newest first", dls[1].Reason, "bad pack 3")
	mustEqual(t, "oldest kept", dls[2].Reason, "bad pack 2")
	mustEqual(t, "time", dls[1].Time, time.UnixMicro(baseTime+3).UTC())
	mustEqual(t, "truncated", len(dls[0].Payload), queue.MaxDeadLetterPayload)
	mustEqual(t, "truncation noted", dls[0].Reason, "bad pack 4 (payload truncated from 65546 bytes)")
	dls, _ = q.DeadLetters(1)
	mustEqual(t, "max", len(dls), 1)
}

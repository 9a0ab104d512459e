package queue_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/edge/queue"
)

var (
	baseOnce sync.Once
	baseFile []byte
)

// baseQueueFile is a small but multi-level queue file: entries over
// several leaves, acknowledged ranges, dedupe records, dead letters.
func baseQueueFile(t testing.TB) []byte {
	baseOnce.Do(func() {
		path := filepath.Join(t.TempDir(), "base.db")
		q := mustOpen(t, path, queue.Options{MaxBytes: queue.MinMaxBytes, Policy: queue.DropOldest})
		ctx := context.Background()
		for i := range 20 {
			if _, err := q.Append(ctx, readings("dev", i*50, 50)); err != nil {
				t.Fatal(err)
			}
		}
		_ = q.Ack(ctx, 1, 120)
		_ = q.AddDeadLetter(ctx, queue.DeadLetter{Topic: "t", Reason: "r", Payload: []byte("p")})
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		var err error
		if baseFile, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	})
	return baseFile
}

// openDamaged writes data as a queue file and opens it; a damaged file
// must give an error, never a panic or a crash, and a file that opens must
// work.
func openDamaged(t *testing.T, data []byte) error {
	path := filepath.Join(t.TempDir(), "q.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(path, queue.Options{MaxBytes: queue.MinMaxBytes, Policy: queue.DropOldest})
	if err != nil {
		return err
	}
	defer q.Close()
	ctx := context.Background()
	from := uint64(1)
	for {
		first, out, err := q.Read(from, 100, 0, nil)
		if err != nil {
			if !errors.Is(err, queue.ErrCorrupt) {
				t.Fatalf("Read: %v", err)
			}
			break
		}
		if len(out) == 0 {
			break
		}
		from = first + uint64(len(out))
	}
	_, _ = q.DeadLetters(0)
	_, _ = q.Append(ctx, readings("new", 0, 10))
	_ = q.Ack(ctx, 1, 50)
	return nil
}

func TestOpenDamagedFiles(t *testing.T) {
	base := baseQueueFile(t)
	garbage := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	otherDB := func() []byte {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
		_ = db.Close()
		b, _ := os.ReadFile(path)
		return b
	}()
	zeroMetas := append(make([]byte, 2*4096), base[2*4096:]...)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"garbage", garbage},
		{"truncated to half", base[:len(base)/2/4096*4096]},
		{"meta pages zeroed", zeroMetas},
		{"another application's bbolt file", otherDB},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := openDamaged(t, c.data); !errors.Is(err, queue.ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("incomplete new file", func(t *testing.T) {
		// Shorter than bbolt's first write: never held a reading; starts anew.
		if err := openDamaged(t, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzOpen damages a real queue file (patch bytes at an offset, or
// truncate when the patch is empty) and opens it.
func FuzzOpen(f *testing.F) {
	base := baseQueueFile(f)
	f.Add(uint32(0), []byte{0xff})           // meta 0 magic
	f.Add(uint32(4096+16+40), []byte{0x7f})  // meta 1 high water mark
	f.Add(uint32(2*4096), []byte{9, 9, 9})   // a page id
	f.Add(uint32(3*4096+8), []byte{1})       // page flags
	f.Add(uint32(4*4096+10), []byte{0xff})   // element count
	f.Add(uint32(5*4096+20), []byte{0xee})   // an element's position
	f.Add(uint32(6*4096+100), []byte("xyz")) // entry bytes
	f.Add(uint32(len(base)/2), []byte{})     // truncation
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		data := append([]byte(nil), base...)
		o := int(off) % len(data)
		if len(patch) == 0 {
			data = data[:o]
		} else {
			copy(data[o:], patch)
		}
		if err := openDamaged(t, data); err != nil && !errors.Is(err, queue.ErrCorrupt) {
			t.Fatalf("err = %v, want nil or ErrCorrupt", err)
		}
	})
}

func TestDamagedEntryIsQuarantined(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpen(t, path, queue.Options{})
	if _, err := q.Append(ctx, readings("dev", 0, 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Append(ctx, readings("victim-device", 0, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Append(ctx, readings("dev", 5, 5)); err != nil {
		t.Fatal(err)
	}
	q.Close()

	// Flip a bit of the entry on disk (every copy bbolt left behind).
	data, _ := os.ReadFile(path)
	n := 0
	for i := bytes.Index(data, []byte("victim-device")); i >= 0; {
		data[i+3] ^= 0x20
		n++
		j := bytes.Index(data[i+1:], []byte("victim-device"))
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if n == 0 {
		t.Fatal("entry not found in the file")
	}
	os.WriteFile(path, data, 0o600)

	logs := &logSink{}
	q = mustOpen(t, path, queue.Options{Logger: newLogger(logs)})
	defer q.Close()
	first, out, err := q.Read(1, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "run before the damaged entry", len(out), 5)
	mustEqual(t, "first", first, 1)
	first, out, err = q.Read(6, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "run after the damaged entry", len(out), 5)
	mustEqual(t, "first after", first, 7)
	st := q.Stats()
	mustEqual(t, "corrupt", st.Corrupt, 1)
	mustEqual(t, "depth", st.Depth, 10)
	dls, _ := q.DeadLetters(0)
	if len(dls) != 1 || !strings.Contains(dls[0].Reason, "corrupt queue entry seq 6") {
		t.Fatalf("dead letters %+v", dls)
	}
	if _, n := logs.sum("damaged queue entry", "seq"); n != 1 {
		t.Fatal("the damaged entry was not logged")
	}
}

func TestCompact(t *testing.T) {
	ctx := context.Background()
	q, path := openQueue(t, queue.Options{})
	for i := range 50 {
		if _, err := q.Append(ctx, readings("dev", i*1000, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Ack(ctx, 1, 49_900); err != nil {
		t.Fatal(err)
	}
	before := q.Stats().FileBytes
	if err := q.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	after := q.Stats().FileBytes
	t.Logf("compacted %d → %d bytes", before, after)
	if after >= before/4 {
		t.Fatalf("file %d bytes after compaction, %d before", after, before)
	}
	seqs, rs := readAll(t, q)
	mustEqual(t, "kept", len(rs), 100)
	for i, s := range seqs {
		want := reading("dev", int(s)-1)
		if !rs[i].Equal(&want) {
			t.Fatalf("seq %d after compaction: %v", s, rs[i].String())
		}
	}
	res, err := q.Append(ctx, readings("dev", 0, 10)) // dedupe survives compaction
	if err != nil || res.Duplicates != 10 {
		t.Fatalf("append after compaction: %+v, %v", res, err)
	}
	res, _ = q.Append(ctx, readings("dev", 100_000, 10))
	mustEqual(t, "seqs continue", res.First, uint64(50_001))
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
}

func TestOpenWithLowerQuotaCompacts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	q := mustOpen(t, path, queue.Options{})
	for i := range 40 {
		if _, err := q.Append(ctx, readings("dev", i*1000, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	q.Ack(ctx, 1, 39_000)
	q.Close()
	if fi, _ := os.Stat(path); fi.Size() <= quota {
		t.Fatalf("setup: file only %d bytes", fi.Size())
	}
	q = mustOpen(t, path, queue.Options{MaxBytes: quota})
	checkQuota(t, path, quota)
	mustEqual(t, "depth", q.Stats().Depth, 1000)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, quota)
}

// With OnCorrupt Quarantine a damaged file is renamed aside, byte for
// byte, and a new empty queue with a new epoch takes its place; a sound
// file is opened as usual.
func TestQuarantineDamagedFile(t *testing.T) {
	base := baseQueueFile(t)
	good := func() uint64 { // the epoch of the base file
		path := filepath.Join(t.TempDir(), "q.db")
		if err := os.WriteFile(path, base, 0o600); err != nil {
			t.Fatal(err)
		}
		q := mustOpen(t, path, queue.Options{OnCorrupt: queue.Quarantine})
		defer q.Close()
		if q.Quarantined() != nil || q.Stats().Depth == 0 {
			t.Fatalf("a sound file was quarantined: %+v, %+v", q.Quarantined(), q.Stats())
		}
		return q.Epoch()
	}()
	zeroMetas := append(make([]byte, 2*4096), base[2*4096:]...)
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	if err := os.WriteFile(path, zeroMetas, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Open(path, queue.Options{}); !errors.Is(err, queue.ErrCorrupt) {
		t.Fatalf("the default (refuse): %v, want ErrCorrupt", err)
	}
	for round := range 2 { // a second damaged file gets a name of its own
		if round == 1 {
			if err := os.WriteFile(path, zeroMetas, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		q, err := queue.Open(path, queue.Options{OnCorrupt: queue.Quarantine})
		if err != nil {
			t.Fatal(err)
		}
		qr := q.Quarantined()
		if qr == nil || !errors.Is(qr.Err, queue.ErrCorrupt) || !strings.HasPrefix(qr.MovedTo, path+queue.DamagedSuffix) {
			t.Fatalf("round %d: quarantined %+v", round, qr)
		}
		if moved, err := os.ReadFile(qr.MovedTo); err != nil || !bytes.Equal(moved, zeroMetas) {
			t.Errorf("round %d: the damaged file was not kept as it was (%v)", round, err)
		}
		if st := q.Stats(); st.Depth != 0 || q.Epoch() == good || q.Epoch() == 0 {
			t.Errorf("round %d: new queue %+v, epoch %d (damaged file's %d)", round, st, q.Epoch(), good)
		}
		if _, err := q.Append(context.Background(), readings("new", 0, 10)); err != nil {
			t.Fatal(err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		files, err := queue.DamagedFiles(path)
		if err != nil || len(files) != round+1 || !slices.Contains(files, qr.MovedTo) {
			t.Errorf("round %d: DamagedFiles %q, %v", round, files, err)
		}
	}
	// The new queue reopens with its readings, quarantining nothing.
	q := mustOpen(t, path, queue.Options{OnCorrupt: queue.Quarantine})
	defer q.Close()
	if q.Quarantined() != nil || q.Stats().Depth != 10 {
		t.Errorf("reopened: %+v, depth %d", q.Quarantined(), q.Stats().Depth)
	}
	// A file another process holds is not damaged: never moved aside.
	if _, err := queue.Open(path, queue.Options{OnCorrupt: queue.Quarantine}); !errors.Is(err, queue.ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
	if files, _ := queue.DamagedFiles(path); len(files) != 2 {
		t.Errorf("damaged files after a locked open: %q", files)
	}
}

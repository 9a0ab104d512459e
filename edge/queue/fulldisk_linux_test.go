package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// The full-disk test: a child process (this test binary, re-executed with
// fullDiskEnv set) limits the size of the files it may write with
// RLIMIT_FSIZE, so that growing the queue file fails with EFBIG as on a
// full disk, and appends until then (and a few times more); then it
// acknowledges half the readings and appends again, into the freed pages.
// It prints every acknowledged append and deletion and every error. The
// parent reopens the file and checks that every acknowledged reading is
// there and every acknowledged deletion stays deleted, then runs a child
// without the limit ("space returns"), which must open the queue and
// store more.

const (
	fullDiskEnv      = "TRIBUTARY_QUEUE_FULLDISK_HELPER"
	fullDiskRunEnv   = "TRIBUTARY_QUEUE_FULLDISK_RUN"
	fullDiskLimitEnv = "TRIBUTARY_QUEUE_FULLDISK_LIMITED" // set when the child runs out of room
	fullDiskBatch    = 200
	fullDiskErrors   = 5 // appends the child tries after the first error
)

var fullDiskOptions = queue.Options{MaxBytes: 8 << 20} // the quota is not what stops it

const fullDiskHelperName = "queue-fulldisk"

func init() { childHelpers[fullDiskHelperName] = fullDiskHelper }

// fullDiskHelper is the child. Output lines: "A run batch first last" for
// an acknowledged append, "K first last" for an acknowledged deletion,
// "E message" for a failed append.
func fullDiskHelper() {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", what, err)
		os.Exit(2)
	}
	run, _ := strconv.Atoi(os.Getenv(fullDiskRunEnv))
	q, err := queue.Open(os.Getenv(fullDiskEnv), fullDiskOptions)
	if err != nil {
		fail("open", err)
	}
	errs := 0
	for i := 0; i < 10_000 && errs <= fullDiskErrors; i++ {
		res, err := q.Append(context.Background(), readings(fullDiskDevice(run), i*fullDiskBatch, fullDiskBatch))
		if err != nil {
			fmt.Printf("E %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			errs++
			continue
		}
		fmt.Printf("A %d %d %d %d\n", run, i, res.First, res.Last)
		if os.Getenv(fullDiskLimitEnv) == "" && i == 9 {
			break // space is back: ten appends prove it
		}
	}
	if os.Getenv(fullDiskLimitEnv) != "" {
		// Acknowledging frees pages inside the file: appends fit again.
		first := q.Head()
		last := first + (q.Tail()-first)/2
		if err := q.Ack(context.Background(), first, last); err != nil {
			fail("ack", err)
		}
		fmt.Printf("K %d %d\n", first, last)
		res, err := q.Append(context.Background(), readings(fullDiskDevice(run), 1_000_000, fullDiskBatch))
		if err != nil {
			fail("append after ack", err)
		}
		fmt.Printf("A %d %d %d %d\n", run, 1_000_000/fullDiskBatch, res.First, res.Last)
	}
	if err := q.Close(); err != nil {
		fail("close", err)
	}
}

func fullDiskDevice(run int) string { return fmt.Sprintf("run%d", run) }

type fullDiskAck struct {
	run, batch  int
	first, last uint64
}

// fullDiskChild runs the child and parses what it said.
func fullDiskChild(t *testing.T, path string, run int, limit int64) (acks []fullDiskAck, deleted [2]uint64, errs []string) {
	t.Helper()
	env := []string{fullDiskEnv + "=" + path, fullDiskRunEnv + "=" + strconv.Itoa(run)}
	if limit > 0 {
		env = append(env, fullDiskLimitEnv+"=1") // the child knows it runs out of room
	}
	cmd := testenv.HelperFileLimit(t, fullDiskHelperName, uint64(max(limit, 0)), env...)
	for _, l := range testenv.OutputLines(t, cmd) {
		var a fullDiskAck
		switch {
		case strings.HasPrefix(l, "A "):
			if _, err := fmt.Sscanf(l, "A %d %d %d %d", &a.run, &a.batch, &a.first, &a.last); err != nil {
				t.Fatalf("run %d: bad line %q", run, l)
			}
			acks = append(acks, a)
		case strings.HasPrefix(l, "K "):
			if _, err := fmt.Sscanf(l, "K %d %d", &deleted[0], &deleted[1]); err != nil {
				t.Fatalf("run %d: bad line %q", run, l)
			}
		case strings.HasPrefix(l, "E "):
			errs = append(errs, l[2:])
		default:
			t.Fatalf("run %d: unexpected output %q", run, l)
		}
	}
	return acks, deleted, errs
}

// checkAcked reopens the queue and checks that every acknowledged reading
// not deleted (seqs in deleted, inclusive) is stored under its seq, intact,
// and that the deleted ones are gone.
func checkAcked(t *testing.T, path string, acks []fullDiskAck, deleted [2]uint64) {
	t.Helper()
	q, err := queue.Open(path, fullDiskOptions)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	seqs, rs := readAll(t, q)
	if len(seqs) > 0 && seqs[0] <= deleted[1] {
		t.Fatalf("seq %d is stored, but seqs %d-%d were acknowledged as deleted", seqs[0], deleted[0], deleted[1])
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	stored := make(map[uint64]int, len(seqs))
	for i, s := range seqs {
		stored[s] = i
	}
	for _, a := range acks {
		mustEqual(t, "readings in an acknowledged append", int(a.last-a.first+1), fullDiskBatch)
		for k := range fullDiskBatch {
			s := a.first + uint64(k)
			if s >= deleted[0] && s <= deleted[1] {
				continue
			}
			i, ok := stored[s]
			if !ok {
				t.Fatalf("acknowledged seq %d (run %d, append %d) is missing", s, a.run, a.batch)
			}
			want := reading(fullDiskDevice(a.run), a.batch*fullDiskBatch+k)
			if !rs[i].Equal(&want) {
				t.Fatalf("seq %d = %v, want %v", s, rs[i].String(), want.String())
			}
		}
	}
	checkFile(t, path, fullDiskOptions.MaxBytes)
}

func TestFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	const limit = 2 << 20
	acks, deleted, errs := fullDiskChild(t, path, 0, limit)
	if len(errs) == 0 {
		t.Fatal("the child never hit the file size limit")
	}
	t.Logf("with the file limited to %d bytes: %d appends acknowledged, %d errors, e.g. %s", limit, len(acks), len(errs), errs[0])
	if len(acks) < 2 {
		t.Fatal("no append succeeded before the limit")
	}
	if len(errs) != fullDiskErrors+1 {
		t.Fatalf("the child saw %d errors, want %d: %q", len(errs), fullDiskErrors+1, errs)
	}
	for _, e := range errs {
		// The producer is told why. (bbolt formats the error of growing
		// the file with %s, so errors.Is(err, syscall.EFBIG) does not hold;
		// the message says it.)
		if !strings.HasPrefix(e, "queue: commit: ") || !strings.Contains(e, syscall.EFBIG.Error()) {
			t.Errorf("append error %q: want a queue commit error saying %q", e, syscall.EFBIG.Error())
		}
	}
	// The child's last append, after acknowledging half the readings,
	// fitted in the pages the acknowledgement freed.
	if a := acks[len(acks)-1]; a.batch != 1_000_000/fullDiskBatch || deleted[1] == 0 {
		t.Fatalf("no append succeeded after an acknowledgement freed space (last %+v, deleted %v)", a, deleted)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() > limit {
		t.Fatalf("file after the full disk: %v, %v", fi, err)
	}
	checkAcked(t, path, acks, deleted)

	// Space returns: a new process opens the queue and stores again.
	more, _, errs := fullDiskChild(t, path, 1, 0)
	if len(errs) != 0 || len(more) != 10 {
		t.Fatalf("after space returned: %d appends acknowledged, errors %q", len(more), errs)
	}
	checkAcked(t, path, append(acks, more...), deleted)
}

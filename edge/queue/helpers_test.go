package queue_test

import (
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// childHelpers are the child processes some tests re-execute this test
// binary as (testenv.Helper): name → main.
var childHelpers = map[string]func(){
	crashHelperName: crashHelper, // the power-failure test
}

func TestMain(m *testing.M) {
	testenv.RunHelper(childHelpers)
	goleak.VerifyTestMain(m)
}

// openQueue opens a queue in a new file under t.TempDir and, at cleanup,
// closes it and checks the file: bbolt's consistency check, the queue's
// own structural check and the quota.
func openQueue(t testing.TB, o queue.Options) (*queue.Queue, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queue.db")
	q := mustOpen(t, path, o)
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Error(err)
		}
		checkFile(t, path, o.MaxBytes)
	})
	return q, path
}

// mustOpen opens the queue at path or fails the test.
func mustOpen(t testing.TB, path string, o queue.Options) *queue.Queue {
	t.Helper()
	q, err := queue.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// checkFile verifies a closed queue file.
func checkFile(t testing.TB, path string, quota int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if quota > 0 && fi.Size() > quota {
		t.Errorf("file is %d bytes, over the quota of %d", fi.Size(), quota)
	}
	if err := queue.VerifyFile(path); err != nil {
		t.Errorf("verify: %v", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// checkQuota fails if the file is over quota (the invariant after every step).
func checkQuota(t testing.TB, path string, quota int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > quota {
		t.Fatalf("file is %d bytes, over the quota of %d", fi.Size(), quota)
	}
}

const baseTime = 1_767_225_600_000_000 // 2026-01-01T00:00:00Z in µs

// reading returns a deterministic float reading; i makes its natural key
// unique for a given device.
func reading(dev string, i int) protocol.Reading {
	return protocol.Reading{
		Device: dev, Name: "temperature", Unit: "Cel",
		Kind: protocol.KindFloat, Value: 20 + float64(i%100)/10,
		Time: baseTime + int64(i)*1000, Received: baseTime + int64(i)*1000 + 250,
	}
}

func readings(dev string, from, n int) []protocol.Reading {
	rs := make([]protocol.Reading, n)
	for i := range rs {
		rs[i] = reading(dev, from+i)
	}
	return rs
}

// readAll returns every stored reading keyed by seq.
func readAll(t testing.TB, q *queue.Queue) (seqs []uint64, rs []protocol.Reading) {
	t.Helper()
	from := uint64(1)
	var buf []protocol.Reading
	for {
		first, out, err := q.Read(from, 1000, 0, buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 {
			return seqs, rs
		}
		for i := range out {
			seqs = append(seqs, first+uint64(i))
			rs = append(rs, out[i])
		}
		from = first + uint64(len(out))
		buf = out
	}
}

func mustEqual[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

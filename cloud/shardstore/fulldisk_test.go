//go:build linux

package shardstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// The full-disk test: a child process (this test binary, re-executed with
// fullDiskEnv set) limits the size of the files it writes (RLIMIT_FSIZE,
// so writes past it fail with EFBIG, as on a full disk) and puts records
// until a Put fails; the parent checks the error, then that every record
// acknowledged before is still there, and that a child without the limit
// stores records again.

const (
	fullDiskEnv     = "TRIBUTARY_SHARDSTORE_FULLDISK" // the store file
	fullDiskFromEnv = "TRIBUTARY_SHARDSTORE_FULLDISK_FROM"
	fullDiskPuts    = 200
	fullDiskPer     = 20
)

const fullDiskHelperName = "shardstore-fulldisk"

func init() { childHelpers[fullDiskHelperName] = fullDiskChild }

func fullDiskEntries(call int) []shardstore.PutEntry {
	es := make([]shardstore.PutEntry, fullDiskPer)
	for i := range es {
		data := bytes.Repeat([]byte{byte(i)}, 1000)
		copy(data, fmt.Sprintf("call %d entry %d|", call, i))
		es[i] = shardstore.PutEntry{PartitionKey: fmt.Sprintf("key-%d-%d", call, i), Data: data}
	}
	return es
}

// fullDiskChild puts fullDiskPuts calls from call number FROM on, and
// prints "A call shard/seq..." for each acknowledged one, or "E
// is-ErrNoSpace error" for the first that fails.
func fullDiskChild() {
	path := os.Getenv(fullDiskEnv)
	from, _ := strconv.Atoi(os.Getenv(fullDiskFromEnv))
	s, err := shardstore.Open(path, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}, TrimInterval: -1})
	if err != nil {
		fmt.Printf("E %v %v\n", errors.Is(err, shardstore.ErrNoSpace), err)
		return
	}
	for c := from; c < from+fullDiskPuts; c++ {
		res, err := s.Put(context.Background(), "disk", fullDiskEntries(c))
		if err != nil {
			fmt.Printf("E %v %v\n", errors.Is(err, shardstore.ErrNoSpace), err)
			break
		}
		line := fmt.Sprintf("A %d", c)
		for _, r := range res {
			line += " " + r.ShardID + "/" + r.SequenceNumber
		}
		fmt.Println(line)
	}
	if err := s.Close(); err != nil {
		fmt.Println("E close:", err)
	}
}

// runFullDiskChild returns the acknowledged calls (call → shard/seq per
// entry) and the error line, if any.
func runFullDiskChild(t *testing.T, path string, limit uint64, from int) (map[int][]string, string) {
	t.Helper()
	cmd := testenv.HelperFileLimit(t, fullDiskHelperName, limit, fullDiskEnv+"="+path, fmt.Sprintf("%s=%d", fullDiskFromEnv, from))
	acked := map[int][]string{}
	var errLine string
	for _, l := range testenv.OutputLines(t, cmd) {
		f := strings.Fields(l)
		switch {
		case len(f) == 2+fullDiskPer && f[0] == "A":
			c, _ := strconv.Atoi(f[1])
			acked[c] = f[2:]
		case strings.HasPrefix(l, "E ") && errLine == "":
			errLine = l
		default:
			t.Fatalf("child said %q", l)
		}
	}
	return acked, errLine
}

func TestFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "streams.db")
	s, err := shardstore.Open(path, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}, TrimInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "disk", 2)
	acked := map[int][]string{}
	for c := range 5 {
		for _, r := range mustPut(t, s, "disk", fullDiskEntries(c)) {
			acked[c] = append(acked[c], r.ShardID+"/"+r.SequenceNumber)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Room for about a dozen more calls.
	limit := usedBytes(t, path) + 256<<10
	got, errLine := runFullDiskChild(t, path, limit, 5)
	t.Logf("%d calls acknowledged before the limit; then %s", len(got), errLine)
	if len(got) == 0 || len(got) == fullDiskPuts {
		t.Fatalf("%d calls acknowledged under a limit of %d bytes: want some, then a failure", len(got), limit)
	}
	if !strings.HasPrefix(errLine, "E true ") || !strings.Contains(errLine, path) || !strings.Contains(errLine, "free disk space") {
		t.Fatalf("error %q: want ErrNoSpace naming %s and saying what to do", errLine, path)
	}
	for c, seqs := range got {
		acked[c] = seqs
	}

	// Space returns: a new process stores records again.
	again, errLine := runFullDiskChild(t, path, 0, 1000)
	if errLine != "" || len(again) != fullDiskPuts {
		t.Fatalf("without the limit: %d calls acknowledged, error %q", len(again), errLine)
	}
	for c, seqs := range again {
		acked[c] = seqs
	}
	checkAcked(t, path, acked)
}

// usedBytes is the size of the pages the file uses (bbolt grows files
// ahead of use).
func usedBytes(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return uint64(n)
}

// checkAcked reopens the store and finds every acknowledged record intact.
func checkAcked(t *testing.T, path string, acked map[int][]string) {
	t.Helper()
	s := openAt(t, path, unlimited())
	stored := map[string]shardstore.Record{}
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		recs, _ := readAll(t, s, "disk", shard, shardstore.Start{Type: shardstore.TrimHorizon}, 10_000)
		for _, r := range recs {
			stored[shard+"/"+r.SequenceNumber] = r
		}
	}
	n := 0
	for c, seqs := range acked {
		want := fullDiskEntries(c)
		for i, seq := range seqs {
			r, ok := stored[seq]
			if !ok || !bytes.Equal(r.Data, want[i].Data) || r.PartitionKey != want[i].PartitionKey {
				t.Fatalf("acknowledged record %s (call %d entry %d) is missing or differs", seq, c, i)
			}
			n++
		}
	}
	if len(stored) != n {
		t.Fatalf("the store holds %d records, %d were acknowledged", len(stored), n)
	}
}

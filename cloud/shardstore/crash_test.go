package shardstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// The kill -9 test: a child process (this test binary, re-executed with
// as the helper child crashHelperName) puts records from several goroutines and reshards
// now and then, printing each acknowledged sequence number only after Put
// returned; the parent kills it with SIGKILL at a random moment, reopens
// the file and checks that every acknowledged record is there, intact, at
// its sequence number, that the open shards still partition the key space
// and that the file is consistent. Several rounds reuse the same file.

const (
	crashHelperName = "shardstore-crash"
	crashPathEnv    = "TRIBUTARY_SHARDSTORE_CRASH_PATH"
	crashIterEnv    = "TRIBUTARY_SHARDSTORE_CRASH_ITER"
	crashWriters    = 6
	crashPer        = 20
)

func crashData(iter, g, c, i int) []byte {
	d := fmt.Appendf(nil, "it%d g%d c%d i%d|", iter, g, c, i)
	return append(d, bytes.Repeat([]byte{byte(i)}, 50+i*7)...)
}

func crashHelper() {
	path := os.Getenv(crashPathEnv)
	var iter int
	fmt.Sscan(os.Getenv(crashIterEnv), &iter)
	s, err := shardstore.Open(path, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}, TrimInterval: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	if err := s.CreateStream(ctx, "crash", 4); err != nil && !errors.Is(err, shardstore.ErrStreamExists) {
		fmt.Fprintln(os.Stderr, "helper create:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(line string) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(line) // unbuffered: one write per line
	}
	say(testenv.ReadyLine + "\n")
	reshard := make(chan struct{}, 1)
	for g := range crashWriters {
		go func() {
			for c := 0; ; c++ {
				es := make([]shardstore.PutEntry, crashPer)
				for i := range es {
					es[i] = shardstore.PutEntry{PartitionKey: fmt.Sprintf("dev-%d-%d-%d", g, c, i), Data: crashData(iter, g, c, i)}
				}
				res, err := s.Put(ctx, "crash", es)
				if err != nil {
					fmt.Fprintln(os.Stderr, "helper put:", err)
					os.Exit(2)
				}
				var b strings.Builder
				fmt.Fprintf(&b, "A %d %d %d", iter, g, c)
				for _, r := range res {
					fmt.Fprintf(&b, " %s/%s", r.ShardID, r.SequenceNumber)
				}
				b.WriteByte('\n')
				say(b.String())
				if g == 0 && c%3 == 2 {
					select {
					case reshard <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	go func() { // reshard every third put of writer 0: 4 → 8 → 4 ...
		for range reshard {
			in, err := s.DescribeStream("crash")
			if err != nil {
				continue
			}
			target := 8
			if in.OpenShards == 8 {
				target = 4
			}
			if _, err := s.UpdateShardCount(ctx, "crash", target); err != nil {
				fmt.Fprintln(os.Stderr, "helper reshard:", err)
				os.Exit(2)
			}
		}
	}()
	select {}
}

type crashAck struct {
	iter, g, c int
	shards     []string
	seqs       []string
}

func TestKill9KeepsAcknowledgedRecords(t *testing.T) {
	iterations := 6
	if testing.Short() {
		iterations = 3
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	var acks []crashAck
	for iter := range iterations {
		cmd := testenv.Helper(t, crashHelperName, crashPathEnv+"="+path, fmt.Sprintf("%s=%d", crashIterEnv, iter))
		lines, stderr := testenv.KillWhileRunning(t, cmd, 100*time.Millisecond, 500*time.Millisecond)
		if strings.Contains(stderr, "helper") {
			t.Fatalf("iteration %d: %s", iter, stderr)
		}
		n := 0
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 4+crashPer || f[0] != "A" {
				continue
			}
			a := crashAck{}
			fmt.Sscan(f[1], &a.iter)
			fmt.Sscan(f[2], &a.g)
			fmt.Sscan(f[3], &a.c)
			for _, p := range f[4:] {
				sh, seq, _ := strings.Cut(p, "/")
				a.shards, a.seqs = append(a.shards, sh), append(a.seqs, seq)
			}
			acks = append(acks, a)
			n++
		}
		t.Logf("iteration %d: %d puts (%d records) acknowledged before SIGKILL", iter, n, n*crashPer)
		if n == 0 {
			t.Fatalf("iteration %d: nothing acknowledged: %s", iter, stderr)
		}
		checkAfterCrash(t, path, acks)
	}
}

func checkAfterCrash(t *testing.T, path string, acks []crashAck) {
	t.Helper()
	s, err := shardstore.Open(path, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}, TrimInterval: -1})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	in, err := s.DescribeStream("crash")
	if err != nil {
		t.Fatal(err)
	}
	checkPartition(t, in)
	t.Logf("reopened: %d shards (%d open)", len(in.Shards), in.OpenShards)
	// Read every shard whole, then look every acknowledged record up.
	stored := map[string]shardstore.Record{}
	for _, sh := range in.Shards {
		pos, err := s.Seek("crash", sh.ShardID, shardstore.Start{Type: shardstore.TrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		prev := ""
		for {
			res, err := s.Read(context.Background(), pos, 10_000)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				if r.SequenceNumber <= prev {
					t.Fatalf("%s: %s after %s", sh.ShardID, r.SequenceNumber, prev)
				}
				prev = r.SequenceNumber
				stored[sh.ShardID+"/"+r.SequenceNumber] = r
			}
			if len(res.Records) == 0 || res.EndOfShard {
				break
			}
			pos = res.Next
		}
	}
	for _, a := range acks {
		for i, seq := range a.seqs {
			r, ok := stored[a.shards[i]+"/"+seq]
			if !ok {
				t.Fatalf("acknowledged record %s/%s (iteration %d writer %d call %d entry %d) is missing", a.shards[i], seq, a.iter, a.g, a.c, i)
			}
			if want := crashData(a.iter, a.g, a.c, i); !bytes.Equal(r.Data, want) || r.PartitionKey != fmt.Sprintf("dev-%d-%d-%d", a.g, a.c, i) {
				t.Fatalf("record %s: %q / %q, want %q", seq, r.PartitionKey, r.Data, want)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bbolt consistency check: %v", err)
	}
}

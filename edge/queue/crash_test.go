package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// The power-failure test: a child process (this test binary, re-executed
// as the helper child crashHelperName) appends, acknowledges and compacts in a loop,
// printing each outcome to stdout only after the call returned; the parent
// kills it with SIGKILL at a random moment, reopens the file and checks
// that everything the child was told is true: acknowledged appends are
// present and intact, acknowledged deletions stay deleted, seqs increase,
// nothing is duplicated, the file is consistent.

const (
	crashHelperName = "queue-crash"
	crashPathEnv    = "TRIBUTARY_QUEUE_CRASH_PATH"
	crashIterEnv    = "TRIBUTARY_QUEUE_CRASH_ITER"
	crashCompactEnv = "TRIBUTARY_QUEUE_CRASH_COMPACT"
	crashProducers  = 8
	crashPer        = 10
)

func crashDevice(iter, g int) string { return fmt.Sprintf("it%d-g%d", iter, g) }

func crashHelper() {
	path := os.Getenv(crashPathEnv)
	var iter int
	fmt.Sscan(os.Getenv(crashIterEnv), &iter)
	q, err := queue.Open(path, queue.Options{MaxBytes: 64 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		os.Stdout.WriteString(fmt.Sprintf(format, args...)) // unbuffered: one write per line
	}
	say(testenv.ReadyLine + "\n")
	ctx := context.Background()
	for g := range crashProducers {
		go func() {
			dev := crashDevice(iter, g)
			for c := 0; ; c++ {
				res, err := q.Append(ctx, readings(dev, c*crashPer, crashPer))
				if err != nil {
					fmt.Fprintln(os.Stderr, "helper append:", err)
					os.Exit(2)
				}
				say("A %d %d %d %d\n", g, c, res.First, res.Last)
			}
		}()
	}
	go func() { // the uplink: acknowledge from the head
		for {
			first, out, err := q.Read(q.Head(), 50, 0, nil)
			if err == nil && len(out) > 0 {
				last := first + uint64(len(out)) - 1
				say("I %d %d\n", first, last) // intent: these may vanish from now on
				if err := q.Ack(ctx, first, last); err == nil {
					say("K %d %d\n", first, last)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	if os.Getenv(crashCompactEnv) != "" {
		go func() {
			for {
				if err := q.Compact(ctx); err != nil {
					fmt.Fprintln(os.Stderr, "helper compact:", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	select {}
}

type appended struct {
	iter, g, c  int
	first, last uint64
}

func TestPowerFailure(t *testing.T) {
	iterations := 10
	if testing.Short() {
		iterations = 3
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	var acks, intents [][2]uint64
	var apps []appended
	var maxSeq uint64
	for iter := range iterations {
		env := []string{crashPathEnv + "=" + path, fmt.Sprintf("%s=%d", crashIterEnv, iter)}
		if iter%2 == 1 {
			env = append(env, crashCompactEnv+"=1")
		}
		lines, stderr := testenv.KillWhileRunning(t, testenv.Helper(t, crashHelperName, env...), 50*time.Millisecond, 550*time.Millisecond)
		if strings.Contains(stderr, "helper") {
			t.Fatalf("iteration %d: %s", iter, stderr)
		}
		n := 0
		for _, l := range lines {
			var a appended
			var k [2]uint64
			switch {
			case strings.HasPrefix(l, "A "):
				fmt.Sscanf(l, "A %d %d %d %d", &a.g, &a.c, &a.first, &a.last)
				a.iter = iter
				apps = append(apps, a)
				maxSeq = max(maxSeq, a.last)
				n++
			case strings.HasPrefix(l, "K "):
				fmt.Sscanf(l, "K %d %d", &k[0], &k[1])
				acks = append(acks, k)
			case strings.HasPrefix(l, "I "):
				fmt.Sscanf(l, "I %d %d", &k[0], &k[1])
				intents = append(intents, k)
			}
		}
		t.Logf("iteration %d: %d appends acknowledged before SIGKILL", iter, n)
		checkAfterCrash(t, path, apps, acks, intents, maxSeq)
	}
}

// checkAfterCrash reopens the file: acks are acknowledged deletions (must
// be gone), intents are ranges an Ack was called for (may be gone).
func checkAfterCrash(t *testing.T, path string, apps []appended, acks, intents [][2]uint64, maxSeq uint64) {
	t.Helper()
	q, err := queue.Open(path, queue.Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	seqs, rs := readAll(t, q)
	stored := make(map[uint64]int, len(seqs))
	keys := make(map[string]bool, len(rs))
	for i, s := range seqs {
		if i > 0 && s <= seqs[i-1] {
			t.Fatalf("seqs not strictly increasing: %d after %d", s, seqs[i-1])
		}
		stored[s] = i
		k := fmt.Sprint(rs[i].Key())
		if keys[k] {
			t.Fatalf("reading %s stored twice", k)
		}
		keys[k] = true
	}
	in := func(s uint64, ranges [][2]uint64) bool {
		for _, a := range ranges {
			if s >= a[0] && s <= a[1] {
				return true
			}
		}
		return false
	}
	for s := range stored {
		if in(s, acks) {
			t.Fatalf("seq %d was acknowledged as deleted but is back", s)
		}
	}
	for _, a := range apps {
		for k := range int(a.last - a.first + 1) {
			s := a.first + uint64(k)
			if in(s, intents) {
				continue
			}
			i, ok := stored[s]
			if !ok {
				t.Fatalf("acknowledged seq %d (iteration %d producer %d) is missing", s, a.iter, a.g)
			}
			want := reading(crashDevice(a.iter, a.g), a.c*crashPer+k)
			if !rs[i].Equal(&want) {
				t.Fatalf("seq %d = %v, want %v", s, rs[i].String(), want.String())
			}
		}
	}
	st := q.Stats()
	if st.Depth != int64(len(seqs)) || st.Corrupt != 0 || q.Tail() < maxSeq {
		t.Fatalf("stats %+v (tail %d, max acknowledged seq %d, %d stored)", st, q.Tail(), maxSeq, len(seqs))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, 64<<20)
}

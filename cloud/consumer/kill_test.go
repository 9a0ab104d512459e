package consumer_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// Environment of the child process of TestKill9ResumesWithoutGaps.
const (
	consumerChildName = "consumer"
	envChildURL       = "TRIBUTARY_CONSUMER_URL"
	envChildCP        = "TRIBUTARY_CONSUMER_CHECKPOINTS"
	envChildOut       = "TRIBUTARY_CONSUMER_OUT"
)

// consumerChild is the consumer process that TestKill9ResumesWithoutGaps
// starts and kills (a helper child, run by TestMain). Its handler appends
// "device value shard" for every "seq" reading to a file and fsyncs it
// before returning, so the file is exactly what was handled.
func consumerChild() {
	if err := runConsumerChild(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer child:", err)
		os.Exit(2)
	}
}

func runConsumerChild() error {
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	return runChild(func(h consumer.Handler) (consumer.Runner, error) {
		client := kinesis.NewFromConfig(aws.Config{
			Region:      "us-east-1",
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
			HTTPClient:  hc,
		}, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(os.Getenv(envChildURL)) })
		cfg := config(nil, os.Getenv(envChildCP)) // a path given: no test needed
		cfg.Limit = 7                             // small batches: many checkpoints for the kills to fall between
		return consumer.New(client, cfg, h, consumer.Options{})
	})
}

// runChild runs the consumer that newConsumer builds around a handler
// that appends "device value shard" for every "seq" reading to the file
// named by envChildOut and fsyncs it before returning, so the file is
// exactly what was handled; until SIGTERM (or two minutes: never outlive
// a dead parent for long).
func runChild(newConsumer func(consumer.Handler) (consumer.Runner, error)) error {
	f, err := os.OpenFile(os.Getenv(envChildOut), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	h := func(ctx context.Context, b consumer.Batch) error {
		var sb strings.Builder
		for _, r := range b.Readings {
			if r.Name == "seq" {
				fmt.Fprintf(&sb, "%s %d %s\n", r.Device, int(r.Value), b.Shard)
			}
		}
		if _, err := f.WriteString(sb.String()); err != nil {
			return err
		}
		time.Sleep(time.Millisecond) // a handler that takes time
		return f.Sync()
	}
	c, err := newConsumer(h)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return c.Run(ctx)
}

// TestKill9ResumesWithoutGaps runs the consumer as a separate process,
// kills it with SIGKILL several times while records are written and a
// shard is split, restarts it each time on the same checkpoint file, and
// checks what the handlers saw over all runs: every value of every device,
// each device's values in order except for the re-delivery of what was
// handled but not yet checkpointed when a process died (a value is never
// ahead of the highest one seen + 1), and that re-delivery bounded.
func TestKill9ResumesWithoutGaps(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	e := start(t, unlimited, kinesisapi.Options{}, 2)
	dir := t.TempDir()
	out := filepath.Join(dir, "handled.txt")
	cp := filepath.Join(dir, "checkpoints.db")
	startChild := func() *testenv.Proc {
		cmd := testenv.Helper(t, consumerChildName, envChildURL+"="+e.url, envChildCP+"="+cp, envChildOut+"="+out)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return testenv.Start(t, cmd)
	}

	devs := devices(12)
	const total = 400
	written := make(chan struct{})
	go func() {
		defer close(written)
		for n := range total {
			if n == total/3 {
				if err := e.store.SplitShard(context.Background(), stream, "shardId-000000000000", midpoint(t, e.store, "shardId-000000000000")); err != nil {
					t.Error(err)
					return
				}
			}
			e.put(t, devs, n)
			time.Sleep(time.Millisecond)
		}
	}()

	const kills = 5
	handled := func() int { return len(readHandled(t, out)) }
	for i := range kills {
		cmd := startChild()
		before := handled()
		// Kill it after it handled a random number of records (a moment
		// chosen by progress, not by the clock).
		target := before + 1 + rand.IntN(60)
		testenv.WaitFor(t, fmt.Sprintf("run %d to handle records", i+1), 30*time.Second, func() bool { return handled() >= target })
		cmd.Kill9()
		t.Logf("run %d killed after %d lines handled", i+1, handled())
	}
	<-written

	// The last run reads to the end and stops cleanly.
	cmd := startChild()
	want := total * len(devs)
	testenv.WaitFor(t, "every value handled", 60*time.Second, func() bool {
		seen := map[string]bool{}
		for _, l := range readHandled(t, out) {
			seen[l.dev+" "+strconv.Itoa(l.v)] = true
		}
		return len(seen) == want
	})
	if err := cmd.Stop(30 * time.Second); err != nil {
		t.Fatalf("last run: %v", err)
	}

	lines := readHandled(t, out)
	again := checkNoGaps(t, lines, devs, total)
	viaChild := map[string]bool{}
	for _, l := range lines {
		if l.shard != "shardId-000000000000" && l.shard != "shardId-000000000001" {
			viaChild[l.dev] = true
		}
	}
	if len(viaChild) == 0 {
		t.Error("no device was read from a child of the split shard: the test did not cover resharding")
	}
	// At most one uncommitted batch per shard is redelivered per kill
	// (three shards can be open at once).
	if max := kills * 3 * 7; again > max {
		t.Errorf("%d values re-delivered over %d kills, want at most %d", again, kills, max)
	}
	t.Logf("%d lines over %d kills, %d re-delivered", len(lines), kills, again)
}

// checkNoGaps fails unless every device of devs has its values 0..total-1
// in lines, each first seen in order: a value is either the next one due
// or one seen before (re-delivered after a kill). It returns how many were
// re-delivered.
func checkNoGaps(t *testing.T, lines []handledLine, devs []string, total int) (again int) {
	t.Helper()
	next := map[string]int{} // device → highest value seen + 1
	known := map[string]bool{}
	for _, d := range devs {
		known[d] = true
	}
	for _, l := range lines {
		if !known[l.dev] {
			continue // torn by SIGKILL and glued to the next run's first line
		}
		switch hi := next[l.dev]; {
		case l.v == hi:
			next[l.dev] = hi + 1
		case l.v < hi:
			again++ // re-delivered after a kill
		default:
			t.Fatalf("%s: value %d handled while %d was the next due: a gap or out of order", l.dev, l.v, hi)
		}
	}
	for _, d := range devs {
		if next[d] != total {
			t.Errorf("%s: values 0..%d handled, want 0..%d", d, next[d]-1, total-1)
		}
	}
	return again
}

type handledLine struct {
	dev   string
	v     int
	shard string
}

func readHandled(t *testing.T, path string) []handledLine {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []handledLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			continue // a line torn by SIGKILL (never fsynced, so never acknowledged)
		}
		v, err := strconv.Atoi(fs[1])
		if err != nil {
			continue
		}
		out = append(out, handledLine{fs[0], v, fs[2]})
	}
	return out
}

package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// kafkaConn is how the tests' consumers reach the broker: short group
// timings, so that a member that died is replaced within seconds.
func kafkaConn(addr string) []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(addr), kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second), kgo.FetchMaxWait(200 * time.Millisecond)}
}

func kafkaConfig() consumer.Config {
	return consumer.Config{Stream: stream, Application: "test-group", PollInterval: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
}

// producer writes value n of devices to the topic, keyed by device, in
// one synchronous produce per value (so each device's values are in
// order in its partition).
type producer struct{ cl *kgo.Client }

func newProducer(t testing.TB, addr string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(stream))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{cl: cl}
}

func (p *producer) put(t testing.TB, devs []string, n int) {
	t.Helper()
	rs := make([]*kgo.Record, len(devs))
	for i, d := range devs {
		rs[i] = &kgo.Record{Key: []byte(d), Value: record(t, d, n)}
	}
	if err := p.cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Errorf("produce value %d: %v", n, err)
	}
}

func runKafka(t testing.TB, conn []kgo.Opt, cfg consumer.Config, h consumer.Handler, opts consumer.Options) *running[*consumer.KafkaConsumer] {
	t.Helper()
	c, err := consumer.NewKafka(conn, cfg, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	return startRunner(t, c)
}

// lineLog is a handler's record of what it handled, in the order handled
// across every consumer sharing it.
type lineLog struct {
	mu    sync.Mutex
	lines []handledLine
}

func (l *lineLog) handler(ctx context.Context, b consumer.Batch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range b.Readings {
		if r.Name == "seq" {
			l.lines = append(l.lines, handledLine{r.Device, int(r.Value), b.Shard})
		}
	}
	return nil
}

func (l *lineLog) snapshot() []handledLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]handledLine(nil), l.lines...)
}

func distinct(lines []handledLine) int {
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l.dev+" "+strconv.Itoa(l.v)] = true
	}
	return len(seen)
}

// TestKafkaGroupRebalance: two consumers of one group share a topic's
// partitions while records are produced; the second joins mid-stream and
// the first leaves mid-stream, so partitions move twice. Every record is
// handled, each device's values in order, none twice (a partition is
// committed before it moves).
func TestKafkaGroupRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Kafka broker process")
	}
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{stream: 6}})
	prod := newProducer(t, k.Addr)
	devs := devices(24)
	const total = 150
	log := &lineLog{}
	reg := prometheus.NewRegistry()
	a := runKafka(t, kafkaConn(k.Addr), kafkaConfig(), log.handler, consumer.Options{Registerer: reg})

	var b *running[*consumer.KafkaConsumer]
	aStopped := false
	for n := range total {
		prod.put(t, devs, n)
		switch n {
		case total / 3:
			testenv.WaitFor(t, "the first consumer to handle records", 30*time.Second, func() bool { return a.c.Stats().Records > 0 })
			b = runKafka(t, kafkaConn(k.Addr), kafkaConfig(), log.handler, consumer.Options{})
		case 2 * total / 3:
			testenv.WaitFor(t, "the second consumer to get partitions and handle records", 30*time.Second, func() bool {
				return b.c.Stats().Records > 0
			})
			sa := a.c.Stats()
			if len(sa.Shards) == 0 || len(sa.Shards) == 6 {
				t.Errorf("first consumer reads %d partitions after the second joined: want a share", len(sa.Shards))
			}
			a.stop(t)
			aStopped = true
		}
		time.Sleep(2 * time.Millisecond)
	}
	want := total * len(devs)
	testenv.WaitFor(t, "every value handled", 60*time.Second, func() bool { return distinct(log.snapshot()) == want })
	testenv.WaitFor(t, "the second consumer to own every partition, caught up", 30*time.Second, func() bool {
		st := b.c.Stats()
		if len(st.Shards) != 6 {
			return false
		}
		for _, s := range st.Shards {
			if s.Lag != 0 {
				return false
			}
		}
		return true
	})
	b.stop(t)
	if !aStopped {
		t.Fatal("the first consumer was never stopped")
	}

	lines := log.snapshot()
	if again := checkNoGaps(t, lines, devs, total); again != 0 {
		t.Errorf("%d values handled twice: want none (partitions are committed before they move)", again)
	}
	parts := map[string]string{}
	for _, l := range lines {
		if p, ok := parts[l.dev]; ok && p != l.shard {
			t.Errorf("%s read from partitions %s and %s: want one partition per device", l.dev, p, l.shard)
		}
		parts[l.dev] = l.shard
	}
	sa, sb := a.c.Stats(), b.c.Stats()
	if sa.Records == 0 || sb.Records == 0 || int(sa.Records+sb.Records) != want {
		t.Errorf("records committed: first %d, second %d; want both > 0 and %d in all", sa.Records, sb.Records, want)
	}
	if n, err := testutil.GatherAndCount(reg, "tributary_consumer_records_total", "tributary_consumer_batches_total"); err != nil || n != 2 {
		t.Errorf("metrics: %d series, %v", n, err)
	}
}

// TestKafkaBadRecordsAndHandlerErrors: a record that does not decode is
// counted, passed to OnBadRecord and committed past; a failing handler
// gets the same batch again; a second run of the group starts after
// what the first committed.
func TestKafkaBadRecordsAndHandlerErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Kafka broker process")
	}
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{stream: 1}})
	prod := newProducer(t, k.Addr)
	devs := devices(3)
	prod.put(t, devs, 0)
	if err := prod.cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte("dev-00"), Value: []byte("not cbor")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.put(t, devs, 1)

	var mu sync.Mutex
	var bad []consumer.Record
	fails := 3
	log := &lineLog{}
	h := func(ctx context.Context, b consumer.Batch) error {
		mu.Lock()
		if fails > 0 {
			fails--
			mu.Unlock()
			return errors.New("not yet")
		}
		mu.Unlock()
		return log.handler(ctx, b)
	}
	opts := consumer.Options{OnBadRecord: func(shard string, rec consumer.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		bad = append(bad, rec)
	}}
	r := runKafka(t, kafkaConn(k.Addr), kafkaConfig(), h, opts)
	testenv.WaitFor(t, "both values of every device handled", 30*time.Second, func() bool { return distinct(log.snapshot()) == 2*len(devs) })
	testenv.WaitFor(t, "the partition committed at its end", 10*time.Second, func() bool {
		st := r.c.Stats()
		return len(st.Shards) == 1 && st.Shards[0].Checkpoint == "6"
	})
	st := r.c.Stats()
	r.stop(t)
	if st.DecodeErrors != 1 || st.HandlerErrors != 3 || st.Records != 6 {
		t.Errorf("stats %+v: want 1 decode error, 3 handler errors, 6 records", st)
	}
	mu.Lock()
	if len(bad) != 1 || string(bad[0].Data) != "not cbor" || bad[0].SequenceNumber != "3" || bad[0].PartitionKey != "dev-00" {
		t.Errorf("OnBadRecord got %+v: want the record at offset 3", bad)
	}
	mu.Unlock()
	checkNoGaps(t, log.snapshot(), devs, 2)

	// A new run of the group resumes after the committed offset.
	prod.put(t, devs, 2)
	log2 := &lineLog{}
	r2 := runKafka(t, kafkaConn(k.Addr), kafkaConfig(), log2.handler, consumer.Options{})
	testenv.WaitFor(t, "value 2 handled", 30*time.Second, func() bool { return distinct(log2.snapshot()) == len(devs) })
	r2.stop(t)
	for _, l := range log2.snapshot() {
		if l.v != 2 {
			t.Errorf("second run handled %s value %d again: want only value 2", l.dev, l.v)
		}
	}
}

func TestNewKafkaRefuses(t *testing.T) {
	h := func(context.Context, consumer.Batch) error { return nil }
	if _, err := consumer.NewKafka(nil, kafkaConfig(), h, consumer.Options{}); err == nil || !strings.Contains(err.Error(), "SeedBrokers") {
		t.Errorf("no client options: %v", err)
	}
	if _, err := consumer.NewKafka(kafkaConn("127.0.0.1:1"), kafkaConfig(), nil, consumer.Options{}); !errors.Is(err, consumer.ErrNoHandler) {
		t.Errorf("no handler: %v", err)
	}
	cfg := kafkaConfig()
	cfg.Application = ""
	if _, err := consumer.NewKafka(kafkaConn("127.0.0.1:1"), cfg, h, consumer.Options{}); err == nil || !strings.Contains(err.Error(), "application") {
		t.Errorf("no group: %v", err)
	}
}

// Environment of the child process of TestKafkaKill9ResumesWithoutGaps.
const (
	kafkaChildName = "kafka-consumer"
	envKafkaAddr   = "TRIBUTARY_CONSUMER_KAFKA"
)

// kafkaChild is the Kafka consumer process that
// TestKafkaKill9ResumesWithoutGaps starts and kills: it appends
// "device value partition" for every "seq" reading it handled to a file,
// fsynced before the handler returns.
func kafkaChild() {
	if err := runKafkaChild(); err != nil {
		fmt.Fprintln(os.Stderr, "kafka consumer child:", err)
		os.Exit(2)
	}
}

func runKafkaChild() error {
	return runChild(func(h consumer.Handler) (consumer.Runner, error) {
		cfg := kafkaConfig()
		cfg.Limit = 7 // small batches: many commits for the kills to fall between
		return consumer.NewKafka(kafkaConn(os.Getenv(envKafkaAddr)), cfg, h, consumer.Options{})
	})
}

// TestKafkaKill9ResumesWithoutGaps runs the Kafka consumer as a separate
// process, kills it with SIGKILL several times while records are
// produced, restarts it each time in the same group, and checks what the
// handlers saw over all runs: every value of every device, each device's
// values in order except for the re-delivery of what was handled but not
// committed when a process died, and that re-delivery bounded.
func TestKafkaKill9ResumesWithoutGaps(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{stream: 3}})
	out := filepath.Join(t.TempDir(), "handled.txt")
	startChild := func() *testenv.Proc {
		cmd := testenv.Helper(t, kafkaChildName, envKafkaAddr+"="+k.Addr, envChildOut+"="+out)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return testenv.Start(t, cmd)
	}
	prod := newProducer(t, k.Addr)
	devs := devices(12)
	const total = 300
	written := make(chan struct{})
	go func() {
		defer close(written)
		for n := range total {
			prod.put(t, devs, n)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	const kills = 4
	handled := func() int { return len(readHandled(t, out)) }
	for i := range kills {
		cmd := startChild()
		target := handled() + 1 + rand.IntN(60)
		testenv.WaitFor(t, fmt.Sprintf("run %d to handle records", i+1), 60*time.Second, func() bool { return handled() >= target })
		cmd.Kill9()
		t.Logf("run %d killed after %d lines handled", i+1, handled())
	}
	<-written

	cmd := startChild()
	want := total * len(devs)
	testenv.WaitFor(t, "every value handled", 90*time.Second, func() bool { return distinct(readHandled(t, out)) == want })
	if err := cmd.Stop(30 * time.Second); err != nil {
		t.Fatalf("last run: %v", err)
	}
	lines := readHandled(t, out)
	again := checkNoGaps(t, lines, devs, total)
	// At most one uncommitted poll (7 records) is re-delivered per kill.
	if max := kills * 7; again > max {
		t.Errorf("%d values re-delivered over %d kills, want at most %d", again, kills, max)
	}
	t.Logf("%d lines over %d kills, %d re-delivered", len(lines), kills, again)
}

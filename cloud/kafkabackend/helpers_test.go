package kafkabackend_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kafkabackend"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// newBackend is a Backend on k with short timeouts, closed at cleanup.
func newBackend(t *testing.T, k *testenv.Kafka, mod func(*kafkabackend.Config)) *kafkabackend.Backend {
	t.Helper()
	cfg := kafkabackend.Config{Brokers: []string{k.Addr}, Topic: "telemetry", Partitions: 4,
		PutTimeout: 10 * time.Second, SettleTimeout: time.Second, DialTimeout: 2 * time.Second, RequestTimeout: 3 * time.Second}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := kafkabackend.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// startKafka is a broker with topics telemetry (4 partitions) and alerts
// (4), restarted once so that the topics survive a SIGKILL.
func startKafka(t *testing.T) *testenv.Kafka {
	t.Helper()
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{"telemetry": 4, "alerts": 4}})
	k.Restart()
	return k
}

// record is device dev's SenML-CBOR record of n readings starting at
// second base, as the ingest writes it.
func record(t testing.TB, gw, dev string, base, n int) []byte {
	t.Helper()
	rs := make([]protocol.Reading, n)
	for i := range rs {
		us := int64(1_700_000_000+base+i) * 1e6
		rs[i] = protocol.Reading{Device: dev, Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat,
			Value: float64(base + i), Time: us, Received: us + 1000}
	}
	var out []byte
	err := protocol.EncodeRecords(gw, rs, 0, func(data []byte, _ []protocol.Reading) error {
		if out != nil {
			return fmt.Errorf("more than one record")
		}
		out = append([]byte(nil), data...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// entries is one entry per device dev-0..dev-(n-1), readings at base.
func entries(t testing.TB, n, base int) []ingest.Entry {
	es := make([]ingest.Entry, n)
	for i := range es {
		dev := fmt.Sprintf("dev-%d", i)
		es[i] = ingest.Entry{PartitionKey: dev, Data: record(t, "gw-1", dev, base, 3)}
	}
	return es
}

// consumeAll reads every record of topic from the start until it has
// want (or fails after 30s).
func consumeAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", len(got), want, topic)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// endOffsets is the number of records in topic (all partitions).
func countRecords(t *testing.T, b *kafkabackend.Backend, topic string) int {
	t.Helper()
	n := 0
	err := b.Scan(context.Background(), topic, time.Unix(0, 0), time.Now().Add(time.Hour), func([]byte) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

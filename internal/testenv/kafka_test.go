package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/internal/testenv"
)

func kafkaClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func consumeAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	c := kafkaClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

// TestStartKafka: records acknowledged by the broker process survive its
// SIGKILL, and an injected fault reaches the producer as the Kafka error.
func TestStartKafka(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{"t": 4}})
	k.Restart() // the seeded topic's metadata is on disk from here on

	p := kafkaClient(t, k.Addr, kgo.RecordRetries(1))
	ctx := context.Background()
	for i := range 20 {
		r := &kgo.Record{Topic: "t", Key: fmt.Appendf(nil, "dev-%d", i%5), Value: fmt.Appendf(nil, "v%d", i)}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	k.Kill9()
	k.Start()
	got := consumeAll(t, k.Addr, "t", 20)
	if len(got) != 20 {
		t.Errorf("after SIGKILL: %d records, want 20", len(got))
	}
	part := map[string]int32{}
	for _, r := range got {
		if p, ok := part[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("key %s on partitions %d and %d", r.Key, p, r.Partition)
		}
		part[string(r.Key)] = r.Partition
	}

	k.Fault(0, kerr.MessageTooLarge.Code, 1, "t") // not retriable: reaches the caller
	err := p.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("produce under a fault: %v, want MESSAGE_TOO_LARGE", err)
	}
	k.ClearFaults()
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("y")}).FirstErr(); err != nil {
		t.Errorf("produce after ClearFaults: %v", err)
	}
}

// TestKafkaKcat: kcat (librdkafka), an independent client, reads what the
// broker process stores.
func TestKafkaKcat(t *testing.T) {
	kcat := testenv.Need(t, "kcat", "Debian package kcat")
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{"t": 2}})
	p := kafkaClient(t, k.Addr)
	if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Key: []byte("dev-1"), Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kcat, "-C", "-b", k.Addr, "-t", "t", "-e", "-q", "-f", "%k=%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "dev-1=hello" {
		t.Errorf("kcat read %q, want dev-1=hello", out)
	}
}

package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// readTopic reads every record of topic on the broker at addr, up to the
// end offsets at the call.
func readTopic(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(c).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var recs []*kgo.Record
	for len(left) > 0 {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (partitions left: %v)", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, r)
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return recs
}

// checkTopic: every reading of want is in the records exactly once, each
// record keyed by its device, each device on one partition.
func checkTopic(t *testing.T, recs []*kgo.Record, want []protocol.Reading) {
	t.Helper()
	got := map[protocol.Key]int{}
	part := map[string]int32{}
	for _, r := range recs {
		rec, err := protocol.DecodeRecord(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != rec.Device || rec.Gateway != "gw-1" {
			t.Errorf("record of %s from %s keyed %q", rec.Device, rec.Gateway, r.Key)
		}
		if p, ok := part[rec.Device]; ok && p != r.Partition {
			t.Errorf("%s on partitions %d and %d", rec.Device, p, r.Partition)
		}
		part[rec.Device] = r.Partition
		for i := range rec.Readings {
			got[rec.Readings[i].Key()]++
		}
	}
	bad := 0
	for i := range want {
		if got[want[i].Key()] != 1 {
			bad++
		}
	}
	if bad > 0 || len(got) != len(want) {
		t.Errorf("%d of %d readings not in the topic exactly once (%d distinct in the topic)", bad, len(want), len(got))
	}
}

func kafkaConfig(data, broker string) server.Config {
	return server.Config{Data: data, Stream: server.StreamConfig{Backend: server.BackendKafka,
		Kafka: server.KafkaConfig{Brokers: []string{broker}, Partitions: 3}}}
}

// The kafka backend: tributary-cloud creates the topics, the uplink's
// batches land in Kafka keyed by device, and a restart recognises resent
// batches.
func TestKafkaBackendServer(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{})
	data := t.TempDir()
	r := start(t, kafkaConfig(data, k.Addr), shardstore.Options{})
	if r.s.Store() != nil || r.s.KinesisAddr() != "" {
		t.Error("the kafka backend opened a local store or Kinesis API")
	}
	var h server.Health
	getJSON(t, "http://"+r.s.Addr()+"/healthz", &h)
	if h.Status != "ok" || h.Backend != "kafka" {
		t.Errorf("healthz %+v", h)
	}
	tok, _ := r.s.Tokens().Issue("gw-1")
	rs := readings(1500, 7, t0)
	ship(t, newSrc(rs), uplink.Config{URL: "http://" + r.s.Addr(), Token: tok})
	recs := readTopic(t, k.Addr, "telemetry")
	checkTopic(t, recs, rs)
	parts := map[int32]bool{}
	for _, rec := range recs {
		parts[rec.Partition] = true
	}
	if len(parts) < 2 {
		t.Errorf("7 devices on partitions %v of 3", parts)
	}
	body := get(t, "http://"+r.s.AdminAddr()+"/metrics")
	if !strings.Contains(body, `tributary_kafka_records_total{result="written"}`) {
		t.Error("/metrics lacks tributary_kafka_records_total")
	}

	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = start(t, kafkaConfig(data, k.Addr), shardstore.Options{})
	ship(t, newSrc(rs), uplink.Config{URL: "http://" + r.s.Addr(), Token: tok})
	checkTopic(t, readTopic(t, k.Addr, "telemetry"), rs)
}

package kafkabackend_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kafkabackend"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// TestKcatReads: kcat (librdkafka), an independent client, reads what Put
// wrote: device-id keys, each device on exactly one partition, values the
// protocol's decoder reads.
func TestKcatReads(t *testing.T) {
	kcat := testenv.Need(t, "kcat", "Debian package kcat")
	k := startKafka(t)
	b := newBackend(t, k, nil)
	var all []ingest.Entry
	for round := range 3 {
		es := entries(t, 25, round*10)
		all = append(all, es...)
		res, err := b.Put(context.Background(), "telemetry", es)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("entry %d: %v", i, r.Err)
			}
		}
	}
	// Keys and partitions first (%S is the value's size: no raw bytes).
	out, err := exec.Command(kcat, "-C", "-b", k.Addr, "-t", "telemetry", "-e", "-q", "-f", "%k %p %S\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	part := map[string]string{}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("kcat line %q", l)
		}
		if p, ok := part[f[0]]; ok && p != f[1] {
			t.Errorf("device %s on partitions %s and %s", f[0], p, f[1])
		}
		part[f[0]] = f[1]
		n++
	}
	if n != len(all) || len(part) != 25 {
		t.Errorf("kcat read %d records of %d devices, want %d of 25", n, len(part), len(all))
	}
	// Then the values, raw CBOR, framed by a delimiter no record holds.
	vals, err := exec.Command(kcat, "-C", "-b", k.Addr, "-t", "telemetry", "-e", "-q", "-f", "%k=%s\xff\xfe--tributary-record--\xfe\xff").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	readings := 0
	for _, v := range bytes.Split(vals, []byte("\xff\xfe--tributary-record--\xfe\xff")) {
		if len(v) == 0 {
			continue
		}
		key, data, _ := bytes.Cut(v, []byte("="))
		rec, err := protocol.DecodeRecord(data)
		if err != nil {
			t.Fatalf("kcat's value for %s does not decode: %v", key, err)
		}
		if rec.Device != string(key) || rec.Gateway != "gw-1" {
			t.Errorf("record keyed %s holds device %s of gateway %s", key, rec.Device, rec.Gateway)
		}
		readings += len(rec.Readings)
	}
	if readings != 3*len(all) {
		t.Errorf("%d readings decoded from kcat's output, want %d", readings, 3*len(all))
	}
}

// TestMurmur2Placement: Put places a key on the partition that Kafka's
// default partitioner picks, as computed by an independent implementation:
// librdkafka's murmur2_random (Java's murmur2, positive, modulo the
// partition count), through kcat producing the same keys to another topic.
func TestMurmur2Placement(t *testing.T) {
	kcat := testenv.Need(t, "kcat", "Debian package kcat")
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{"telemetry": 7, "java": 7}})
	b := newBackend(t, k, func(c *kafkabackend.Config) { c.Partitions = 7 })
	keys := []string{"a", "node-1", "node-2", "sensor:00:1A:7D", "gw-17.dev-4", "x", "the-quick-brown-fox", "ünïcode", "0", "dev-123456789"}
	for i := range 40 {
		keys = append(keys, fmt.Sprintf("dev-%d", i))
	}
	var in bytes.Buffer
	es := make([]ingest.Entry, len(keys))
	for i, key := range keys {
		es[i] = ingest.Entry{PartitionKey: key, Data: []byte("v")}
		fmt.Fprintf(&in, "%s\tv\n", key)
	}
	res, err := b.Put(context.Background(), "telemetry", es)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kcat, "-P", "-b", k.Addr, "-t", "java", "-K", "\t", "-X", "partitioner=murmur2_random")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	out, err := exec.Command(kcat, "-C", "-b", k.Addr, "-t", "java", "-e", "-q", "-f", "%k\t%p\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	java := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		key, p, _ := strings.Cut(l, "\t")
		java[key] = p
	}
	spread := map[string]bool{}
	for i, key := range keys {
		if res[i].Err != nil {
			t.Fatalf("%s: %v", key, res[i].Err)
		}
		if java[key] != res[i].ShardID {
			t.Errorf("key %q: partition %s, librdkafka's murmur2 says %q", key, res[i].ShardID, java[key])
		}
		spread[res[i].ShardID] = true
	}
	if len(spread) < 5 {
		t.Errorf("%d keys on only %d of 7 partitions", len(keys), len(spread))
	}
}

// javaPartitions are the partitions of 7 that Kafka's default partitioner
// gives these keys, as librdkafka's murmur2_random placed them (kcat -P -X
// partitioner=murmur2_random, 2026-12-08): TestMurmur2Placement checks the
// same live when kcat is installed.
var javaPartitions = map[string]string{
	"0": "3", "a": "5", "dev-0": "3", "dev-1": "1", "dev-123456789": "0", "dev-2": "4", "dev-3": "0",
	"gw-17.dev-4": "3", "node-1": "6", "node-2": "5", "sensor:00:1A:7D": "4", "the-quick-brown-fox": "1", "ünïcode": "6",
}

// TestJavaPartitions: Put places keys where Kafka's Java client would.
func TestJavaPartitions(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(7, "telemetry"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := kafkabackend.New(t.Context(), kafkabackend.Config{Brokers: c.ListenAddrs(), Partitions: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var es []ingest.Entry
	for k := range javaPartitions {
		es = append(es, ingest.Entry{PartitionKey: k, Data: []byte("v")})
	}
	res, err := b.Put(t.Context(), "telemetry", es)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := javaPartitions[es[i].PartitionKey]; r.Err != nil || r.ShardID != want {
			t.Errorf("key %q: partition %s (%v), Java's is %s", es[i].PartitionKey, r.ShardID, r.Err, want)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/verify"
)

func produceAll(t *testing.T, addr, topic string, rounds [][]types.PutRecordsRequestEntry) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, round := range rounds {
		rs := make([]*kgo.Record, len(round))
		for j, e := range round {
			rs[j] = &kgo.Record{Key: []byte(aws.ToString(e.PartitionKey)), Value: e.Data}
		}
		if err := cl.ProduceSync(t.Context(), rs...).FirstErr(); err != nil {
			t.Fatalf("produce round %d: %v", i, err)
		}
	}
}

// TestVerifyKafka: `tributary-sim verify -kafka` reads a Kafka topic of
// three partitions (franz-go's kfake as its own process) holding the same
// hand-made run as TestVerifyAgainstCloud, and finds exactly the lost and
// the duplicated reading; a clean topic passes.
func TestVerifyKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Kafka broker process")
	}
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{protocol.DefaultStream: 3, "alerts": 1, "clean": 2}})
	const devices, samples = 5, 20
	faulty := makeFleet(t, devices, samples, true)
	produceAll(t, k.Addr, protocol.DefaultStream, faulty.rounds)
	spike := faulty.truth[devices]
	b, _ := json.Marshal(verify.Alert{Device: "dev-0", Metric: "temperature", Time: spike.Start.Add(spike.End.Sub(spike.Start) / 2), Score: 0.9, Kind: "spike", Value: 33})
	produceAll(t, k.Addr, "alerts", [][]types.PutRecordsRequestEntry{{{Data: b, PartitionKey: aws.String("dev-0")}}})

	var stdout, stderr bytes.Buffer
	args := []string{"verify", "-kafka", k.Addr, "-truth", writeTruth(t, faulty.truth), "-alerts-stream", "alerts",
		"-settle", "1s", "-timeout", "60s", "-poll", "50ms", "-json"}
	if code := run(t.Context(), args, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1 (a reading lost and one duplicated)\nstderr: %s", code, stderr.String())
	}
	var rep verify.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output: %v\n%s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	want := verify.Counts{Expected: 300, Received: 300, Unique: 299, Lost: 1, Duplicated: 1}
	if rep.Totals != want {
		t.Errorf("totals %+v, want %+v", rep.Totals, want)
	}
	if !rep.Complete || rep.OK || rep.Health != 2 || rep.DecodeErrors != 0 || rep.KeyMismatches != 0 || rep.Read.Shards != 3 {
		t.Errorf("complete %v, ok %v, health %d, decode errors %d, key mismatches %d, partitions %d; want true, false, 2, 0, 0, 3",
			rep.Complete, rep.OK, rep.Health, rep.DecodeErrors, rep.KeyMismatches, rep.Read.Shards)
	}
	if a := rep.Alerts; a == nil || a.Alerts != 1 || a.Detected != 1 {
		t.Errorf("alerts: %+v", rep.Alerts)
	}

	clean := makeFleet(t, devices, samples, false)
	produceAll(t, k.Addr, "clean", clean.rounds)
	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), []string{"verify", "-kafka", k.Addr, "-stream", "clean", "-truth", writeTruth(t, clean.truth),
		"-settle", "1s", "-poll", "50ms"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "OK: nothing lost") {
		t.Errorf("clean topic: exit %d, want 0\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}

	// A topic that does not exist is an error, not an empty pass.
	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), []string{"verify", "-kafka", k.Addr, "-stream", "nosuch", "-truth", writeTruth(t, clean.truth),
		"-settle", "1s", "-timeout", "20s", "-poll", "50ms"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `kafka topic "nosuch" does not exist`) {
		t.Errorf("missing topic: exit %d, want 1\nstderr: %s", code, stderr.String())
	}
}

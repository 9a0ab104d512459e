package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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
	checkTopicOf(t, recs, want, map[string]bool{"gw-1": true})
}

func checkTopicOf(t *testing.T, recs []*kgo.Record, want []protocol.Reading, gateways map[string]bool) {
	t.Helper()
	got := map[protocol.Key]int{}
	part := map[string]int32{}
	for _, r := range recs {
		rec, err := protocol.DecodeRecord(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != rec.Device || !gateways[rec.Gateway] {
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
	exactlyOnce(t, got, want)
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

// TestKafkaCloudKill9: tributary-cloud, as its own process on the kafka
// backend, is killed with SIGKILL twice while four gateways upload; each
// restart reads the topic's tail back for the batches it was writing, so
// that the resent batches are acknowledged without duplicates in Kafka.
func TestKafkaCloudKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tributary-cloud and runs a broker process")
	}
	k := testenv.StartKafka(t, testenv.KafkaOptions{})
	bin := testenv.Binary(t, "./cloud/cmd/tributary-cloud")
	dir := t.TempDir()
	data, listen := filepath.Join(dir, "data"), testenv.FreeAddr(t)
	cfgFile := filepath.Join(dir, "cloud.yaml")
	cfg := fmt.Sprintf("data: %s\nlisten: %q\nkinesis_listen: \"off\"\nadmin:\n  listen: \"off\"\n"+
		"stream:\n  backend: kafka\n  kafka:\n    brokers: [%q]\n    partitions: 3\n", data, listen, k.Addr)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	const gateways, perGateway = 4, 3000
	tokens := make([]string, gateways)
	for g := range tokens {
		out, err := exec.Command(bin, "-data", data, "token", "issue", fmt.Sprintf("gw-%d", g)).Output()
		if err != nil {
			t.Fatalf("token issue: %v", err)
		}
		tokens[g] = strings.TrimSpace(string(out))
	}
	cloud := testenv.NewDaemon(t, dir, "tributary-cloud", bin, []string{"-config", cfgFile}, testenv.HTTPReady("http://"+listen+"/healthz"))
	cloud.Start()

	var want []protocol.Reading
	srcs := make([]*src, gateways)
	names := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for g := range srcs {
		rs := readings(perGateway, 5, t0)
		for i := range rs {
			rs[i].Device = fmt.Sprintf("g%d-%s", g, rs[i].Device)
		}
		want = append(want, rs...)
		srcs[g] = newSrc(rs)
		gw := fmt.Sprintf("gw-%d", g)
		names[gw] = true
		up, err := uplink.New(srcs[g], uplink.Config{URL: "http://" + listen, Gateway: gw, Token: tokens[g],
			MaxReadings: 50, MaxAge: 5 * time.Millisecond, Backoff: uplink.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = up.Run(ctx) })
	}
	remaining := func() int {
		n := 0
		for _, s := range srcs {
			n += s.remaining()
		}
		return n
	}
	for _, left := range []int{gateways * perGateway * 3 / 4, gateways * perGateway / 3} {
		testenv.WaitFor(t, "uploads to progress", 60*time.Second, func() bool { return remaining() <= left })
		cloud.Kill9()
		cloud.Start()
	}
	testenv.WaitFor(t, "every reading acknowledged", 90*time.Second, func() bool { return remaining() == 0 })
	cancel()
	wg.Wait()
	checkTopicOf(t, readTopic(t, k.Addr, "telemetry"), want, names)
	logs, _ := os.ReadFile(cloud.Log)
	t.Logf("restarts that found batches in the crash window and read the topic's tail back: %d",
		strings.Count(string(logs), "stream tail read back"))
}

// TestKafkaBackPressure: a broker refusing writes (NOT_ENOUGH_REPLICAS, as
// when too few replicas are in sync) reaches the gateway as 429 or 503
// with Retry-After, nothing is acknowledged, and the resend after the
// broker recovered is stored once; so is one after writes went
// unanswered.
func TestKafkaBackPressure(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{})
	r := start(t, kafkaConfig(t.TempDir(), k.Addr), shardstore.Options{})
	tok, _ := r.s.Tokens().Issue("gw-1")
	url := "http://" + r.s.Addr()
	rs := readings(300, 6, t0)
	k.Fault(0, kerr.NotEnoughReplicas.Code, -1, "telemetry")
	code, retry := sendBatch(t, url, tok, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: 1, Readings: rs})
	if (code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable) || retry == "" {
		t.Errorf("while the broker refuses: HTTP %d, Retry-After %q; want 429 or 503 with Retry-After", code, retry)
	}
	k.ClearFaults()
	if code, _ := sendBatch(t, url, tok, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: 1, Readings: rs}); code != http.StatusOK {
		t.Fatalf("after the broker recovered: HTTP %d", code)
	}

	// Unanswered writes (REQUEST_TIMED_OUT: the broker may have appended
	// them) are never acknowledged: 503. The producer finishes them once
	// the broker answers, and the gateway's resend is acknowledged without
	// a second copy.
	more := readings(300, 6, t0.Add(time.Hour))
	k.Fault(0, kerr.RequestTimedOut.Code, -1, "telemetry")
	batch := &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: 301, Readings: more}
	if code, retry := sendBatch(t, url, tok, batch); code != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("while writes go unanswered: HTTP %d, Retry-After %q; want 503 with Retry-After", code, retry)
	}
	k.ClearFaults()
	testenv.WaitFor(t, "the resend to be acknowledged", 30*time.Second, func() bool {
		code, _ := sendBatch(t, url, tok, batch)
		return code == http.StatusOK
	})
	checkTopic(t, readTopic(t, k.Addr, "telemetry"), append(rs, more...))
}

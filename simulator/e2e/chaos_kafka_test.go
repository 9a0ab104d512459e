package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// TestChaosKafka is the chaos run on the kafka backend: sim → agent →
// tributary-cloud (stream.backend kafka) → a Kafka broker process
// (franz-go's kfake with a data folder and fsynced writes, not a real
// Kafka). The cloud is killed with SIGKILL twice, the broker once (and
// started again on its data), and the broker is then down for longer than
// the cloud's Kafka request and upload timeouts; `tributary-sim verify
// -kafka` must find every published reading in the topic exactly once and
// each device's readings in order, and the dashboard (the monitor's
// consumer group) must have followed the topic throughout.
func TestChaosKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: runs the whole system for about a minute and a half")
	}
	dir := t.TempDir()
	simBin := bin(t, "tributary-sim")

	// The broker, with the topics, stopped cleanly once so that their
	// metadata survives a SIGKILL.
	k := testenv.StartKafka(t, testenv.KafkaOptions{Topics: map[string]int32{"telemetry": 4, "alerts": 1}})
	k.Restart()

	// The cloud on the kafka backend, with short Kafka timeouts.
	const requestTimeout = 2 * time.Second
	cfgPath := filepath.Join(dir, "cloud.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `stream:
  backend: kafka
  kafka:
    brokers: [%q]
    partitions: 4
    dial_timeout: 1s
    request_timeout: %s
ingest:
  put_timeout: 5s
`, k.Addr, requestTimeout), 0o600); err != nil {
		t.Fatal(err)
	}
	cloud := startCloud(t, dir, "gw-kafka", "-config", cfgPath)
	link := newProxy(t, cloud.addr)
	// The agent uploads first in, first out (one request at a time, the
	// backlog before fresh readings), so that each device's readings reach
	// the cloud in the order they were published: any disorder in the
	// topic is then the cloud's or the Kafka path's. (By default the agent
	// sends fresh readings beside a draining backlog, which puts a device's
	// readings out of order in the stream after an outage, on every
	// backend.)
	agent, mqttAddr, health := startChaosAgent(t, dir, "gw-kafka", link.addr, cloud.token, "  max_in_flight: 1\n  backlog_share: 1\n")
	truth, simProc, simLog := startFleet(t, dir, simBin, mqttAddr, "60s")

	var log []interruption
	down := func(what string, stop, start func(), d time.Duration) {
		began := time.Now()
		stop()
		time.Sleep(d) // how long it stays down: deliberate
		start()
		end := time.Now()
		log = append(log, interruption{what: what, lasted: end.Sub(began), recovery: waitDrained(t, health, end)})
	}
	devicesOnDashboard := func() int {
		var ov struct{ Devices struct{ Total int } }
		getJSON("http://"+cloud.adminAddr+"/api/v1/overview", &ov)
		return ov.Devices.Total
	}

	testenv.WaitFor(t, "all 40 devices on the dashboard (read from Kafka)", 60*time.Second, func() bool { return devicesOnDashboard() == 40 })
	restartCloud, restartBroker := func() { cloud.Start() }, func() { k.Start() }
	down("kill -9 cloud", cloud.Kill9, restartCloud, 500*time.Millisecond)
	// The broker's SIGKILL comes while the cloud has nothing in flight to
	// it: the uplink is cut first, and the kill waits until the cloud has
	// no ingest request in progress and no record in its producer. kfake,
	// unlike Kafka, keeps its idempotent producers' sequence state only at
	// a clean stop, so a produce request it appended (and fsynced) just
	// before a SIGKILL but did not answer would be appended again when the
	// producer retries it: a duplicate of the test broker's making, which a
	// real broker (it rebuilds that state from its log) does not make.
	// cloud/kafkabackend's TestBrokerKilledMidWrite covers the SIGKILL in
	// the middle of writes, and says which entries kfake duplicates there.
	down("kill -9 kafka broker", func() {
		link.cut()
		metrics := "http://" + cloud.adminAddr + "/metrics"
		idle := 0 // consecutive looks: a request read just before the cut shows on the next
		testenv.WaitFor(t, "the cloud idle towards the broker (no ingest request, no buffered record)", 30*time.Second, func() bool {
			if metricValue(metrics, "tributary_ingest_requests_in_flight") == 0 &&
				metricValue(metrics, "tributary_kafka_buffered_records") == 0 {
				idle++
			} else {
				idle = 0
			}
			return idle >= 2
		})
		k.Kill9()
	}, func() { k.Start(); link.restore() }, time.Second)
	down("kill -9 cloud", cloud.Kill9, restartCloud, 2*time.Second)
	// Longer than the request timeout, the ingest's put timeout and the
	// agent's upload timeout (5 s): uploads fail until the broker is back.
	// Last, so that the cloud's counters below cover it.
	down("kafka broker down 12s", k.Stop, restartBroker, 12*time.Second)
	if cloud.Kills() != 2 || k.Kills() != 1 {
		t.Fatalf("kills: cloud %d, broker %d, want 2 and 1", cloud.Kills(), k.Kills())
	}

	fleetDone(t, simProc, simLog, health)
	agent.Stop()
	logCounters(t, "http://"+cloud.adminAddr+"/metrics", "tributary_ingest_possible_duplicate", "tributary_ingest_recovered", "tributary_ingest_live_recover",
		"tributary_ingest_uncertain", "tributary_kafka_records_total", "tributary_kafka_joined_total")
	rep := runVerify(t, simBin, truth, "-kafka", k.Addr)
	logInterruptions(t, log, rep, "TRIBUTARY_CHAOS_KAFKA_REPORT")
	tot := rep.Result.Totals
	if tot.Expected == 0 || tot.Lost != 0 || tot.Duplicated != 0 || tot.Unexpected != 0 || tot.OutOfOrder != 0 {
		t.Errorf("lost %d, duplicated %d, unexpected %d, out of order %d of %d expected readings: want none",
			tot.Lost, tot.Duplicated, tot.Unexpected, tot.OutOfOrder, tot.Expected)
	}
	if rep.Result.Health == 0 {
		t.Error("no gateway health readings in the topic")
	}
	if n := devicesOnDashboard(); n != 40 {
		t.Errorf("dashboard after the run: %d devices, want 40", n)
	}

	// The monitor's consumer group followed the topic to its end through
	// the broker's SIGKILL and outage and the cloud's kills.
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var lag map[int32]int64
	if !testenv.Poll(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, "telemetry")
		if err != nil {
			return false
		}
		got, err := adm.FetchOffsets(ctx, "tributary-monitor")
		if err != nil {
			return false
		}
		lag = map[int32]int64{}
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := got.Lookup("telemetry", e.Partition); !ok || o.At != e.Offset {
				lag[e.Partition] = e.Offset - o.At
			}
		})
		return len(lag) == 0
	}) {
		t.Errorf("the tributary-monitor group did not commit the end of every partition: records behind by partition %v", lag)
	}
}

// metricValue returns the value of the unlabelled metric name in the
// Prometheus text at url, or -1 when it cannot be read.
func metricValue(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// logCounters logs the lines of the Prometheus text at url that start
// with one of the prefixes (how the run went, for whoever reads a failure).
func logCounters(t *testing.T, url string, prefixes ...string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sb strings.Builder
	for line := range strings.Lines(string(body)) {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				sb.WriteString(line)
			}
		}
	}
	t.Logf("cloud counters since its last start:\n%s", sb.String())
}

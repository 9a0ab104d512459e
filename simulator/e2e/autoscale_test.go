package e2e_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// autoscaleStatus is the part of GET /api/v1/autoscale the test reads.
type autoscaleStatus struct {
	Decisions []struct {
		Time   time.Time `json:"time"`
		Action string    `json:"action"`
		From   int       `json:"from_shards"`
		To     int       `json:"to_shards"`
		Reason string    `json:"reason"`
		Error  string    `json:"error"`
	} `json:"decisions"`
}

// Load ramp of TestAutoscaleRamp. The embedded store enforces per-shard
// write limits like Kinesis, but lowered (stream.write_records_per_sec) so
// that a 2-core machine can offer ten shards' worth: a shard takes
// shardRecords records/s instead of Kinesis's 1,000. A stream record is
// one device's readings of one agent batch, so a device sampling once a
// second makes about one record a second.
const (
	shardRecords = 20
	baseDevices  = 20 // ~20 records/s: half of the 2 starting shards
	rampSteps    = 3  // +60 devices each: 200 devices, ten times the base
	rampDevices  = 60
	rampEvery    = 15 * time.Second
	rampHold     = 35 * time.Second // at the peak
	baseRun      = 140 * time.Second
)

// TestAutoscaleRamp is the autoscaler's load ramp through the real system
// (tributary-sim → tributary-agent → tributary-cloud on the embedded store,
// write limits enforced): the stream starts at 2 shards, the offered load
// rises tenfold within 45 s (three steps), the autoscaler adds shards
// until nothing is throttled, and when the load drops it scales back down
// after stream.autoscale.scale_down_delay (15 s here). The verifier then
// finds every reading exactly once and in order per device across the
// splits and merges.
func TestAutoscaleRamp(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: runs the whole system for about two and a half minutes")
	}
	dir := t.TempDir()
	agentBin, simBin := bin(t, "tributary-agent"), bin(t, "tributary-sim")
	cloudCfg := filepath.Join(dir, "cloud.yaml")
	writeFile(t, cloudCfg, fmt.Sprintf(`stream:
  shards: 2
  write_records_per_sec: %d
  autoscale:
    enabled: true
    min_shards: 2
    max_shards: 32
    target_utilisation: 0.6
    scale_down_delay: 15s
    cooldown: 4s
    interval: 2s
`, shardRecords))
	cloud := startCloud(t, dir, "gw-ramp", "-config", cloudCfg)
	admin := "http://" + cloud.adminAddr

	// The agent uploads first in, first out (one request at a time, the
	// backlog before fresh readings), as in TestChaosKafka: a batch the
	// throttled stream answers with 429 is then resent before anything
	// newer, so any disorder the verifier finds is the stream's (its
	// splits and merges), which is what this test is about. With the
	// default uplink, fresh readings travel beside a throttled backlog and
	// a device's readings can land out of order on any backend.
	agentHTTP, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	agentCfg := filepath.Join(dir, "agent.yaml")
	writeFile(t, agentCfg, fmt.Sprintf(`gateway: gw-ramp
data: %s
listen: %q
log_level: warn
mqtt:
  listen: %q
cloud:
  url: http://%s
  token: %q
  batch_age: 200ms
  max_in_flight: 1
  backlog_share: 1
`, filepath.Join(dir, "agent"), agentHTTP, mqttAddr, cloud.addr, cloud.token))
	agent := testenv.NewDaemon(t, dir, "agent", agentBin, []string{"-config", agentCfg},
		func() bool { return httpOK("http://" + agentHTTP + "/healthz") })
	agent.Start()

	var truths []string
	var sims []*testenv.Proc
	fleet := func(name string, devices int, d time.Duration) {
		truth := filepath.Join(dir, name+".truth.jsonl")
		simLog, _ := os.Create(filepath.Join(dir, name+".log"))
		cmd := exec.Command(simBin, "-broker", "tcp://"+mqttAddr, "-devices", strconv.Itoa(devices), "-rate", "1",
			"-duration", d.String(), "-seed", strconv.Itoa(len(truths)+1), "-prefix", name+"-", "-truth", truth, "-connect-rate", "20")
		cmd.Stdout, cmd.Stderr = simLog, simLog
		truths = append(truths, truth)
		sims = append(sims, testenv.Start(t, cmd))
	}
	began := time.Now()
	fleet("base", baseDevices, baseRun)
	testenv.WaitFor(t, "readings in the stream", 60*time.Second, func() bool { return shardMetric(admin, "incoming_records_total") > 0 })
	time.Sleep(6 * time.Second) // three of the autoscaler's measurements at the base load: deliberate
	var st autoscaleStatus
	if err := getJSON(admin+"/api/v1/autoscale", &st); err != nil || len(st.Decisions) != 0 || openShards(admin) != 2 {
		t.Fatalf("at the base load: %d open shards, decisions %+v (%v): want the 2 shards it started with, untouched", openShards(admin), st.Decisions, err)
	}
	peakEnd := time.Now().Add(rampSteps*rampEvery + rampHold)
	for i := range rampSteps {
		fleet(fmt.Sprintf("ramp%d", i+1), rampDevices, time.Until(peakEnd))
		if i+1 < rampSteps {
			time.Sleep(rampEvery) // the ramp's pace: deliberate
		}
	}

	// At the peak: shards are added until a 6 s window passes without a
	// throttled record.
	settled, lastThrottles, peakShards := false, shardMetric(admin, "write_provisioned_throughput_exceeded_total"), 0
	for !settled && time.Now().Before(peakEnd.Add(-5*time.Second)) {
		time.Sleep(6 * time.Second) // the measuring window: deliberate
		th := shardMetric(admin, "write_provisioned_throughput_exceeded_total")
		peakShards = max(peakShards, openShards(admin))
		settled = th == lastThrottles && peakShards >= 10
		lastThrottles = th
	}
	t.Logf("peak: %d open shards after %v; throttled records so far %v", peakShards, time.Since(began).Round(time.Second), lastThrottles)
	if !settled {
		t.Errorf("throttling did not stop at the peak load (open shards %d)", peakShards)
	}

	// The load drops back to the base: the stream scales down after the delay.
	dropped := peakEnd
	testenv.WaitFor(t, "a scale-down after the load dropped", baseRun-time.Since(began)+10*time.Second, func() bool {
		return openShards(admin) < peakShards
	})
	downAt := time.Now()
	if err := getJSON(admin+"/api/v1/autoscale", &st); err != nil {
		t.Fatal(err)
	}
	var ups, downs int
	var sb strings.Builder
	for _, d := range st.Decisions {
		fmt.Fprintf(&sb, "%6.1fs %-18s %2d -> %2d %s %s\n", d.Time.Sub(began).Seconds(), d.Action, d.From, d.To, d.Reason, d.Error)
		switch {
		case d.Error != "":
			t.Errorf("failed reshard: %+v", d)
		case d.Action != "hold" && d.To > d.From:
			ups++
		case d.Action != "hold" && d.To < d.From:
			downs++
			if d.Time.Sub(dropped) < 15*time.Second {
				t.Errorf("scaled down %v after the load dropped, before the 15 s scale_down_delay", d.Time.Sub(dropped))
			}
		}
	}
	t.Logf("decisions:\n%s", sb.String())
	if ups == 0 || downs == 0 {
		t.Errorf("%d scale-ups and %d scale-downs; want both", ups, downs)
	}
	t.Logf("scaled down %v after the load dropped", downAt.Sub(dropped).Round(time.Second))

	for _, p := range sims {
		select {
		case <-p.Done():
		case <-time.After(baseRun):
			t.Fatal("tributary-sim did not finish")
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("tributary-sim: %v", err)
		}
	}
	agent.Stop()
	verifyAll(t, dir, simBin, cloud.kinesisAddr, truths)
}

// verifyAll runs tributary-sim verify over the stream against the union of
// the fleets' truth files (their device ids differ by prefix): nothing
// lost, duplicated or out of order.
func verifyAll(t *testing.T, dir, simBin, kinesisAddr string, truths []string) {
	t.Helper()
	var all bytes.Buffer
	for _, p := range truths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	truth := filepath.Join(dir, "truth.jsonl")
	writeFile(t, truth, all.String())
	rep := runVerify(t, simBin, truth, "-endpoint", "http://"+kinesisAddr, "-timeout", "2m")
	tot := rep.Result.Totals
	t.Logf("verify: expected %d, received %d, unique %d, lost %d, duplicated %d, unexpected %d, out of order %d",
		tot.Expected, tot.Received, tot.Unique, tot.Lost, tot.Duplicated, tot.Unexpected, tot.OutOfOrder)
	if tot.Expected == 0 || tot.Lost != 0 || tot.Duplicated != 0 || tot.Unexpected != 0 || tot.OutOfOrder != 0 {
		t.Errorf("verify: lost %d, duplicated %d, unexpected %d, out of order %d of %d expected: want none",
			tot.Lost, tot.Duplicated, tot.Unexpected, tot.OutOfOrder, tot.Expected)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// shardMetric sums tributary_stream_shard_NAME over every shard of the
// telemetry stream on /metrics (-1 when unreachable).
func shardMetric(admin, name string) float64 {
	return sumMetric(admin, "tributary_stream_shard_"+name+"{")
}

// openShards is tributary_stream_open_shards of the telemetry stream.
func openShards(admin string) int {
	return int(sumMetric(admin, "tributary_stream_open_shards{"))
}

func sumMetric(admin, prefix string) float64 {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, `stream="telemetry"`) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

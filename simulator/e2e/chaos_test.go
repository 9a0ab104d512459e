// Package e2e_test runs the whole system as separate processes — the
// simulator's fleet, a tributary-agent with its embedded broker and a
// tributary-cloud with the embedded store — and checks it end to end
// with tributary-sim verify.
package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// agentHealth is the part of the agent's /healthz the test reads.
type agentHealth struct {
	Queue struct {
		Depth            int64   `json:"depth"`
		FileBytes        int64   `json:"file_bytes"`
		QuotaBytes       int64   `json:"quota_bytes"`
		OldestUnsentSecs float64 `json:"oldest_unsent_seconds"`
		Dropped          uint64  `json:"dropped"`
		Blocked          bool    `json:"blocked"`
	} `json:"queue"`
}

// verifyReport is the part of `tributary-sim verify -json` the test reads.
type verifyReport struct {
	OK       bool `json:"ok"`
	Complete bool `json:"complete"`
	Result   struct {
		Totals struct {
			Expected, Received, Unique, Lost, Duplicated, Unexpected uint64
			OutOfOrder                                               uint64 `json:"out_of_order"`
		} `json:"totals"`
		Health  uint64 `json:"health_readings"`
		Latency struct {
			P50Ms float64 `json:"p50_ms"`
			P99Ms float64 `json:"p99_ms"`
			MaxMs float64 `json:"max_ms"`
		} `json:"latency"`
	}
}

// interruption is one fault the chaos schedule injects.
type interruption struct {
	what     string
	lasted   time.Duration // from the fault to the end of it (restart done, link restored)
	recovery time.Duration // from the end of it until the agent's backlog drained
}

// TestChaos: during a simulator run the agent and the cloud are each
// killed with SIGKILL three times, the uplink is cut twice through a TCP
// proxy, the second time until the agent's queue quota is full (policy
// block); the verifier must then find every published reading in the
// stream exactly once.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: runs the whole system for about two minutes")
	}
	dir := t.TempDir()
	simBin := bin(t, "tributary-sim")

	// The cloud.
	cloud := startCloud(t, dir, "gw-chaos")
	cloudAddr, kinAddr, adminAddr, token := cloud.addr, cloud.kinesisAddr, cloud.adminAddr, cloud.token
	link := newProxy(t, cloudAddr)

	// The agent, with its embedded broker, uploading through the proxy.
	agent, mqttAddr, health := startChaosAgent(t, dir, "gw-chaos", link.addr, token, "")

	// The fleet: 40 devices, 10 samples/s each, for long enough to cover
	// the schedule.
	truth, simProc, simLog := startFleet(t, dir, simBin, mqttAddr, "70s")
	drained := func(since time.Time) time.Duration { return waitDrained(t, health, since) }
	var log []interruption
	kill := func(p *testenv.Daemon, down time.Duration) {
		began := time.Now()
		p.Kill9()
		time.Sleep(down) // how long it stays down: deliberate
		p.Start()
		end := time.Now()
		log = append(log, interruption{what: "kill -9 " + p.Name, lasted: end.Sub(began), recovery: drained(end)})
	}
	cut := func(until func() bool, max time.Duration, what string) {
		began := time.Now()
		link.cut()
		testenv.Poll(max, until)
		link.restore()
		end := time.Now()
		log = append(log, interruption{what: what, lasted: end.Sub(began), recovery: drained(end)})
	}

	// Readings of every device flow end to end before the first fault.
	testenv.WaitFor(t, "all 40 devices on the dashboard", 60*time.Second, func() bool {
		var ov struct{ Devices struct{ Total int } }
		return getJSON("http://"+adminAddr+"/api/v1/overview", &ov) == nil && ov.Devices.Total == 40
	})
	kill(agent, 500*time.Millisecond)
	kill(cloud.Daemon, 500*time.Millisecond)
	cut(func() bool { return false }, 5*time.Second, "uplink cut 5s")
	kill(agent, 0)
	kill(cloud.Daemon, 2*time.Second)
	quotaFull := false
	cut(func() bool {
		if health().Queue.Blocked {
			quotaFull = true
			time.Sleep(3 * time.Second) // stay full a while, producers waiting: deliberate
			return true
		}
		return false
	}, 60*time.Second, "uplink cut until the queue quota is full")
	kill(agent, time.Second)
	kill(cloud.Daemon, 0)
	if !quotaFull {
		t.Error("the queue quota never filled during the long cut: the test did not exercise the block policy")
	}
	if agent.Kills() != 3 || cloud.Kills() != 3 {
		t.Fatalf("kills: agent %d, cloud %d, want 3 each", agent.Kills(), cloud.Kills())
	}

	fleetDone(t, simProc, simLog, health)

	// Stop the agent (its health readings would keep the stream busy),
	// then the verdict.
	agent.Stop()
	rep := runVerify(t, simBin, truth, "-endpoint", "http://"+kinAddr)
	tot := rep.Result.Totals
	logInterruptions(t, log, rep, "TRIBUTARY_CHAOS_REPORT")
	if tot.Expected == 0 || tot.Lost != 0 || tot.Duplicated != 0 || tot.Unexpected != 0 {
		t.Errorf("lost %d, duplicated %d, unexpected %d of %d expected readings: want none lost, duplicated or unexpected",
			tot.Lost, tot.Duplicated, tot.Unexpected, tot.Expected)
	}
	if rep.Result.Health == 0 {
		t.Error("no gateway health readings in the stream")
	}

	// The dashboard's monitor consumer followed the stream across the
	// cloud's restarts.
	var ov struct {
		Devices struct{ Total int }
	}
	if err := getJSON("http://"+adminAddr+"/api/v1/overview", &ov); err != nil || ov.Devices.Total != 40 {
		t.Errorf("dashboard overview: %+v, %v: want 40 devices", ov, err)
	}
}

// startChaosAgent starts tributary-agent with its embedded broker, a 1 MiB
// queue quota (policy block) and fast batches, uploading to cloudAddr
// (cloudExtra: more settings of the cloud section, indented); it returns
// the agent, its MQTT address and a reader of its /healthz.
func startChaosAgent(t *testing.T, dir, gateway, cloudAddr, token, cloudExtra string) (*testenv.Daemon, string, func() agentHealth) {
	t.Helper()
	agentHTTP, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg := fmt.Sprintf(`gateway: %s
data: %s
listen: %q
log_level: warn
mqtt:
  listen: %q
queue:
  max_bytes: 1MiB
  policy: block
cloud:
  url: http://%s
  token: %q
  batch_age: 200ms
  timeout: 5s
%shealth:
  every: 1s
`, gateway, filepath.Join(dir, "agent"), agentHTTP, mqttAddr, cloudAddr, token, cloudExtra)
	cfgPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := testenv.NewDaemon(t, dir, "agent", bin(t, "tributary-agent"), []string{"-config", cfgPath},
		func() bool { return httpOK("http://" + agentHTTP + "/healthz") })
	agent.Start()
	return agent, mqttAddr, func() (h agentHealth) {
		getJSON("http://"+agentHTTP+"/healthz", &h) // 503 while failing still has the body
		return h
	}
}

// runVerify runs `tributary-sim verify -json` on truth with the source
// flags (-endpoint URL or -kafka BROKERS) and returns its report.
func runVerify(t *testing.T, simBin, truth string, source ...string) verifyReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append([]string{"verify", "-truth", truth, "-json", "-settle", "3s", "-timeout", "3m", "-progress", "0"}, source...)
	v := exec.Command(simBin, args...)
	v.Stdout, v.Stderr = &stdout, &stderr
	verr := v.Run()
	var rep verifyReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("verify: %v, %v; stderr:\n%s", verr, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep.Result); err != nil {
		t.Fatal(err)
	}
	if !rep.Complete {
		t.Errorf("verify did not read the stream to its end; stderr:\n%s", stderr.String())
	}
	tot := rep.Result.Totals
	t.Logf("verify: expected %d, received %d, unique %d, lost %d, duplicated %d, unexpected %d, out of order %d; health readings %d; latency p50 %.0f ms, p99 %.0f ms, max %.0f ms",
		tot.Expected, tot.Received, tot.Unique, tot.Lost, tot.Duplicated, tot.Unexpected, tot.OutOfOrder,
		rep.Result.Health, rep.Result.Latency.P50Ms, rep.Result.Latency.P99Ms, rep.Result.Latency.MaxMs)
	return rep
}

// logInterruptions logs the chaos schedule's table, and writes it with
// the verdict to the file named by the environment variable env, if set.
func logInterruptions(t *testing.T, log []interruption, rep verifyReport, env string) {
	t.Helper()
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-44s %10s %10s\n", "interruption", "lasted", "recovery")
	for _, i := range log {
		fmt.Fprintf(&sb, "%-44s %10s %10s\n", i.what, i.lasted.Round(10*time.Millisecond), i.recovery.Round(10*time.Millisecond))
	}
	t.Logf("interruptions (recovery: until the agent's backlog drained):\n%s", sb.String())
	if p := os.Getenv(env); p != "" {
		os.WriteFile(p, []byte(sb.String()+fmt.Sprintf("\nverify: %+v\n", rep.Result)), 0o644)
	}
}

// startFleet runs tributary-sim: 40 devices at 10 samples/s for duration,
// publishing to the agent's broker; it returns the truth file, the
// process and its log.
func startFleet(t *testing.T, dir, simBin, mqttAddr, duration string) (truth string, p *testenv.Proc, log *os.File) {
	t.Helper()
	truth, summary := filepath.Join(dir, "truth.jsonl"), filepath.Join(dir, "summary.json")
	log, err := os.Create(filepath.Join(dir, "sim.log"))
	if err != nil {
		t.Fatal(err)
	}
	sim := exec.Command(simBin, "-broker", "tcp://"+mqttAddr, "-devices", "40", "-rate", "10", "-duration", duration,
		"-seed", "7", "-truth", truth, "-summary", summary, "-stats-every", "10s")
	sim.Stdout, sim.Stderr = log, log
	return truth, testenv.Start(t, sim), log
}

// waitDrained waits until the agent's backlog is back to normal and
// returns the time since since.
func waitDrained(t *testing.T, health func() agentHealth, since time.Time) time.Duration {
	t.Helper()
	if !testenv.Poll(90*time.Second, func() bool {
		h := health()
		return h.Queue.OldestUnsentSecs < 2 && !h.Queue.Blocked
	}) {
		t.Errorf("the agent's backlog did not drain within 90s")
	}
	return time.Since(since)
}

// fleetDone waits for the simulator to finish and the agent's queue to
// empty, with nothing dropped.
func fleetDone(t *testing.T, sim *testenv.Proc, simLog *os.File, health func() agentHealth) {
	t.Helper()
	select {
	case <-sim.Done():
		if err := sim.Wait(); err != nil {
			t.Fatalf("tributary-sim: %v (log %s)", err, simLog.Name())
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("tributary-sim did not finish")
	}
	testenv.Poll(60*time.Second, func() bool { return health().Queue.Depth == 0 })
	if h := health(); h.Queue.Depth > 0 || h.Queue.Dropped > 0 {
		t.Fatalf("agent queue after the run: depth %d, dropped %d: want 0 and 0", h.Queue.Depth, h.Queue.Dropped)
	}
}

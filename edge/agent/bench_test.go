package agent_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/edge/agent"
	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// BenchmarkIntakeEmbedded measures durable intake through the whole agent:
// paho publishers send SenML-CBOR packs of 10 readings with QoS 1 to the
// embedded broker; a publish completes only after its readings are
// committed (fsync). The uplink runs too, shipping to a fake cloud. The
// baseline, measured in the same run, is raw bbolt: one goroutine
// committing 1,000 pre-encoded 200-byte records per fsynced transaction.
//
//	go test -run '^$' -bench IntakeEmbedded -benchtime 200000x ./edge/agent
func BenchmarkIntakeEmbedded(b *testing.B) {
	const perPack, clients, window = 10, 32, 64
	baseline := rawBoltRate(b, 2*time.Second)

	cloud := uplinktest.NewServer(b, uplinktest.Options{})
	cfg := agent.Config{Gateway: "gw-bench", Data: b.TempDir(), Listen: "127.0.0.1:0",
		MQTT:  agent.MQTTConfig{Listen: "127.0.0.1:0", MaxInFlight: 4096},
		Cloud: agent.CloudConfig{URL: cloud.URL(), Token: "t"}, Health: agent.HealthConfig{Every: -1}}
	a, err := agent.New(cfg, agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	packs := b.N / perPack
	if packs < clients {
		packs = clients
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	conns := make([]mqtt.Client, clients)
	for c := range conns {
		opts := mqtt.NewClientOptions().AddBroker("tcp://" + a.MQTTAddr()).SetClientID(fmt.Sprintf("bench-%d", c)).
			SetMaxResumePubInFlight(window).SetWriteTimeout(10 * time.Second)
		conns[c] = mqtt.NewClient(opts)
		if tok := conns[c].Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect: %v", tok.Error())
		}
	}
	t0 := time.Now().UnixMicro()
	b.ResetTimer()
	start := time.Now()
	for c := range conns {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			dev := fmt.Sprintf("dev-%03d", c)
			topic := protocol.TelemetryTopic(dev)
			rs := make([]protocol.Reading, perPack)
			var buf []byte
			inflight := make([]mqtt.Token, 0, window)
			for {
				n := next.Add(1)
				if n > int64(packs) {
					break
				}
				for i := range rs {
					rs[i] = protocol.Reading{Name: "m" + strconv.Itoa(i), Unit: "Cel", Kind: protocol.KindFloat,
						Value: 20 + float64(n%1000)/100, Time: t0 + n*1000}
				}
				buf = protocol.AppendSenMLCBOR(buf[:0], rs, nil)
				inflight = append(inflight, conns[c].Publish(topic, 1, false, append([]byte(nil), buf...)))
				if len(inflight) == window {
					waitTok(b, inflight[0])
					inflight = inflight[1:]
				}
			}
			for _, tok := range inflight {
				waitTok(b, tok)
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	for _, c := range conns {
		c.Disconnect(0)
	}
	rate := float64(packs*perPack) / elapsed.Seconds()
	st := a.Queue().Stats()
	b.ReportMetric(rate, "readings/s")
	b.ReportMetric(baseline, "rawbolt-records/s")
	b.ReportMetric(rate/baseline, "ratio")
	b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "readings/commit")
	b.ReportMetric(0, "ns/op")
}

func waitTok(b *testing.B, tok mqtt.Token) {
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		b.Fatalf("publish: %v", tok.Error())
	}
}

// rawBoltRate is the baseline: records/s of one goroutine committing 1,000
// pre-encoded 200-byte records per fsynced bbolt transaction.
func rawBoltRate(tb testing.TB, d time.Duration) float64 {
	db, err := bolt.Open(filepath.Join(tb.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 200)
	var seq uint64
	start := time.Now()
	for time.Since(start) < d {
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("e"))
			if err != nil {
				return err
			}
			bk.FillPercent = 1
			var k [8]byte
			for i := 0; i < 1000; i++ {
				seq++
				binary.BigEndian.PutUint64(k[:], seq)
				if err := bk.Put(k[:], val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return float64(seq) / time.Since(start).Seconds()
}

// BenchmarkAgentFootprint runs the agent binary (embedded broker, uplink
// to a fake cloud) under a steady 10,000 readings/s from tributary-sim
// (1,000 devices × 3.34 BME280 samples/s × 3 readings; FOOTPRINT_DEVICES=N
// spreads the same rate over N devices) for 30 s and reports
// the agent's CPU (cores) and peak RSS, read from /proc.
//
//	go test -run '^$' -bench AgentFootprint -benchtime 1x ./edge/agent
func BenchmarkAgentFootprint(b *testing.B) {
	agentBin, simBin := binaries(b)
	cloud := uplinktest.NewServer(b, uplinktest.Options{})
	dir := b.TempDir()
	mqttAddr, health := testenv.FreeAddr(b), testenv.FreeAddr(b)
	cmd := exec.Command(agentBin, "-data", filepath.Join(dir, "data"), "-gateway", "gw-bench", "-cloud", cloud.URL(),
		"-token", "t", "-listen", health, "-mqtt-listen", mqttAddr, "-log-level", "error", "-pprof", os.Getenv("FOOTPRINT_PPROF"))
	cmd.Stderr = os.Stderr
	agentProc := testenv.Start(b, cmd)
	defer agentProc.Stop(30 * time.Second)
	testenv.WaitFor(b, "the agent's /healthz", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + health + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	const dur = 30 * time.Second
	devices, rate := 1000, 3.34
	if v, err := strconv.Atoi(os.Getenv("FOOTPRINT_DEVICES")); err == nil && v > 0 {
		devices, rate = v, 10_020/3/float64(v)
	}
	sim := exec.Command(simBin, "-broker", "tcp://"+mqttAddr, "-devices", strconv.Itoa(devices), "-rate", strconv.FormatFloat(rate, 'f', 3, 64),
		"-duration", (dur + 10*time.Second).String(), "-stats-every", "0")
	testenv.Start(b, sim)        // killed when the benchmark ends
	time.Sleep(10 * time.Second) // ramp-up: deliberate
	c0, n0 := cpuSeconds(b, cmd.Process.Pid), cloud.Count()
	t0 := time.Now()
	time.Sleep(dur) // the measurement: deliberate
	cores := (cpuSeconds(b, cmd.Process.Pid) - c0) / time.Since(t0).Seconds()
	got := float64(cloud.Count()-n0) / time.Since(t0).Seconds()
	b.ReportMetric(got, "readings/s")
	b.ReportMetric(cores, "agent-cores")
	b.ReportMetric(float64(peakRSS(b, cmd.Process.Pid))/(1<<20), "agent-peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}

// cpuSeconds reads utime+stime of a process from /proc/PID/stat.
func cpuSeconds(tb testing.TB, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// peakRSS reads VmHWM (bytes) from /proc/PID/status.
func peakRSS(tb testing.TB, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

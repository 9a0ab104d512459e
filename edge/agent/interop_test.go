package agent_test

// Interop tests of the whole agent as a process: real mosquitto (or the
// embedded broker), mosquitto_pub (SenML JSON) and tributary-sim (SenML
// CBOR) as producers, the uplinktest fake cloud as the receiver, and chaos:
// five kill -9 restarts of the agent and a 30-second uplink outage. Every
// reading must reach the cloud exactly once by natural key.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/protocol/mosquittotest"
)

const (
	gateway = "gw-interop"
	token   = "s3cret-token"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds tributary-agent and tributary-sim once per test binary.
func binaries(t testing.TB) (agentBin, simBin string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tributary-interop-bin")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./edge/cmd/tributary-agent", "./simulator/cmd/tributary-sim")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "tributary-agent"), filepath.Join(binDir, "tributary-sim")
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// agentProc runs tributary-agent as a child process that the test can
// kill -9 and restart with the same arguments.
type agentProc struct {
	t      *testing.T
	bin    string
	args   []string
	health string
	log    *os.File
	mu     sync.Mutex
	cmd    *exec.Cmd
	kills  int
}

func (a *agentProc) start() {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	cmd := exec.Command(a.bin, a.args...)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("start agent: %v", err)
	}
	a.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + a.health + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.t.Fatalf("agent did not answer /healthz within 20s; log: %s", a.log.Name())
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (a *agentProc) kill9() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	a.kills++
}

// stop sends SIGTERM (a clean stop) and waits.
func (a *agentProc) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd.ProcessState != nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		a.cmd.Process.Kill()
		<-done
		a.t.Errorf("agent did not stop within 30s of SIGTERM")
	}
}

// observer subscribes to every device's telemetry on a broker and records
// the natural keys it sees: the ground truth of what was published.
type observer struct {
	mu      sync.Mutex
	keys    map[protocol.Key]bool
	bad     int
	changed chan struct{} // a value after each message
}

func observe(t *testing.T, brokerURL string) *observer {
	o := &observer{keys: map[protocol.Key]bool{}, changed: make(chan struct{}, 1)}
	subscribed := make(chan struct{})
	var once sync.Once
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("observer").SetCleanSession(true).
		SetAutoReconnect(true).SetOrderMatters(false)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		tok := c.Subscribe(protocol.TelemetryFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
			tp, err := protocol.ParseTopic(m.Topic())
			if err != nil {
				return
			}
			rs, err := protocol.DecodeSenML(m.Payload(), protocol.DecodeOptions{Device: tp.Device})
			o.mu.Lock()
			defer o.mu.Unlock()
			defer func() {
				select {
				case o.changed <- struct{}{}:
				default:
				}
			}()
			if err != nil {
				o.bad++
				return
			}
			for i := range rs {
				o.keys[rs[i].Key()] = true
			}
		})
		go func() {
			if tok.Wait() && tok.Error() == nil {
				once.Do(func() { close(subscribed) })
			}
		}()
	})
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("observer: no SUBACK within 10s")
	}
	return o
}

// waitKeys waits until the observer has seen n distinct keys, or timeout.
func (o *observer) waitKeys(n int, timeout time.Duration) {
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		have := len(o.keys)
		o.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-o.changed:
		case <-deadline:
			return // the checks that follow say what is missing
		}
	}
}

func (o *observer) snapshot() []protocol.Key {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]protocol.Key, 0, len(o.keys))
	for k := range o.keys {
		out = append(out, k)
	}
	return out
}

// pubLoop publishes SenML JSON with mosquitto_pub (QoS 1) every interval
// until ctx ends, retrying a message until mosquitto_pub succeeds (the
// broker may be down while the agent restarts). It returns the keys of
// every acknowledged message.
func pubLoop(ctx context.Context, t *testing.T, host, port, device string, every time.Duration) <-chan []protocol.Key {
	out := make(chan []protocol.Key, 1)
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		mosquittotest.Skip(t, "mosquitto_pub")
	}
	go func() {
		var keys []protocol.Key
		defer func() { out <- keys }()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			us := time.Now().UnixMilli() * 1000
			body := fmt.Sprintf(`[{"bn":"pub:","n":"counter","u":"count","v":%d,"t":%s}]`, i, strconv.FormatFloat(float64(us)/1e6, 'f', 3, 64))
			for attempt := 0; attempt < 100; attempt++ {
				cmd := exec.Command(bin, "-h", host, "-p", port, "-q", "1", "-i", "pub-"+device, "-t", protocol.TelemetryTopic(device), "-m", body)
				if cmd.Run() == nil {
					keys = append(keys, protocol.Key{Device: device, Name: "pub:counter", Time: us})
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return out
}

type simSummary struct {
	ReadingsPublished uint64 `json:"readings_published"`
	Unsent            uint64 `json:"unsent"`
	Dropped           uint64 `json:"dropped"`
	Severed           uint64 `json:"severed"`
}

func runSim(t *testing.T, bin, brokerURL, dir string, args ...string) (*exec.Cmd, string) {
	summary := filepath.Join(dir, "sim-summary.json")
	log, _ := os.Create(filepath.Join(dir, "sim.log"))
	all := append([]string{"-broker", brokerURL, "-summary", summary, "-truth", filepath.Join(dir, "truth.jsonl"), "-stats-every", "5s"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, summary
}

func readSummary(t *testing.T, path string) simSummary {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("sim summary: %v", err)
	}
	var s simSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// chaos kills the agent (kill -9) five times and takes the cloud down for
// 30 seconds, on a fixed schedule from now.
func chaos(ctx context.Context, t *testing.T, a *agentProc, cloud *uplinktest.Cloud) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		at := func(d time.Duration) bool {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(time.Until(start.Add(d))):
				return true
			}
		}
		events := []struct {
			at time.Duration
			do func()
		}{
			{4 * time.Second, func() { a.kill9(); a.start() }},
			{7 * time.Second, func() { cloud.SetDown(true); t.Logf("uplink down") }},
			{11 * time.Second, func() { a.kill9(); a.start() }},
			{17 * time.Second, func() { a.kill9(); time.Sleep(time.Second); a.start() }},
			{24 * time.Second, func() { a.kill9(); a.start() }},
			{31 * time.Second, func() { a.kill9(); a.start() }},
			{37 * time.Second, func() { cloud.SetDown(false); t.Logf("uplink up") }},
		}
		for _, e := range events {
			if !at(e.at) {
				return
			}
			e.do()
		}
	}()
	return done
}

// waitDelivered waits until the cloud holds every wanted key (or gives up).
func waitDelivered(t *testing.T, cloud *uplinktest.Cloud, want []protocol.Key, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		have := map[protocol.Key]bool{}
		for _, r := range cloud.Readings() {
			have[r.Key()] = true
		}
		missing := 0
		for _, k := range want {
			if !have[k] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("still %d of %d readings missing after %s", missing, len(want), timeout)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkExactlyOnce compares the cloud with want plus the gateway's own
// health readings (which have no outside truth, but must not repeat).
func checkExactlyOnce(t *testing.T, cloud *uplinktest.Cloud, want []protocol.Key) {
	t.Helper()
	for _, r := range cloud.Readings() {
		if r.Device == gateway {
			want = append(want, r.Key())
		}
	}
	if cloud.AssertExactlyOnce(t, want) {
		t.Logf("exactly once: %d readings (%d batches resent and deduped by the cloud)", len(want), cloud.Duplicates())
	}
}

func newCloud(t *testing.T) *uplinktest.Cloud {
	return uplinktest.NewServer(t, uplinktest.Options{Tokens: map[string]string{gateway: token}, RetryAfter: time.Second})
}

// runScenario runs the agent (its MQTT flags in mqttArgs) on the broker at
// brokerAddr, mosquitto_pub every 250 ms and a 42 s run of 20 simulated
// devices (simArgs added) through the chaos schedule (5 agent kills), and
// returns the keys mosquitto_pub got acknowledged, the simulator's summary
// and the agent's log file.
func runScenario(t *testing.T, cloud *uplinktest.Cloud, brokerAddr string, mqttArgs []string, simArgs ...string) ([]protocol.Key, simSummary, string) {
	t.Helper()
	agentBin, simBin := binaries(t)
	dir := t.TempDir()
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	a := &agentProc{t: t, bin: agentBin, health: freeAddr(t), log: logf}
	a.args = append([]string{"-data", filepath.Join(dir, "data"), "-gateway", gateway, "-cloud", cloud.URL(), "-token", token,
		"-listen", a.health, "-log-level", "warn"}, mqttArgs...)
	a.start()
	t.Cleanup(a.stop)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host, port, _ := net.SplitHostPort(brokerAddr)
	pubs := pubLoop(ctx, t, host, port, "pub-json-1", 250*time.Millisecond)
	sim, summaryPath := runSim(t, simBin, "tcp://"+brokerAddr, dir, append([]string{"-devices", "20", "-rate", "2", "-duration", "42s",
		"-prefix", "cbor-", "-anomaly-rate", "20"}, simArgs...)...)
	chaosDone := chaos(ctx, t, a, cloud)

	if err := sim.Wait(); err != nil {
		t.Fatalf("tributary-sim: %v (log %s/sim.log)", err, dir)
	}
	cancel()
	pubKeys := <-pubs
	<-chaosDone
	sum := readSummary(t, summaryPath)
	if a.kills != 5 {
		t.Fatalf("agent killed %d times, want 5", a.kills)
	}
	if sum.Unsent != 0 || sum.Dropped != 0 {
		t.Fatalf("simulator did not publish everything: %+v", sum)
	}
	return pubKeys, sum, logf.Name()
}

func TestInteropExternalMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("interop: slow")
	}
	broker := mosquittotest.Start(t, &mosquittotest.Options{Extra: []string{"max_inflight_messages 1000"}})
	cloud := newCloud(t)
	obs := observe(t, broker.URL)
	pubKeys, sum, agentLog := runScenario(t, cloud, broker.Addr, []string{"-broker", broker.URL},
		"-storm-every", "15s", "-storm-fraction", "0.3")
	obs.waitKeys(int(sum.ReadingsPublished)+len(pubKeys), 10*time.Second) // the last messages reach the observer
	want := obs.snapshot()
	if obs.bad > 0 {
		t.Errorf("observer saw %d undecodable messages", obs.bad)
	}
	// The observer saw everything mosquitto accepted: the simulator's
	// acknowledged readings and every mosquitto_pub message.
	var simKeys int
	for _, k := range want {
		if k.Device != "pub-json-1" {
			simKeys++
		}
	}
	if uint64(simKeys) != sum.ReadingsPublished {
		t.Errorf("observer saw %d distinct simulator readings, simulator says %d were acknowledged", simKeys, sum.ReadingsPublished)
	}
	if len(pubKeys) < 100 {
		t.Errorf("only %d mosquitto_pub messages", len(pubKeys))
	}
	waitDelivered(t, cloud, want, 90*time.Second)
	checkExactlyOnce(t, cloud, want)
	t.Logf("%d simulator readings (%d connections severed), %d mosquitto_pub readings, 5 agent kills, agent log %s",
		sum.ReadingsPublished, sum.Severed, len(pubKeys), agentLog)
	if t.Failed() {
		tail(t, agentLog)
	}
}

func TestInteropEmbeddedBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("interop: slow")
	}
	cloud := newCloud(t)
	mqttAddr := freeAddr(t)
	pubKeys, sum, agentLog := runScenario(t, cloud, mqttAddr, []string{"-mqtt-listen", mqttAddr})
	// The embedded broker acknowledges a message only after its readings
	// are committed, so every reading the simulator counts as acknowledged
	// and every successful mosquitto_pub must reach the cloud, once.
	waitFor := func() (simKeys int) {
		deadline := time.Now().Add(90 * time.Second)
		for {
			seen := map[protocol.Key]bool{}
			for _, r := range cloud.Readings() {
				if r.Device != gateway && r.Device != "pub-json-1" {
					seen[r.Key()] = true
				}
			}
			if uint64(len(seen)) >= sum.ReadingsPublished || time.Now().After(deadline) {
				return len(seen)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	if got := waitFor(); uint64(got) != sum.ReadingsPublished {
		t.Errorf("cloud holds %d distinct simulator readings, simulator says %d were acknowledged", got, sum.ReadingsPublished)
	}
	want := append([]protocol.Key(nil), pubKeys...)
	for _, r := range cloud.Readings() {
		if r.Device != gateway && r.Device != "pub-json-1" {
			want = append(want, r.Key())
		}
	}
	waitDelivered(t, cloud, pubKeys, 30*time.Second)
	checkExactlyOnce(t, cloud, want)
	t.Logf("%d simulator readings, %d mosquitto_pub readings, 5 agent kills", sum.ReadingsPublished, len(pubKeys))
	if t.Failed() {
		tail(t, agentLog)
	}
}

func tail(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	for _, l := range lines {
		t.Log(l)
	}
}

package agent_test

// Interop tests of the whole agent as a process: real mosquitto (or the
// embedded broker), mosquitto_pub (SenML JSON) and tributary-sim (SenML
// CBOR) as producers, the uplinktest fake cloud as the receiver, and chaos:
// five kill -9 restarts of the agent and a 30-second uplink outage. Every
// reading must reach the cloud exactly once by natural key.

import (
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
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

const (
	gateway = "gw-interop"
	token   = "s3cret-token"
)

// binaries builds tributary-agent and tributary-sim once per test binary
// (with -race when the tests run with it).
func binaries(t testing.TB) (agentBin, simBin string) {
	t.Helper()
	return testenv.Binary(t, "./edge/cmd/tributary-agent"), testenv.Binary(t, "./simulator/cmd/tributary-sim")
}

// newAgent prepares tributary-agent as a child process that the test can
// kill -9 and restart with the same arguments; ready when /healthz answers.
func newAgent(t *testing.T, bin, dir, health string, args ...string) *testenv.Daemon {
	return testenv.NewDaemon(t, dir, "agent", bin, append(args, "-listen", health), func() bool {
		resp, err := http.Get("http://" + health + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

// observer subscribes to every device's telemetry on a broker and records
// the natural keys it sees: the ground truth of what was published.
type observer struct {
	mu   sync.Mutex
	keys map[protocol.Key]bool
	bad  int
}

func observe(t *testing.T, brokerURL string) *observer {
	o := &observer{keys: map[protocol.Key]bool{}}
	subscribed := make(chan error, 1)
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("observer").SetCleanSession(true).
		SetAutoReconnect(true).SetOrderMatters(false)
	opts.SetOnConnectHandler(func(c mqtt.Client) { // paho calls it in a goroutine of its own
		tok := c.Subscribe(protocol.TelemetryFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
			tp, err := protocol.ParseTopic(m.Topic())
			if err != nil {
				return
			}
			rs, err := protocol.DecodeSenML(m.Payload(), protocol.DecodeOptions{Device: tp.Device})
			o.mu.Lock()
			defer o.mu.Unlock()
			if err != nil {
				o.bad++
				return
			}
			for i := range rs {
				o.keys[rs[i].Key()] = true
			}
		})
		tok.Wait()
		select {
		case subscribed <- tok.Error():
		default: // a reconnection
		}
	})
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("observer subscribe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("observer: no subscription within 10s")
	}
	return o
}

// has reports whether the observer saw every key of want and at least n
// readings of other devices.
func (o *observer) has(want []protocol.Key, n uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range want {
		if !o.keys[k] {
			return false
		}
	}
	return uint64(len(o.keys)-len(want)) >= n
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
	bin := testenv.Need(t, "mosquitto_pub", "Debian package mosquitto-clients")
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
				time.Sleep(200 * time.Millisecond) // retry pause: the broker may restart
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

func runSim(t *testing.T, bin, brokerURL, dir string, args ...string) (*testenv.Proc, string) {
	summary := filepath.Join(dir, "sim-summary.json")
	log, _ := os.Create(filepath.Join(dir, "sim.log"))
	all := append([]string{"-broker", brokerURL, "-summary", summary, "-truth", filepath.Join(dir, "truth.jsonl"), "-stats-every", "5s"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Stdout, cmd.Stderr = log, log
	return testenv.Start(t, cmd), summary
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
func chaos(ctx context.Context, t *testing.T, a *testenv.Daemon, cloud *uplinktest.Cloud) <-chan struct{} {
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
		restart := func() {
			a.Kill9()
			if _, err := a.TryStart(); err != nil {
				t.Error(err)
			}
		}
		events := []struct {
			at time.Duration
			do func()
		}{
			{4 * time.Second, restart},
			{7 * time.Second, func() { cloud.SetDown(true); t.Logf("uplink down") }},
			{11 * time.Second, restart},
			{17 * time.Second, func() {
				a.Kill9()
				time.Sleep(time.Second) // down for a second: deliberate
				if _, err := a.TryStart(); err != nil {
					t.Error(err)
				}
			}},
			{24 * time.Second, restart},
			{31 * time.Second, restart},
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
	missing := 0
	if !testenv.Poll(timeout, func() bool {
		have := map[protocol.Key]bool{}
		for _, r := range cloud.Readings() {
			have[r.Key()] = true
		}
		missing = 0
		for _, k := range want {
			if !have[k] {
				missing++
			}
		}
		return missing == 0
	}) {
		t.Logf("still %d of %d readings missing after %s", missing, len(want), timeout)
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

// publishThroughChaos publishes through the broker at brokerAddr while
// chaos runs: mosquitto_pub (SenML JSON, device pub-json-1) every 250 ms
// and tributary-sim (20 devices, SenML CBOR, simArgs added) for 42 s. It
// returns the keys mosquitto_pub got acknowledged and the simulator's
// summary, once both and the chaos schedule are done.
func publishThroughChaos(t *testing.T, a *testenv.Daemon, cloud *uplinktest.Cloud, simBin, brokerAddr, dir string, simArgs ...string) ([]protocol.Key, simSummary) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host, port, _ := net.SplitHostPort(brokerAddr)
	pubs := pubLoop(ctx, t, host, port, "pub-json-1", 250*time.Millisecond)
	args := append([]string{"-devices", "20", "-rate", "2", "-duration", "42s", "-prefix", "cbor-", "-anomaly-rate", "20"}, simArgs...)
	sim, summaryPath := runSim(t, simBin, "tcp://"+brokerAddr, dir, args...)
	chaosDone := chaos(ctx, t, a, cloud)

	if err := sim.Wait(); err != nil {
		t.Fatalf("tributary-sim: %v (log %s/sim.log)", err, dir)
	}
	cancel()
	pubKeys := <-pubs
	<-chaosDone
	sum := readSummary(t, summaryPath)
	if n := a.Kills(); n != 5 {
		t.Fatalf("agent killed %d times, want 5", n)
	}
	if sum.Unsent != 0 || sum.Dropped != 0 {
		t.Fatalf("simulator did not publish everything: %+v", sum)
	}
	return pubKeys, sum
}

func newCloud(t *testing.T) *uplinktest.Cloud {
	return uplinktest.NewServer(t, uplinktest.Options{Tokens: map[string]string{gateway: token}, RetryAfter: time.Second})
}

func TestInteropExternalMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("interop: slow")
	}
	agentBin, simBin := binaries(t)
	broker := testenv.StartMosquitto(t, "max_inflight_messages 1000")
	cloud := newCloud(t)
	dir := t.TempDir()
	obs := observe(t, broker.URL)

	a := newAgent(t, agentBin, dir, testenv.FreeAddr(t), "-data", filepath.Join(dir, "data"), "-gateway", gateway,
		"-cloud", cloud.URL(), "-token", token, "-broker", broker.URL, "-log-level", "warn")
	a.Start()

	pubKeys, sum := publishThroughChaos(t, a, cloud, simBin, broker.Addr, dir,
		"-storm-every", "15s", "-storm-fraction", "0.3")
	// The last messages reach the observer.
	if !testenv.Poll(10*time.Second, func() bool { return obs.has(pubKeys, sum.ReadingsPublished) }) {
		t.Errorf("the observer did not see every acknowledged message within 10s")
	}
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
	t.Logf("%d simulator readings (%d connections severed), %d mosquitto_pub readings, %d agent kills, agent log %s",
		sum.ReadingsPublished, sum.Severed, len(pubKeys), a.Kills(), a.Log)
}

func TestInteropEmbeddedBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("interop: slow")
	}
	agentBin, simBin := binaries(t)
	cloud := newCloud(t)
	dir := t.TempDir()
	mqttAddr := testenv.FreeAddr(t)

	a := newAgent(t, agentBin, dir, testenv.FreeAddr(t), "-data", filepath.Join(dir, "data"), "-gateway", gateway,
		"-cloud", cloud.URL(), "-token", token, "-mqtt-listen", mqttAddr, "-log-level", "warn")
	a.Start()

	pubKeys, sum := publishThroughChaos(t, a, cloud, simBin, mqttAddr, dir)
	// The embedded broker acknowledges a message only after its readings
	// are committed, so every reading the simulator counts as acknowledged
	// and every successful mosquitto_pub must reach the cloud, once.
	waitFor := func() (simKeys int) {
		testenv.Poll(90*time.Second, func() bool {
			seen := map[protocol.Key]bool{}
			for _, r := range cloud.Readings() {
				if r.Device != gateway && r.Device != "pub-json-1" {
					seen[r.Key()] = true
				}
			}
			simKeys = len(seen)
			return uint64(simKeys) >= sum.ReadingsPublished
		})
		return simKeys
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
	t.Logf("%d simulator readings, %d mosquitto_pub readings, %d agent kills", sum.ReadingsPublished, len(pubKeys), a.Kills())
}

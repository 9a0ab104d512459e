package simulator_test

// Interop: the tributary-sim binary against a real mosquitto, checked
// from the outside by an independent MQTT subscriber.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/protocol/mosquittotest"
	"github.com/tributary-iot/tributary/simulator/fleet"
	"github.com/tributary-iot/tributary/simulator/model"
)

var (
	binDir   string
	buildBin = sync.OnceValues(func() (string, error) {
		gobin, err := exec.LookPath("go") // go test puts its GOROOT/bin first in PATH
		if err != nil {
			return "", err
		}
		bin := filepath.Join(binDir, "tributary-sim")
		args := []string{"build", "-o", bin}
		if raceEnabled {
			args = append(args, "-race") // the fleet under real load, raced
		}
		args = append(args, "github.com/tributary-iot/tributary/simulator/cmd/tributary-sim")
		out, err := exec.Command(gobin, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build: %w\n%s", err, out)
		}
		return bin, nil
	})
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tributary-sim-interop")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// message is one MQTT message the subscriber got.
type message struct {
	topic   string
	payload []byte
}

// subscriber collects every telemetry message at QoS 1.
type subscriber struct {
	client mqtt.Client
	mu     sync.Mutex
	msgs   []message
}

func subscribe(t *testing.T, broker string, filters ...string) *subscriber {
	t.Helper()
	s := &subscriber{}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID("interop-subscriber").
		SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true)
	s.client = mqtt.NewClient(opts)
	if tok := s.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { s.client.Disconnect(100) })
	for _, f := range filters {
		tok := s.client.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
			s.mu.Lock()
			s.msgs = append(s.msgs, message{m.Topic(), bytes.Clone(m.Payload())})
			s.mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	return s
}

func (s *subscriber) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// drain waits until no message came for quiet, at most limit.
func (s *subscriber) drain(quiet, limit time.Duration) []message {
	deadline := time.Now().Add(limit)
	last, lastChange := s.count(), time.Now()
	for time.Now().Before(deadline) && time.Since(lastChange) < quiet {
		time.Sleep(50 * time.Millisecond)
		if n := s.count(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// run is one run of the binary and what came out of it.
type run struct {
	summary fleet.Summary
	truth   []model.Event          // anomalies and faults
	tally   map[string]model.Event // published lines by device
	msgs    []message              // telemetry
	status  []message              // status topics
	stderr  string
}

// runSim runs tributary-sim against a fresh mosquitto with an independent
// subscriber on every device's telemetry and status, until it exits (or,
// with stopAfter, until it is sent SIGTERM then), and collects the output.
func runSim(t *testing.T, stopAfter time.Duration, args ...string) *run {
	t.Helper()
	broker := mosquittotest.Start(t, nil)
	bin, err := buildBin()
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, broker.URL, protocol.TelemetryFilter, protocol.StatusFilter)
	dir := t.TempDir()
	truthPath, sumPath := filepath.Join(dir, "truth.jsonl"), filepath.Join(dir, "summary.json")
	args = append([]string{"-broker", broker.URL, "-truth", truthPath, "-summary", sumPath, "-stats-every", "1s"}, args...)
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t.Logf("tributary-sim %s", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if stopAfter > 0 {
		time.Sleep(stopAfter)
		cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tributary-sim: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("tributary-sim did not exit within 60s:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "DATA RACE") {
		t.Fatalf("race in tributary-sim:\n%s", stderr.String())
	}
	r := &run{stderr: stderr.String()}
	for _, m := range sub.drain(time.Second, 15*time.Second) {
		if strings.HasSuffix(m.topic, "/status") {
			r.status = append(r.status, m)
		} else {
			r.msgs = append(r.msgs, m)
		}
	}
	b, err := os.ReadFile(sumPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r.summary); err != nil {
		t.Fatalf("summary: %v\n%s", err, b)
	}
	f, err := os.Open(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := model.ReadTruth(f)
	if err != nil {
		t.Fatalf("truth file: %v", err)
	}
	r.tally = map[string]model.Event{}
	for _, e := range lines {
		if e.Kind == model.KindPublished {
			if _, dup := r.tally[e.Device]; dup {
				t.Errorf("two published lines for %s", e.Device)
			}
			r.tally[e.Device] = e
			continue
		}
		r.truth = append(r.truth, e)
	}
	t.Logf("summary: %s", b)
	return r
}

// readings decodes every message (failing the test on any that does not
// decode) and returns the readings with how many each natural key came.
func (r *run) readings(t *testing.T) (all []protocol.Reading, keys map[protocol.Key]int) {
	t.Helper()
	keys = map[protocol.Key]int{}
	for i, m := range r.msgs {
		topic, err := protocol.ParseTopic(m.topic)
		if err != nil {
			t.Fatalf("message %d: topic %q: %v", i, m.topic, err)
		}
		rs, err := protocol.DecodeSenML(m.payload, protocol.DecodeOptions{Device: topic.Device})
		if err != nil {
			t.Fatalf("message %d on %s does not decode: %v (% x)", i, m.topic, err, m.payload)
		}
		for _, rd := range rs {
			keys[rd.Key()]++
		}
		all = append(all, rs...)
	}
	return all, keys
}

// checkCommon checks what every run must satisfy.
func checkCommon(t *testing.T, r *run, devices int) (all []protocol.Reading, keys map[protocol.Key]int) {
	t.Helper()
	s := r.summary
	all, keys = r.readings(t)
	if uint64(len(keys)) != s.ReadingsPublished {
		t.Errorf("subscriber got %d unique readings (%d in all), the summary says %d published",
			len(keys), len(all), s.ReadingsPublished)
	}
	if s.ReadingsPublished == 0 || s.PacksPublished == 0 {
		t.Fatalf("nothing published: %+v", s.Totals)
	}
	if s.Dropped != 0 || s.Unsent != 0 || s.SenseErrors != 0 {
		t.Errorf("dropped %d, unsent %d, sense errors %d: want 0", s.Dropped, s.Unsent, s.SenseErrors)
	}
	seen := map[string]bool{}
	perDevice := map[string]uint64{}
	for k := range keys {
		seen[k.Device] = true
		perDevice[k.Device]++
	}
	// The published lines of the truth file are exact: per device, the
	// unique readings on the wire, all within the line's span.
	if len(r.tally) != devices {
		t.Errorf("%d published lines in the truth file, want one per device (%d)", len(r.tally), devices)
	}
	var tallied uint64
	for dev, e := range r.tally {
		tallied += e.Readings
		if perDevice[dev] != e.Readings {
			t.Errorf("%s: truth says %d readings published, the subscriber got %d unique", dev, e.Readings, perDevice[dev])
		}
	}
	if tallied != s.ReadingsPublished {
		t.Errorf("published lines add up to %d readings, the summary says %d", tallied, s.ReadingsPublished)
	}
	for k := range keys {
		if e, ok := r.tally[k.Device]; ok && !e.Active(time.UnixMicro(k.Time)) {
			t.Errorf("reading %v at %s outside its device's published span [%s, %s)", k,
				time.UnixMicro(k.Time).UTC().Format(time.RFC3339Nano), e.Start.Format(time.RFC3339Nano), e.End.Format(time.RFC3339Nano))
			break
		}
	}
	for i := range devices {
		if id := fmt.Sprintf("sim-%05d", i); !seen[id] {
			t.Errorf("device %s published nothing", id)
		}
	}
	if len(seen) != devices {
		t.Errorf("%d devices published, want %d", len(seen), devices)
	}
	for i, e := range r.truth {
		if e.Start.Before(s.Start) || e.End.After(s.Stop) || e.End.Before(e.Start) {
			t.Errorf("truth line %d (%s on %s %s) [%s, %s] is outside the run [%s, %s]", i+1, e.Kind, e.Device, e.Metric,
				e.Start.Format(time.RFC3339Nano), e.End.Format(time.RFC3339Nano),
				s.Start.Format(time.RFC3339Nano), s.Stop.Format(time.RFC3339Nano))
		}
	}
	return all, keys
}

// TestInteropFaults runs 50 devices with anomalies, disconnect storms and
// skewed clocks: every message is valid SenML, the unique readings are
// exactly the published ones (storms may duplicate, never lose), every
// device is heard, and the truth file agrees with what went on the wire.
func TestInteropFaults(t *testing.T) {
	const devices = 50
	const skew = 30 * time.Second
	r := runSim(t, 0, "-devices", fmt.Sprint(devices), "-rate", "5", "-duration", "8s", "-seed", "7",
		"-anomaly-rate", "400", "-storm-every", "2s", "-storm-fraction", "0.3",
		"-skew-fraction", "0.2", "-skew", skew.String())
	all, keys := checkCommon(t, r, devices)
	s := r.summary

	kinds := map[string]int{}
	skewed := map[string]time.Duration{}
	for _, e := range r.truth {
		kinds[e.Kind]++
		if e.Kind == model.KindClockSkew {
			skewed[e.Device] = time.Duration(e.Magnitude * float64(time.Second))
		}
	}
	if kinds[model.KindDisconnect] == 0 || uint64(kinds[model.KindDisconnect]) != s.Severed || s.Reconnects < s.Severed {
		t.Errorf("disconnects: %d truth lines, %d severed, %d reconnects", kinds[model.KindDisconnect], s.Severed, s.Reconnects)
	}
	if len(skewed) != devices/5 {
		t.Errorf("%d devices with clock_skew lines, want %d", len(skewed), devices/5)
	}
	anomalies := 0
	for _, k := range fleet.AnomalyKinds {
		anomalies += kinds[k]
	}
	if anomalies == 0 {
		t.Errorf("no anomaly in the truth file: %v", kinds)
	}
	if kinds[model.KindMalformed] != 0 || s.MalformedSent != 0 {
		t.Errorf("malformed payloads sent without being asked for")
	}
	t.Logf("truth: %v; %d messages, %d readings, %d unique", kinds, len(r.msgs), len(all), len(keys))

	// Reading times are the devices' clocks: skewed ones are off by the skew.
	for _, rd := range all {
		off := skewed[rd.Device]
		tm := rd.DeviceTime().Add(-off)
		if tm.Before(s.Start.Add(-time.Second)) || tm.After(s.Stop.Add(time.Second)) {
			t.Fatalf("reading %s at %s (skew %s) is outside the run [%s, %s]", rd.Name, rd.DeviceTime().Format(time.RFC3339Nano),
				off, s.Start.Format(time.RFC3339Nano), s.Stop.Format(time.RFC3339Nano))
		}
	}

	// What the truth says shows on the wire: nothing during a dropout, a
	// frozen value while stuck (temperature exactly; humidity within the
	// BME280's quantisation, as its compensation follows the temperature),
	// and a shift of the planned size during a spike or level shift.
	byDevice := map[string][]protocol.Reading{}
	for _, rd := range all {
		byDevice[rd.Device] = append(byDevice[rd.Device], rd)
	}
	const margin = 250 * time.Millisecond // a reading is timed when Sense returns, maybe late under load
	checked := map[string]int{}
	for _, e := range r.truth {
		off := skewed[e.Device]
		window := func(from, to time.Time) []float64 {
			var vals []float64
			for _, rd := range byDevice[e.Device] {
				tm := rd.DeviceTime().Add(-off)
				if (e.Metric == "" || rd.Name == e.Metric) && tm.After(from) && tm.Before(to) {
					vals = append(vals, rd.Value)
				}
			}
			return vals
		}
		inside := window(e.Start.Add(margin), e.End.Add(-margin))
		span := fmt.Sprintf("%s %s %s [%s, %s]", e.Device, e.Metric, e.Kind,
			e.Start.Format(time.RFC3339Nano), e.End.Format(time.RFC3339Nano))
		switch {
		case e.Kind == model.KindDropout:
			if len(inside) > 0 {
				t.Errorf("%s: device sent %d readings during its dropout", span, len(inside))
			}
			checked[e.Kind]++
		case e.Kind == model.KindStuck && (e.Metric == model.Temperature || e.Metric == model.Humidity) && len(inside) > 1:
			tol := map[string]float64{model.Temperature: 0, model.Humidity: 0.1}[e.Metric]
			if spread(inside) > tol {
				t.Errorf("%s: stuck but sent %v", span, inside)
			}
			checked[e.Kind]++
		case (e.Kind == model.KindSpike || e.Kind == model.KindLevelShift) && e.Metric == model.Temperature:
			before := window(e.Start.Add(-time.Second), e.Start.Add(-margin))
			if len(inside) == 0 || len(before) == 0 {
				continue
			}
			if d := mean(inside) - mean(before); d < e.Magnitude-0.5 || d > e.Magnitude+0.5 {
				t.Errorf("%s: shifted by %.2f, the truth says %.2f", span, d, e.Magnitude)
			}
			checked[e.Kind]++
		}
	}
	t.Logf("anomalies checked on the wire: %v", checked)
	if len(checked) == 0 {
		t.Errorf("no anomaly could be checked on the wire")
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", r.stderr)
	}
}

// TestInteropNoFaults runs a fleet without faults: every reading arrives
// exactly once.
func TestInteropNoFaults(t *testing.T) {
	const devices = 30
	r := runSim(t, 0, "-devices", fmt.Sprint(devices), "-rate", "4", "-duration", "4s", "-seed", "3", "-sensors", "mixed")
	all, keys := checkCommon(t, r, devices)
	if len(all) != len(keys) {
		dups := 0
		for _, n := range keys {
			dups += n - 1
		}
		t.Errorf("%d duplicate readings without faults", dups)
	}
	if s := r.summary; s.Reconnects != 0 || s.Severed != 0 || len(r.truth) != 0 {
		t.Errorf("faults without asking: %d reconnects, %d severed, %d truth lines", s.Reconnects, s.Severed, len(r.truth))
	}
	// The mixed profile: SHT3x + MCP3008 devices and a pulse counter.
	names := map[string]bool{}
	for k := range keys {
		names[k.Name] = true
	}
	for _, n := range []string{"temperature", "humidity", "pressure", "voltage0", "voltage1"} {
		if !names[n] {
			t.Errorf("no %s reading from the mixed fleet (got %v)", n, names)
		}
	}
}

func mean(v []float64) float64 {
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

func spread(v []float64) float64 {
	return slices.Max(v) - slices.Min(v)
}

// TestInteropSignal stops an endless run with SIGTERM: the binary exits 0
// with its summary written, every node flushed (the subscriber has every
// reading the summary counts) and said goodbye on its status topic.
func TestInteropSignal(t *testing.T) {
	const devices = 10
	r := runSim(t, 3*time.Second, "-devices", fmt.Sprint(devices), "-rate", "5", "-duration", "0")
	checkCommon(t, r, devices)
	last := map[string]node.Status{}
	for _, m := range r.status {
		topic, err := protocol.ParseTopic(m.topic)
		if err != nil {
			t.Fatal(err)
		}
		var st node.Status
		if err := json.Unmarshal(m.payload, &st); err != nil {
			t.Fatalf("status of %s: %v: %s", topic.Device, err, m.payload)
		}
		last[topic.Device] = st
	}
	for i := range devices {
		id := fmt.Sprintf("sim-%05d", i)
		if st := last[id]; st.State != node.StateOffline || st.Reason != node.ReasonShutdown {
			t.Errorf("%s: last status %+v, want offline/shutdown", id, st)
		}
	}
	if r.summary.RunSeconds < 2 {
		t.Errorf("stopped after %.1fs, before the signal", r.summary.RunSeconds)
	}
}

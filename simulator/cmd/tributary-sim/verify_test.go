package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/model"
	"github.com/tributary-iot/tributary/simulator/verify"
)

func TestVerifyUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verify"}, "-truth FILE is required"},
		{[]string{"verify", "-truth", "t.jsonl", "-latency", "sometime"}, `-latency "sometime"`},
		{[]string{"verify", "-truth", "t.jsonl", "-from", "yesterday"}, `-from "yesterday"`},
		{[]string{"verify", "-truth", "t.jsonl", "-settle", "-1s"}, "must not be negative"},
		{[]string{"verify", "-truth", "t.jsonl", "extra"}, `unexpected argument "extra"`},
		{[]string{"verify", "-nosuchflag"}, "flag provided but not defined"},
		{[]string{"verify", "-truth", "t.jsonl", "-kafka-tls"}, "-kafka-tls goes with -kafka"},
		{[]string{"verify", "-truth", "t.jsonl", "-kafka", "a:1,,b:2"}, `-kafka "a:1,,b:2"`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"verify", "-truth", filepath.Join(t.TempDir(), "none.jsonl")}, &stdout, &stderr); code != 1 {
		t.Errorf("missing truth file: exit %d, want 1 (%s)", code, stderr.String())
	}
}

// cloudBinary builds tributary-cloud, or returns $TRIBUTARY_CLOUD_BIN when
// set (a binary built elsewhere).
func cloudBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("TRIBUTARY_CLOUD_BIN"); bin != "" {
		return bin
	}
	return testenv.Binary(t, "./cloud/cmd/tributary-cloud")
}

// startCloud runs the real tributary-cloud on free loopback ports and
// returns its Kinesis API URL once the telemetry stream answers.
func startCloud(t *testing.T) (endpoint string, client *kinesis.Client) {
	t.Helper()
	dir := t.TempDir()
	bin := cloudBinary(t)
	var logs *testenv.Buffer
	var listen string
	p := testenv.StartServer(t, 30*time.Second, func() *exec.Cmd {
		listen, endpoint, logs = testenv.FreeAddr(t), "http://"+testenv.FreeAddr(t), &testenv.Buffer{}
		cmd := exec.Command(bin, "-data", filepath.Join(dir, "data"), "-listen", listen, "-kinesis-listen", strings.TrimPrefix(endpoint, "http://"), "-admin-listen", "off")
		cmd.Stdout, cmd.Stderr = logs, logs
		return cmd
	}, func() bool { return testenv.HTTPReady("http://" + listen + "/healthz")() })
	t.Cleanup(func() {
		p.Stop(20 * time.Second)
		if t.Failed() {
			t.Logf("tributary-cloud log:\n%s", logs.String())
		}
	})
	client, err := verify.NewClient(t.Context(), verify.ClientConfig{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	waitStream(t, client, protocol.DefaultStream)
	return endpoint, client
}

func waitStream(t *testing.T, client *kinesis.Client, stream string) {
	t.Helper()
	var err error
	if !testenv.Poll(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err = client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
		return err == nil
	}) {
		t.Fatalf("stream %s not ready within 30s: %v", stream, err)
	}
}

// fleetData is a hand-made run: its truth and the stream records that
// should carry it, in put order (rounds of one record per device).
type fleetData struct {
	truth  []model.Event
	rounds [][]types.PutRecordsRequestEntry
}

// makeFleet builds devices × samples readings of three metrics per sample,
// with device times in the last minute. With faults, device dev-1 loses
// sample 7's humidity and device dev-3's sample 5 pressure is sent again
// after sample 6: exactly one reading lost and one duplicated. A gateway
// health record rides along.
func makeFleet(t *testing.T, devices, samples int, faults bool) fleetData {
	t.Helper()
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Minute)
	metrics := []string{"temperature", "humidity", "pressure"}
	var fd fleetData
	readings := func(dev string, k int) []protocol.Reading {
		tm := base.Add(time.Duration(k)*time.Second + 100*time.Millisecond).UnixMicro()
		rs := make([]protocol.Reading, 0, len(metrics))
		for _, m := range metrics {
			rs = append(rs, protocol.Reading{Device: dev, Name: m, Kind: protocol.KindFloat, Value: float64(k), Time: tm, Received: tm})
		}
		return rs
	}
	entry := func(rs []protocol.Reading) types.PutRecordsRequestEntry {
		data, err := protocol.AppendRecord(nil, "gw-test", rs)
		if err != nil {
			t.Fatal(err)
		}
		return types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(protocol.PartitionKey(rs[0].Device))}
	}
	for d := range devices {
		dev := fmt.Sprintf("dev-%d", d)
		fd.truth = append(fd.truth, model.Event{Device: dev, Kind: model.KindPublished, Start: base,
			End: base.Add(time.Duration(samples) * time.Second), Readings: uint64(samples * len(metrics))})
	}
	fd.truth = append(fd.truth, model.Event{Device: "dev-0", Metric: "temperature", Kind: model.KindSpike,
		Start: base.Add(3 * time.Second), End: base.Add(5 * time.Second), Magnitude: 12})
	for k := range samples {
		var round []types.PutRecordsRequestEntry
		for d := range devices {
			dev := fmt.Sprintf("dev-%d", d)
			rs := readings(dev, k)
			if faults && dev == "dev-1" && k == 7 {
				rs = append(rs[:1], rs[2:]...) // humidity lost
			}
			round = append(round, entry(rs))
			if faults && dev == "dev-3" && k == 6 {
				round = append(round, entry(readings(dev, 5)[2:])) // sample 5's pressure again
			}
		}
		if k == samples/2 {
			tm := base.Add(time.Duration(k) * time.Second).UnixMicro()
			round = append(round, entry([]protocol.Reading{
				{Device: "gw-test", Name: protocol.HealthQueueDepth, Kind: protocol.KindFloat, Value: 0, Time: tm, Received: tm},
				{Device: "gw-test", Name: protocol.HealthUplinkOK, Kind: protocol.KindBool, Bool: true, Time: tm, Received: tm},
			}))
		}
		fd.rounds = append(fd.rounds, round)
	}
	return fd
}

func putAll(t *testing.T, client *kinesis.Client, stream string, rounds [][]types.PutRecordsRequestEntry) {
	t.Helper()
	for i, round := range rounds {
		out, err := client.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: round})
		if err != nil {
			t.Fatalf("PutRecords round %d: %v", i, err)
		}
		if n := aws.ToInt32(out.FailedRecordCount); n != 0 {
			t.Fatalf("PutRecords round %d: %d records failed", i, n)
		}
	}
}

func writeTruth(t *testing.T, events []model.Event) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "truth.jsonl")
	tw, err := model.CreateTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if err := tw.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestVerifyAgainstCloud starts the real tributary-cloud, puts a hand-made
// run into its stream with the SDK (one reading lost and one duplicated on
// purpose, on the telemetry stream; none on a second stream), and checks
// that `tributary-sim verify` finds exactly those, scores alerts, and exits
// 1 and 0.
func TestVerifyAgainstCloud(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tributary-cloud")
	}
	endpoint, client := startCloud(t)
	const devices, samples = 5, 20

	faulty := makeFleet(t, devices, samples, true)
	putAll(t, client, protocol.DefaultStream, faulty.rounds)
	// Alerts on a stream of the test's own (the cloud's detectors write
	// to "alerts"): one detects the spike, one is a false alarm.
	const alertsStream = "verify-alerts"
	if _, err := client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(alertsStream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitStream(t, client, alertsStream)
	spike := faulty.truth[devices]
	var alerts []types.PutRecordsRequestEntry
	for _, a := range []verify.Alert{
		{Device: "dev-0", Metric: "temperature", Time: spike.Start.Add(time.Second), Score: 0.9, Kind: "spike", Value: 33},
		{Device: "dev-2", Metric: "humidity", Time: spike.Start, Score: 0.7, Kind: "level_shift", Value: 50},
	} {
		b, _ := json.Marshal(a)
		alerts = append(alerts, types.PutRecordsRequestEntry{Data: b, PartitionKey: aws.String(a.Device)})
	}
	putAll(t, client, alertsStream, [][]types.PutRecordsRequestEntry{alerts})

	var stdout, stderr bytes.Buffer
	args := []string{"verify", "-endpoint", endpoint, "-truth", writeTruth(t, faulty.truth), "-alerts-stream", alertsStream,
		"-settle", "1s", "-timeout", "60s", "-poll", "50ms", "-json"}
	code := run(t.Context(), args, &stdout, &stderr)
	if code != 1 {
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
	if !rep.Complete || rep.OK || rep.Health != 2 || rep.DecodeErrors != 0 || rep.KeyMismatches != 0 {
		t.Errorf("complete %v, ok %v, health %d, decode errors %d, key mismatches %d; want true, false, 2, 0, 0",
			rep.Complete, rep.OK, rep.Health, rep.DecodeErrors, rep.KeyMismatches)
	}
	bad := map[string]verify.Counts{}
	for _, d := range rep.Devices {
		if d.Bad() || d.Unexpected > 0 {
			bad[d.Device] = d.Counts
		}
	}
	if len(bad) != 2 || bad["dev-1"].Lost != 1 || bad["dev-3"].Duplicated != 1 {
		t.Errorf("devices with problems: %+v; want dev-1 with one lost, dev-3 with one duplicated", bad)
	}
	if rep.Latency.Count != 299 || rep.Latency.P50Ms < 1000 || rep.Latency.MaxMs > 120_000 {
		t.Errorf("latency %+v: want 299 readings, all between 1 s and 2 min old", rep.Latency)
	}
	if a := rep.Alerts; a == nil || a.Alerts != 2 || a.Matched != 1 || a.Detected != 1 || a.Anomalies != 1 ||
		a.Precision == nil || *a.Precision != 0.5 || a.Recall == nil || *a.Recall != 1 {
		t.Errorf("alerts: %+v", rep.Alerts)
	}

	// The text report says the same.
	stdout.Reset()
	stderr.Reset()
	code = run(t.Context(), args[:len(args)-1], &stdout, &stderr)
	text := stdout.String()
	t.Logf("text report:\n%s", text)
	for _, w := range []string{"FAIL: 1 lost, 1 duplicated", "dev-1", "dev-3", "precision   50.0%", "recall      100.0%"} {
		if !strings.Contains(text, w) {
			t.Errorf("text report lacks %q", w)
		}
	}
	if code != 1 {
		t.Errorf("text run: exit %d, want 1", code)
	}

	// A clean run on another stream: exit 0.
	if _, err := client.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String("clean"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitStream(t, client, "clean")
	clean := makeFleet(t, devices, samples, false)
	putAll(t, client, "clean", clean.rounds)
	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), []string{"verify", "-endpoint", endpoint, "-stream", "clean", "-truth", writeTruth(t, clean.truth),
		"-settle", "1s", "-poll", "50ms"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "OK: nothing lost") {
		t.Errorf("clean stream: exit %d, want 0\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
}

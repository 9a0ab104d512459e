package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/plan"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// plan -from reads a running cloud's traffic: the real binary, fed real
// uplink batches, and the planner's rates must add up to exactly the
// records the ingest wrote (one SenML-CBOR record per device per batch,
// sized with the protocol's encoder here) once the monitor's 10 s window
// holds them all.
func TestPlanFromRunningCloud(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := testenv.Binary(t, "./cloud/cmd/tributary-cloud")
	data := filepath.Join(t.TempDir(), "data")
	tok, err := exec.Command(bin, "-data", data, "token", "issue", "gw-1").Output()
	if err != nil {
		t.Fatalf("token issue: %v", err)
	}
	var listen, admin string
	p := testenv.StartServer(t, 20*time.Second, func() *exec.Cmd {
		listen, admin = testenv.FreeAddr(t), testenv.FreeAddr(t)
		return exec.Command(bin, "-data", data, "-listen", listen, "-admin-listen", admin, "-kinesis-listen", testenv.FreeAddr(t))
	}, func() bool { return testenv.HTTPReady("http://" + listen + "/healthz")() })
	t.Cleanup(func() { _ = p.Stop(15 * time.Second) })

	const devices, batches = 20, 5
	var readings, records, recordBytes int
	now := time.Now().UnixMicro()
	for i := range batches {
		b := &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: uint64(i*devices*3 + 1)}
		for d := range devices {
			dev := fmt.Sprintf("node-%03d", d)
			tm := now + int64(i)*1_000_000 + int64(d)*137
			var rs []protocol.Reading
			for _, m := range plan.DefaultMetrics {
				rs = append(rs, protocol.Reading{Device: dev, Name: m.Name, Unit: m.Unit, Kind: protocol.KindFloat,
					Value: m.Value + float64(i), Time: tm, Received: tm + 1500})
			}
			b.Readings = append(b.Readings, rs...)
			// What the ingest writes for this device in this batch.
			err := protocol.EncodeRecords(b.Gateway, rs, 0, func(rec []byte, _ []protocol.Reading) error {
				records++
				recordBytes += len(rec) + len(dev)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		readings += len(b.Readings)
		body, err := protocol.AppendBatch(nil, b)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/v1/ingest", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", protocol.ContentTypeBatch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("batch %d: HTTP %d", i, resp.StatusCode)
		}
	}
	if records != devices*batches {
		t.Fatalf("%d records for %d devices × %d batches: the ingest writes one per device per batch", records, devices, batches)
	}

	// The monitor's rates are per second over the last 10 complete
	// seconds: once they cover every arrival, rate × 10 is the total.
	var pl plan.Plan
	var last string
	testenv.WaitFor(t, "the planner to see every record in the rate window", 25*time.Second, func() bool {
		code, out, errOut := cli(t, "plan", "-from", "http://"+admin, "-consumers", "2", "-json")
		last = out + errOut
		if code != 0 || json.Unmarshal([]byte(out), &pl) != nil {
			return false
		}
		return near(pl.Traffic.ReadingsPerSec*10, float64(readings)) && near(pl.Traffic.RecordsPerSec*10, float64(records))
	})
	tr := pl.Traffic
	if !near(tr.BytesPerSec*10, float64(recordBytes)) || tr.Devices != devices || !strings.HasPrefix(tr.Source, "live: http://"+admin) {
		t.Errorf("traffic %+v: want %d bytes in 10 s from %d devices\n%s", tr, recordBytes, devices, last)
	}
	if !near(tr.BytesPerRecord, float64(recordBytes)/float64(records)) || !near(tr.ReadingsPerRecord, 3) {
		t.Errorf("per record: %v bytes, %v readings; want %v and 3", tr.BytesPerRecord, tr.ReadingsPerRecord, float64(recordBytes)/float64(records))
	}
	if pl.Capacity.Shards != 1 || len(pl.Estimates) != 4 || pl.Fleet.Consumers != 2 || pl.Prices.File != "embedded:us-east-1.yaml" {
		t.Errorf("plan %+v", pl)
	}

	// The text form names the prices it used; scaling to a bigger fleet
	// multiplies the measured per-device traffic.
	code, out, errOut := cli(t, "plan", "-from", "http://"+admin, "-devices", "20000", "-json")
	if code != 0 {
		t.Fatalf("plan -devices: %d %s", code, errOut)
	}
	var big plan.Plan
	if err := json.Unmarshal([]byte(out), &big); err != nil || big.Traffic.Devices != 20000 || !strings.Contains(big.Traffic.Source, "scaled from 20 to 20000 devices") {
		t.Errorf("scaled plan: %v %+v", err, big.Traffic)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// The plan command: flags win over the fleet file, errors name what to
// fix, -prices replaces the embedded file.
func TestPlanCommand(t *testing.T) {
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(fleet, []byte("devices: 500\nrate: 2\nconsumers: 3\nretention: 72h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, "plan", "-fleet", fleet, "-devices", "1000", "-json")
	var pl plan.Plan
	if code != 0 || json.Unmarshal([]byte(out), &pl) != nil {
		t.Fatalf("%d %s %s", code, out, errOut)
	}
	if pl.Fleet.Devices != 1000 || pl.Fleet.Rate != 2 || pl.Fleet.Consumers != 3 || pl.Fleet.Retention != 72*time.Hour || pl.Traffic.ReadingsPerSec != 6000 {
		t.Errorf("fleet %+v traffic %+v", pl.Fleet, pl.Traffic)
	}
	// -efo alone is true; a later -efo=false wins.
	if code, out, _ := cli(t, "plan", "-devices", "10", "-efo", "-json"); code != 0 || !strings.Contains(out, `"enhanced_fan_out": true`) {
		t.Errorf("-efo: %d %s", code, out)
	}
	code, out, _ = cli(t, "plan", "-devices", "10000")
	if code != 0 || !strings.Contains(out, "as of ") || !strings.Contains(out, "Kinesis shards:") || !strings.Contains(out, "MSK Serverless") {
		t.Errorf("text: %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plan"}, 1, "devices: required"},
		{[]string{"plan", "-devices", "x"}, 2, "invalid syntax"},
		{[]string{"plan", "-devices", "10", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"plan", "-devices", "10", "-region", "mars-north-1"}, 1, "us-east-1"},
		{[]string{"plan", "-devices", "10", "-headroom", "-1"}, 1, "headroom"},
		{[]string{"plan", "-devices", "10", "-prices", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{[]string{"plan", "-fleet", filepath.Join(dir, "none.yaml")}, 1, "none.yaml"},
		{[]string{"plan", "-from", "http://" + testenv.FreeAddr(t)}, 1, "reading the cloud's traffic"},
		{[]string{"plan", "-from", "127.0.0.1:8081"}, 1, "want the admin URL"},
	} {
		if code, _, errOut := cli(t, c.args...); code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d %q, want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	// A price file of one's own.
	prices := filepath.Join(dir, "prices.yaml")
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/prices/us-east-1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("as_of: "), []byte("as_of: 2030-01-01\n# was: "), 1)
	if err := os.WriteFile(prices, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := cli(t, "plan", "-devices", "10", "-prices", prices); code != 0 || !strings.Contains(out, prices) || !strings.Contains(out, "as of 2030-01-01") {
		t.Errorf("-prices: %d %s %s", code, out, errOut)
	}
}

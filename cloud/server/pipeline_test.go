package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/protocol"
)

// series makes n points per device at a 10 s cadence ending now: a daily
// sine with a little deterministic noise; device spikeDev jumps by +30 at
// point spikeAt.
func series(devices, n int, spikeDev, spikeAt int) []protocol.Reading {
	end := time.Now().Truncate(time.Second)
	var rs []protocol.Reading
	for i := range n {
		tm := end.Add(-time.Duration(n-i) * 10 * time.Second).UnixMicro()
		for d := range devices {
			v := 20 + 2*math.Sin(2*math.Pi*float64(i)/360) + 0.1*math.Sin(float64(i*7+d))
			if d == spikeDev && i == spikeAt {
				v += 30
			}
			rs = append(rs, protocol.Reading{Device: fmt.Sprintf("node-%d", d), Name: "temperature", Unit: "Cel",
				Kind: protocol.KindFloat, Value: v, Time: tm, Received: tm + 1000})
		}
	}
	return rs
}

// startPipeline starts a cloud with the defaults (monitor and anomaly
// detectors on) over an unthrottled embedded store and returns it, a
// token for gw-1 and the admin listener's base URL.
func startPipeline(t *testing.T) (r *running, token, admin string) {
	t.Helper()
	r = start(t, server.Config{Data: t.TempDir()}, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}})
	token, err := r.s.Tokens().Issue("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	return r, token, "http://" + r.s.AdminAddr()
}

// TestMonitorDashboardAndAlerts: readings shipped by the real uplink
// reach the monitor consumer (through the in-process Kinesis API), show
// on the dashboard's JSON API, and a spike becomes an alert on the API
// and a JSON record in the alerts stream, read with the AWS SDK.
func TestMonitorDashboardAndAlerts(t *testing.T) {
	r, tok, admin := startPipeline(t)
	if got := r.s.DashboardURL(); got != admin+"/" {
		t.Errorf("DashboardURL %q, want %s/", got, admin)
	}

	rs := series(3, 1000, 1, 900)
	ship(t, newSrc(rs), uplink.Config{URL: "http://" + r.s.Addr(), Token: tok})

	var ov struct {
		Devices  struct{ Total, Online int }
		Readings int
	}
	eventually(t, "the monitor to see every reading", func() bool {
		getJSON(t, admin+"/api/v1/overview", &ov)
		return ov.Readings == len(rs)
	})
	if ov.Devices.Total != 3 {
		t.Errorf("overview: %+v, want 3 devices", ov)
	}

	// Other alerts may come first (the shards are read in parallel).
	var al struct{ Alerts []monitor.AlertEntry }
	spikeAt := time.UnixMicro(rs[900*3+1].Time).UTC()
	isSpike := func(a monitor.AlertEntry) bool {
		return a.Device == "node-1" && a.Metric == "temperature" && a.Time.Equal(spikeAt)
	}
	eventually(t, "an alert for the spike", func() bool {
		getJSON(t, admin+"/api/v1/alerts", &al)
		return slices.ContainsFunc(al.Alerts, isSpike)
	})
	for _, a := range al.Alerts {
		if isSpike(a) && (a.Kind != anomaly.KindSpike || a.Score < 0.5) {
			t.Errorf("spike alert %+v: want kind spike, score >= 0.5", a)
		}
	}

	// The alerts stream holds the same alert as JSON.
	c := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", HTTPClient: &http.Client{},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")},
		func(o *kinesis.Options) { o.BaseEndpoint = aws.String("http://" + r.s.KinesisAddr()) })
	var streamAlerts []anomaly.Alert
	eventually(t, "the alert in the alerts stream", func() bool {
		streamAlerts = streamAlerts[:0]
		ctx := context.Background()
		shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("alerts")})
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shards.Shards {
			it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("alerts"),
				ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range out.Records {
				var a anomaly.Alert
				if err := json.Unmarshal(rec.Data, &a); err != nil {
					t.Fatalf("alerts record %q: %v", rec.Data, err)
				}
				if aws.ToString(rec.PartitionKey) != a.Device {
					t.Errorf("alert of %s keyed %q", a.Device, aws.ToString(rec.PartitionKey))
				}
				streamAlerts = append(streamAlerts, a)
			}
		}
		return len(streamAlerts) >= len(al.Alerts)
	})

	// The dashboard's page and the monitor's metrics are served.
	if body := get(t, admin+"/"); !strings.Contains(body, "<html") {
		t.Errorf("GET / is not the dashboard: %.200s", body)
	}
	body := get(t, admin+"/metrics")
	for _, m := range []string{"tributary_consumer_readings_total", "tributary_consumer_latency_seconds_bucket", "tributary_alerts_sent_total", "tributary_monitor_"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFarFutureReadingDoesNotBlind: one reading of a series stamped a
// year ahead of its receive time (a device clock ahead), shipped between
// correct ones, is counted by the monitor and neither charted nor scored;
// the correct readings after it are still charted and scored: a spike
// among them becomes an alert.
func TestFarFutureReadingDoesNotBlind(t *testing.T) {
	r, tok, admin := startPipeline(t)
	good := series(1, 1000, 0, 900)
	bad := good[500]
	bad.Time += int64(365 * 24 * time.Hour / time.Microsecond)
	bad.Value = 1e6
	rs := slices.Concat(good[:501], []protocol.Reading{bad}, good[501:])
	ship(t, newSrc(rs), uplink.Config{URL: "http://" + r.s.Addr(), Token: tok})

	var body string
	t.Cleanup(func() {
		if t.Failed() {
			for l := range strings.Lines(body) {
				if strings.HasPrefix(l, "tributary_monitor_") || strings.HasPrefix(l, "tributary_consumer_readings") {
					t.Log(strings.TrimSpace(l))
				}
			}
		}
	})
	eventually(t, "the far-future reading to be counted", func() bool {
		body = get(t, admin+"/metrics")
		return strings.Contains(body, "tributary_monitor_future_readings_total 1\n")
	})
	var ov struct{ Readings int }
	eventually(t, "the monitor to chart every correct reading", func() bool {
		getJSON(t, admin+"/api/v1/overview", &ov)
		return ov.Readings == len(good)
	})
	var al struct{ Alerts []monitor.AlertEntry }
	spikeAt := time.UnixMicro(good[900].Time).UTC()
	eventually(t, "an alert for the spike after the far-future reading", func() bool {
		getJSON(t, admin+"/api/v1/alerts", &al)
		return slices.ContainsFunc(al.Alerts, func(a monitor.AlertEntry) bool { return a.Time.Equal(spikeAt) })
	})
	for _, a := range al.Alerts {
		if a.Value == bad.Value {
			t.Errorf("the far-future reading was scored: %+v", a)
		}
	}
}

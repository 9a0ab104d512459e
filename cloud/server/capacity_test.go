package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/plan"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// putReadings writes n records as the ingest writes them (one device's
// readings, keyed by the device) straight into the embedded stream, and
// returns how many were stored (the rest were throttled).
func putReadings(t *testing.T, st *shardstore.Store, n int, seq *int) int {
	t.Helper()
	es := make([]shardstore.PutEntry, n)
	now := time.Now().UnixMicro()
	for i := range es {
		*seq++
		dev := fmt.Sprintf("dev-%d", *seq%97)
		data, err := protocol.AppendRecord(nil, "gw-1", []protocol.Reading{{Device: dev, Name: "temperature", Unit: "Cel",
			Kind: protocol.KindFloat, Value: 21 + float64(*seq%10)/10, Time: now + int64(*seq), Received: now}})
		if err != nil {
			t.Fatal(err)
		}
		es[i] = shardstore.PutEntry{PartitionKey: dev, Data: data}
	}
	res, err := st.Put(context.Background(), "telemetry", es)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, r := range res {
		if r.Err == nil {
			stored++
		}
	}
	return stored
}

// TestCapacityWithoutAutoscale: with stream.autoscale off, GET
// /api/v1/autoscale still shows every open shard's utilisation against
// the store's limits (throttles included), no decisions, and how to turn
// autoscaling on; the stream is not resharded.
func TestCapacityWithoutAutoscale(t *testing.T) {
	cfg := server.Config{Data: t.TempDir(), Stream: server.StreamConfig{Shards: 2, WriteRecordsPerSec: 50,
		Autoscale: autoscale.Config{Interval: 200 * time.Millisecond}}}
	r := start(t, cfg, shardstore.Options{})
	admin := "http://" + r.s.AdminAddr()
	var st server.CapacityStatus
	seq := 0
	eventually(t, "throttled shards on /api/v1/autoscale", func() bool {
		putReadings(t, r.s.Store(), 40, &seq) // ~2,000 offered per second against 2 × 50
		getJSON(t, admin+"/api/v1/autoscale", &st)
		throttled := 0
		for _, sh := range st.Shards {
			if sh.WriteThrottledPerSec > 0 && sh.Utilisation > 1 {
				throttled++
			}
		}
		return throttled == 2
	})
	if st.Enabled || len(st.Decisions) != 0 || st.Limits.WriteRecordsPerSec != 50 || len(st.Shards) != 2 || st.Backend != "embedded" {
		t.Errorf("status %+v", st)
	}
	if !strings.Contains(st.Note, "stream.autoscale.enabled: true") || !strings.Contains(st.Note, "200ms") {
		t.Errorf("note %q", st.Note)
	}
	for _, sh := range st.Shards {
		if sh.IncomingRecordsPerSec <= 0 || sh.IncomingBytesPerSec <= 0 {
			t.Errorf("shard %s: %+v", sh.ShardID, sh)
		}
	}
	if in, err := r.s.Store().DescribeStream("telemetry"); err != nil || in.OpenShards != 2 {
		t.Errorf("open shards %d, %v: resharded without the autoscaler", in.OpenShards, err)
	}
}

// TestPlanEndpoint: GET /api/v1/plan prices the traffic the monitor
// measures on the four engines with the embedded price file, with the
// stream's retention and the monitor as its consumer, or those of the
// query; before any traffic it says so.
func TestPlanEndpoint(t *testing.T) {
	r := start(t, server.Config{Data: t.TempDir()}, shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}})
	admin := "http://" + r.s.AdminAddr()
	var ans server.PlanAnswer
	getJSON(t, admin+"/api/v1/plan", &ans)
	if ans.Plan != nil || !strings.Contains(ans.Error, "no traffic") {
		t.Errorf("before any traffic: %+v", ans)
	}

	seq := 0
	eventually(t, "a plan", func() bool {
		putReadings(t, r.s.Store(), 50, &seq)
		ans = server.PlanAnswer{}
		getJSON(t, admin+"/api/v1/plan", &ans)
		return ans.Plan != nil
	})
	prices, err := plan.EmbeddedPrices("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Prices.AsOf != prices.AsOf || ans.Prices.Region != "us-east-1" || ans.Prices.File != "embedded:us-east-1.yaml" {
		t.Errorf("prices %+v", ans.Prices)
	}
	var engines []string
	for _, e := range ans.Estimates {
		engines = append(engines, e.Engine)
		if e.MonthlyUSD <= 0 {
			t.Errorf("%s: %v USD a month", e.Engine, e.MonthlyUSD)
		}
	}
	if got := strings.Join(engines, ", "); got != "Kinesis provisioned, Kinesis on-demand, MSK provisioned, MSK Serverless" {
		t.Errorf("engines %s", got)
	}
	if ans.Fleet.Consumers != 1 || ans.Fleet.Retention != 24*time.Hour || ans.Traffic.RecordsPerSec <= 0 || ans.Capacity.Shards < 1 ||
		ans.Traffic.Devices < 1 || ans.Traffic.Devices > 97 {
		t.Errorf("fleet %+v traffic %+v shards %d", ans.Fleet, ans.Traffic, ans.Capacity.Shards)
	}
	if !strings.Contains(strings.Join(ans.Notes, "; "), "?consumers=N") {
		t.Errorf("notes %q", ans.Notes)
	}

	var week server.PlanAnswer
	eventually(t, "a plan for a week's retention and 3 consumers", func() bool {
		putReadings(t, r.s.Store(), 50, &seq)
		week = server.PlanAnswer{}
		getJSON(t, admin+"/api/v1/plan?consumers=3&retention=168h", &week)
		return week.Plan != nil
	})
	if week.Fleet.Consumers != 3 || week.Fleet.Retention != 168*time.Hour {
		t.Errorf("fleet %+v", week.Fleet)
	}
	if lines := fmt.Sprint(week.Estimates[0].Lines); !strings.Contains(lines, "retention") {
		t.Errorf("Kinesis provisioned with 168h retention bills no extended retention: %s", lines)
	}
	for _, q := range []string{"consumers=0", "retention=10m", "retention=soon"} {
		resp, err := http.Get(admin + "/api/v1/plan?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// TestCapacityEndpointsNeedAuth: the new endpoints are behind the admin
// listener's sign-in like the rest of /api/v1.
func TestCapacityEndpointsNeedAuth(t *testing.T) {
	_, base := adminServer(t, server.Config{}, nil)
	for _, p := range []string{"/api/v1/autoscale", "/api/v1/plan"} {
		for _, tok := range []string{"", adminTok} {
			req, _ := http.NewRequest(http.MethodGet, base+p, nil)
			want := http.StatusUnauthorized
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
				want = http.StatusOK
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s (token %t): %d, want %d", p, tok != "", resp.StatusCode, want)
			}
		}
	}
}

// TestCapacityKafka: on the kafka backend nothing is repartitioned; the
// status says why and reports the topic's partitions and their headroom
// under the per-partition quota, from the monitor's rates.
func TestCapacityKafka(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{})
	r := start(t, kafkaConfig(t.TempDir(), k.Addr), shardstore.Options{})
	tok, _ := r.s.Tokens().Issue("gw-1")
	ship(t, newSrc(readings(3000, 7, time.Now().Add(-time.Minute))), uplink.Config{URL: "http://" + r.s.Addr(), Token: tok})
	var st server.CapacityStatus
	eventually(t, "the partitions' load", func() bool {
		getJSON(t, "http://"+r.s.AdminAddr()+"/api/v1/autoscale", &st)
		return st.Partitions != nil && st.Partitions.BusiestBytesPerSec > 0
	})
	p := st.Partitions
	if st.Enabled || !strings.Contains(st.Refused, "does not repartition Kafka topics") || p.Partitions != 3 || p.Error != "" ||
		p.QuotaBytesPerSec <= 0 || p.Headroom <= 1 || !strings.Contains(p.Note, "per-partition write quota") {
		t.Errorf("status %+v, partitions %+v", st, *p)
	}
}

// TestCapacityKinesis: on the kinesis backend (here another cloud's
// Kinesis API) with autoscaling off, GET /api/v1/autoscale shows the
// shards' write load as this cloud's writes saw it, against Kinesis's
// limits.
func TestCapacityKinesis(t *testing.T) {
	a := start(t, server.Config{Data: t.TempDir(), Stream: server.StreamConfig{Shards: 2}, Monitor: server.MonitorConfig{Enabled: new(false)}},
		shardstore.Options{})
	b := start(t, server.Config{Data: t.TempDir(), KinesisListen: "off", Monitor: server.MonitorConfig{Enabled: new(false)},
		Stream: server.StreamConfig{Backend: server.BackendKinesis, Autoscale: autoscale.Config{Interval: 200 * time.Millisecond},
			Kinesis: server.KinesisConfig{Endpoint: "http://" + a.s.KinesisAddr(), Region: "us-east-1", AccessKeyID: "AKID", SecretAccessKey: "secret"}}},
		shardstore.Options{})
	tok, err := b.s.Tokens().Issue("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	var st server.CapacityStatus
	seq := uint64(1)
	eventually(t, "the shards' load", func() bool {
		rs := readings(100, 8, time.Now())
		if code, body := sendBatch(t, "http://"+b.s.Addr(), tok, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: seq, Readings: rs}); code != 200 {
			t.Fatalf("ingest %d: %s", code, body)
		}
		seq += uint64(len(rs))
		getJSON(t, "http://"+b.s.AdminAddr()+"/api/v1/autoscale", &st)
		busy := 0
		for _, sh := range st.Shards {
			if sh.IncomingRecordsPerSec > 0 && sh.IncomingBytesPerSec > 0 && sh.Utilisation > 0 {
				busy++
			}
		}
		return busy == 2
	})
	if st.Enabled || st.Backend != "kinesis" || st.Limits != autoscale.KinesisLimits || !strings.Contains(st.Note, "stream.autoscale.enabled") {
		t.Errorf("status %+v", st)
	}
}

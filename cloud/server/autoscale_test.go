package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// TestAutoscaleWired: with stream.autoscale on, a load over the shard
// write limit (stream.write_records_per_sec) makes the autoscaler reshard
// the embedded stream through the in-process Kinesis API; the decision is
// on /api/v1/autoscale and the per-shard metrics on /metrics.
func TestAutoscaleWired(t *testing.T) {
	cfg := server.Config{Data: t.TempDir(), Stream: server.StreamConfig{Shards: 1, WriteRecordsPerSec: 50,
		Autoscale: autoscale.Config{Enabled: true, MaxShards: 4, Interval: 200 * time.Millisecond, Cooldown: time.Hour}}}
	r := start(t, cfg, shardstore.Options{})
	admin := "http://" + r.s.AdminAddr()
	ctx := context.Background()
	i := 0
	var st autoscale.Status
	eventually(t, "a reshard", func() bool {
		es := make([]shardstore.PutEntry, 20) // ~1,000 offered per second against 50
		for j := range es {
			es[j] = shardstore.PutEntry{PartitionKey: fmt.Sprintf("dev-%d", i), Data: []byte("reading")}
			i++
		}
		if _, err := r.s.Store().Put(ctx, "telemetry", es); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(get(t, admin+"/api/v1/autoscale")), &st); err != nil {
			t.Fatal(err)
		}
		return len(st.Decisions) > 0
	})
	d := st.Decisions[0]
	if d.Action != autoscale.ActionUpdateShardCount || d.From != 1 || d.To != 2 || d.Error != "" || !st.Enabled || st.Limits.WriteRecordsPerSec != 50 {
		t.Fatalf("status %+v", st)
	}
	in, err := r.s.Store().DescribeStream("telemetry")
	if err != nil || in.OpenShards != 2 {
		t.Fatalf("open shards %d, %v", in.OpenShards, err)
	}
	body := get(t, admin+"/metrics")
	for _, m := range []string{`tributary_stream_shard_incoming_records_total{shard="shardId-000000000000",stream="telemetry"}`,
		`tributary_stream_shard_write_provisioned_throughput_exceeded_total{shard="shardId-000000000000",stream="telemetry"}`,
		`tributary_stream_open_shards{stream="telemetry"} 2`} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

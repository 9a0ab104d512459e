package server_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// TestMonitorOnKafka: on the kafka backend the monitor reads the
// telemetry topic as the consumer group tributary-monitor: the dashboard's
// fleet state follows the records, a spike becomes an alert on the API and
// a JSON record in the alerts topic, and the group's committed offsets
// reach the end of every partition.
func TestMonitorOnKafka(t *testing.T) {
	k := testenv.StartKafka(t, testenv.KafkaOptions{})
	r := start(t, kafkaConfig(t.TempDir(), k.Addr), shardstore.Options{})
	tok, err := r.s.Tokens().Issue("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	admin := "http://" + r.s.AdminAddr()
	rs := series(3, 1000, 1, 900)
	ship(t, newSrc(rs), uplink.Config{URL: "http://" + r.s.Addr(), Token: tok})

	var ov struct {
		Devices  struct{ Total, Online int }
		Readings int
	}
	testenv.WaitFor(t, "the monitor to see every reading", 30*time.Second, func() bool {
		getJSON(t, admin+"/api/v1/overview", &ov)
		return ov.Readings == len(rs)
	})
	if ov.Devices.Total != 3 {
		t.Errorf("overview: %+v, want 3 devices", ov)
	}
	spikeAt := time.UnixMicro(rs[900*3+1].Time).UTC()
	isSpike := func(a anomaly.Alert) bool {
		return a.Device == "node-1" && a.Metric == "temperature" && a.Time.Equal(spikeAt)
	}
	var al struct{ Alerts []monitor.AlertEntry }
	testenv.WaitFor(t, "an alert for the spike", 20*time.Second, func() bool {
		getJSON(t, admin+"/api/v1/alerts", &al)
		return slices.ContainsFunc(al.Alerts, func(e monitor.AlertEntry) bool { return isSpike(e.Alert) })
	})

	// The alerts topic holds it, keyed by device.
	var inTopic bool
	testenv.WaitFor(t, "the spike alert in the alerts topic", 20*time.Second, func() bool {
		for _, rec := range readTopic(t, k.Addr, "alerts") {
			var a anomaly.Alert
			if err := json.Unmarshal(rec.Value, &a); err != nil {
				t.Fatalf("alerts record %q: %v", rec.Value, err)
			}
			if string(rec.Key) != a.Device {
				t.Errorf("alert of %s keyed %q", a.Device, rec.Key)
			}
			inTopic = inTopic || isSpike(a)
		}
		return inTopic
	})

	// The group committed every partition to its end.
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	testenv.WaitFor(t, "tributary-monitor's offsets at the end of telemetry", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, "telemetry")
		if err != nil {
			return false
		}
		got, err := adm.FetchOffsets(ctx, server.DefaultMonitorApplication)
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := got.Lookup("telemetry", e.Partition); e.Offset > 0 && (!ok || o.At != e.Offset) {
				done = false
			}
		})
		return done
	})
	body := get(t, admin+"/metrics")
	for _, m := range []string{`tributary_consumer_lag_records{application="tributary-monitor"`, "tributary_consumer_readings_total", "tributary_alerts_sent_total"} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

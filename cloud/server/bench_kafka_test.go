package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// BenchmarkDeviceToConsumer measures, on the embedded store and on the
// kafka backend in the same run, the time from a gateway's upload of a
// batch stamped "now" (device time = upload time) until the cloud's own
// monitor consumer has handled every reading of it (the dashboard's
// overview counts them): ingest, the stream write (fsync on both), and
// the consumer's read — polling on the embedded store, a long-polling
// consumer group fetch on Kafka. One batch (10 devices × 3 metrics) per
// iteration, one at a time; p50/p99 per batch are reported. The Kafka
// broker is franz-go's kfake as its own process with fsynced writes
// (testenv.StartKafka), not a real Kafka: the figure is the path's
// overhead, not a cluster's.
//
//	go test -run '^$' -bench DeviceToConsumer -benchtime 200x ./cloud/server
func BenchmarkDeviceToConsumer(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		benchDeviceToConsumer(b, server.Config{Data: b.TempDir()})
	})
	b.Run("kafka", func(b *testing.B) {
		k := testenv.StartKafka(b, testenv.KafkaOptions{})
		benchDeviceToConsumer(b, kafkaConfig(b.TempDir(), k.Addr))
	})
}

func benchDeviceToConsumer(b *testing.B, cfg server.Config) {
	cfg.Listen, cfg.Admin.Listen, cfg.KinesisListen = "127.0.0.1:0", "127.0.0.1:0", "off"
	s := benchServer(b, cfg)
	tok, err := s.Tokens().Issue("gw-1")
	if err != nil {
		b.Fatal(err)
	}
	url, overview := "http://"+s.Addr()+"/v1/ingest", "http://"+s.AdminAddr()+"/api/v1/overview"
	handled := func() int {
		var ov struct{ Readings int }
		resp, err := http.Get(overview)
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&ov)
		return ov.Readings
	}
	post := func(i int) {
		now := time.Now().UnixMicro()
		batch := &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: uint64(i*30 + 1)}
		for d := range 10 {
			dev := fmt.Sprintf("node-%02d", d)
			for _, m := range []string{"temperature", "humidity", "pressure"} {
				batch.Readings = append(batch.Readings, protocol.Reading{Device: dev, Name: m, Kind: protocol.KindFloat, Value: 20, Time: now, Received: now})
			}
		}
		raw, err := protocol.AppendBatch(nil, batch)
		if err != nil {
			b.Fatal(err)
		}
		for {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(raw))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", protocol.ContentTypeBatch)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
				b.Fatalf("upload: HTTP %d", resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond) // the consumer group or topic is not ready yet
		}
	}
	// Warm up: the first batch waits for the consumer to start (a group
	// join on Kafka).
	post(0)
	if !testenv.Poll(60*time.Second, func() bool { return handled() == 30 }) {
		b.Fatal("the monitor did not handle the first batch within 60s")
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		begin := time.Now()
		post(i + 1)
		want := 30 * (i + 2)
		for handled() < want {
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(begin))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// benchServer runs a cloud on cfg (an unthrottled embedded store, logs
// discarded) until the benchmark ends.
func benchServer(b *testing.B, cfg server.Config) *server.Server {
	b.Helper()
	s, err := server.New(b.Context(), cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		StoreOptions: shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return s
}

package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/klauspost/compress/zstd"

	"github.com/tributary-iot/tributary/cloud/kinesisapi/kinesisapitest"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// BenchmarkIngest posts realistic gateway batches over HTTP into the
// ingest API backed by the embedded shard store (throughput limits off, so
// the pipeline is measured, not Kinesis's per-shard quotas): 4 gateways
// concurrently, each batch 5,000 readings from 100 devices (BME280
// triples), zstd-compressed, as the edge uplink sends them. Every batch is
// decoded, deduped, grouped per device into stream records and committed
// (fsync) before its 200.
//
//	go test -run '^$' -bench Ingest -benchtime 200x ./cloud/server
func BenchmarkIngest(b *testing.B) {
	benchIngest(b, server.Config{Data: b.TempDir(), Listen: "127.0.0.1:0", KinesisListen: "off"})
}

// BenchmarkIngestBackends is BenchmarkIngest on each stream backend, in
// one run: the embedded store, Kafka (franz-go's kfake as its own broker
// process: a fake broker, so this measures our produce path and the
// protocol, not a Kafka cluster's disks and replication), and Kinesis
// (kinesalite; the kinesis backend paces itself at Kinesis's per-shard
// limits, 1,000 records/s per shard, so with 4 shards it is bounded by
// those). The monitor is off: produce only.
//
//	go test -run '^$' -bench IngestBackends -benchtime 100x ./cloud/server
func BenchmarkIngestBackends(b *testing.B) {
	off := false
	b.Run("embedded", func(b *testing.B) {
		benchIngest(b, server.Config{Data: b.TempDir(), Listen: "127.0.0.1:0", KinesisListen: "off", Monitor: server.MonitorConfig{Enabled: &off}})
	})
	b.Run("kafka", func(b *testing.B) {
		k := testenv.StartKafka(b, testenv.KafkaOptions{})
		benchIngest(b, server.Config{Data: b.TempDir(), Listen: "127.0.0.1:0", KinesisListen: "off", Monitor: server.MonitorConfig{Enabled: &off},
			Stream: server.StreamConfig{Backend: server.BackendKafka, Kafka: server.KafkaConfig{Brokers: []string{k.Addr}, Partitions: 4}}})
	})
	b.Run("kinesis", func(b *testing.B) {
		k := testenv.StartKinesalite(b)
		c := kinesisapitest.Client(b, k.Endpoint, kinesisapitest.AccessKeyID, kinesisapitest.SecretAccessKey)
		if _, err := c.CreateStream(b.Context(), &kinesis.CreateStreamInput{StreamName: aws.String("telemetry"), ShardCount: aws.Int32(4)}); err != nil {
			b.Fatal(err)
		}
		testenv.WaitFor(b, "stream active", 30*time.Second, func() bool {
			out, err := c.DescribeStreamSummary(b.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("telemetry")})
			return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
		})
		benchIngest(b, server.Config{Data: b.TempDir(), Listen: "127.0.0.1:0", KinesisListen: "off", Monitor: server.MonitorConfig{Enabled: &off},
			Stream: server.StreamConfig{Backend: server.BackendKinesis, Kinesis: server.KinesisConfig{Endpoint: k.Endpoint, Region: "us-east-1",
				AccessKeyID: kinesisapitest.AccessKeyID, SecretAccessKey: kinesisapitest.SecretAccessKey}}})
	})
}

func benchIngest(b *testing.B, cfg server.Config) {
	const gateways, perBatch, devices = 4, 5000, 100
	s := benchServer(b, cfg)
	url := "http://" + s.Addr() + "/v1/ingest"

	enc, _ := zstd.NewWriter(nil)
	tokens := make([]string, gateways)
	var err error
	for g := range tokens {
		if tokens[g], err = s.Tokens().Issue(fmt.Sprintf("gw-%d", g)); err != nil {
			b.Fatal(err)
		}
	}
	// Pre-encode every batch so the benchmark measures the cloud only.
	batches := b.N
	bodies := make([][][]byte, gateways)
	t0 := time.Now().UnixMicro()
	for i := 0; i < batches; i++ {
		g := i % gateways
		batch := &protocol.Batch{Gateway: fmt.Sprintf("gw-%d", g), Epoch: 1, FirstSeq: uint64(len(bodies[g])*perBatch + 1)}
		base := t0 + int64(i)*20_000_000
		for r := 0; r < perBatch/3; r++ {
			dev := fmt.Sprintf("node-%03d", r%devices)
			tm := base + int64(r/devices)*1_000_000 + int64(r%devices)*137
			batch.Readings = append(batch.Readings,
				protocol.Reading{Device: dev, Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat, Value: 21.37 + float64(r%7)/100, Time: tm, Received: tm + 1500},
				protocol.Reading{Device: dev, Name: "humidity", Unit: "%RH", Kind: protocol.KindFloat, Value: 45.123, Time: tm, Received: tm + 1500},
				protocol.Reading{Device: dev, Name: "pressure", Unit: "Pa", Kind: protocol.KindFloat, Value: 101325.25, Time: tm, Received: tm + 1500})
		}
		raw, err := protocol.AppendBatch(nil, batch)
		if err != nil {
			b.Fatal(err)
		}
		bodies[g] = append(bodies[g], enc.EncodeAll(raw, nil))
	}
	var readings atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: gateways}}
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < gateways; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for _, body := range bodies[g] {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tokens[g])
				req.Header.Set("Content-Type", protocol.ContentTypeBatch)
				req.Header.Set("Content-Encoding", "zstd")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("HTTP %d: %s", resp.StatusCode, msg)
					return
				}
				readings.Add(perBatch / 3 * 3)
			}
		}(g)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(readings.Load())/elapsed.Seconds(), "readings/s")
	b.ReportMetric(0, "ns/op")
}

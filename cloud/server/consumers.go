package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/cloud/alerts"
	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/cloud/dashboard"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/protocol"
)

// pipeline is the cloud's own consumer of the telemetry stream: one
// Kinesis consumer (application monitor.application), or on Kafka a member
// of the consumer group of that name, whose handler feeds the monitor
// (dashboard state) and the anomaly detectors, whose alerts go to the
// monitor, the log, the alerts stream (topic) and the webhook.
type pipeline struct {
	s        *Server
	cps      *consumer.Checkpoints // nil on Kafka: offsets are committed to the group
	consumer consumer.Runner
	monitor  *monitor.Monitor
	notes    *monitor.Notes    // acknowledgements and silences (dashboard.db)
	detect   *anomaly.Registry // nil when anomaly detection is off
	alerts   *alerts.Dispatcher
	health   bool // score agent.* readings too
	// latency is device time → handled by this consumer, per reading: the
	// end-to-end delay a polling consumer sees.
	latency prometheus.Histogram
}

// sweepEvery is how often silent series are checked for missing data.
const sweepEvery = 10 * time.Second

func (s *Server) openPipeline(ctx context.Context, api *kinesisapi.Server) error {
	cfg := s.cfg
	if !cfg.MonitorOn() {
		return nil
	}
	p := &pipeline{s: s, health: cfg.Anomaly.IncludeHealth}
	var client consumer.KinesisAPI
	switch {
	case s.store != nil:
		client = inProcessClient(api, cfg.KinesisAPI.Region, cfg.KinesisAPI.Credentials)
	case s.kinesis != nil:
		client = s.kinesis.Client()
	case s.kafka != nil:
	default:
		return errors.New("cloud: monitor: no stream backend")
	}
	var err error
	if client != nil {
		if p.cps, err = consumer.OpenCheckpoints(filepath.Join(cfg.Data, ConsumersFile)); err != nil {
			return err
		}
	}
	s.pipe = p
	p.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tributary_consumer_latency_seconds",
		Help: "Device time to handled by the monitor consumer, per reading (readings stamped by the gateway included).",
		// 10 ms .. ~3 h.
		Buckets: prometheus.ExponentialBucketsRange(0.01, 10000, 25),
	})
	if err := s.reg.Register(p.latency); err != nil {
		return fmt.Errorf("cloud: monitor: %w", err)
	}
	if p.notes, err = monitor.OpenNotes(filepath.Join(cfg.Data, DashboardFile)); err != nil {
		return fmt.Errorf("cloud: %w", err) // Close closes p
	}
	p.monitor = monitor.New(monitor.Options{
		Notes:        p.notes,
		Logger:       s.log.With("component", "monitor"),
		OfflineAfter: cfg.Monitor.OfflineAfter,
		FutureMargin: cfg.Monitor.FutureMargin,
		Shards:       s.shardsForMonitor,
	})
	if err := p.monitor.Register(s.reg); err != nil {
		return fmt.Errorf("cloud: monitor: %w", err)
	}
	if cfg.AnomalyOn() {
		p.detect = anomaly.NewRegistry(anomaly.Config{AlertThreshold: cfg.Anomaly.Threshold, FutureMargin: cfg.Monitor.FutureMargin}, cfg.Anomaly.MaxSeries,
			anomaly.WithLogger(s.log.With("component", "anomaly")))
		if err := p.detect.Register(s.reg); err != nil {
			return fmt.Errorf("cloud: anomaly: %w", err)
		}
		ac := alerts.Config{WebhookURL: cfg.Anomaly.Webhook}
		if ac.WebhookSecret, err = cfg.webhookSecret(nil); err != nil {
			return fmt.Errorf("cloud: %w", err)
		}
		if cfg.Anomaly.AlertsStream != "off" {
			ac.Stream = cfg.Anomaly.AlertsStream
			if s.store != nil { // with Kinesis, it is provisioned outside (deploy/aws)
				if err := s.createStream(ctx, ac.Stream, 1); err != nil {
					return err
				}
			}
		}
		if p.alerts, err = alerts.New(ac, alerts.Options{Backend: s.backend, Logger: s.log, Registerer: s.reg}); err != nil {
			return err
		}
	}
	ccfg := consumer.Config{
		Stream: cfg.Stream.Name, Application: cfg.Monitor.Application,
		StartAt: consumer.StartPosition(cfg.Monitor.StartAt), PollInterval: cfg.Monitor.PollInterval,
		MaxPollInterval: 2 * cfg.Monitor.PollInterval, ListInterval: 10 * time.Second,
	}
	copts := consumer.Options{Logger: s.log, Registerer: s.reg, Checkpoints: p.cps}
	if client != nil {
		p.consumer, err = consumer.New(client, ccfg, p.handle, copts)
	} else {
		p.consumer, err = s.kafkaMonitor(ctx, ccfg, p.handle, copts)
	}
	if err != nil {
		return err
	}
	s.Handle("/", dashboard.Handler(p.monitor.APIHandler()))
	return nil
}

// handle is the consumer's handler. It is idempotent for redelivered
// batches: the monitor ignores points not newer than a series' last, and
// so does the detectors' registry.
func (p *pipeline) handle(ctx context.Context, b consumer.Batch) error {
	now := time.Now().UnixMicro()
	for i := range b.Readings {
		p.latency.Observe(float64(now-b.Readings[i].Time) / 1e6)
	}
	if err := p.monitor.HandleBatch(ctx, b); err != nil {
		return err
	}
	if p.detect == nil {
		return nil
	}
	for i := range b.Readings {
		r := &b.Readings[i]
		if r.Kind != protocol.KindFloat || (!p.health && strings.HasPrefix(r.Name, protocol.HealthPrefix)) {
			continue
		}
		var received time.Time // zero: unknown, not checked against the future margin
		if r.Received != 0 && r.Flags&protocol.FlagReceiverTime == 0 {
			received = time.UnixMicro(r.Received)
		}
		_, evs := p.detect.ObserveReceived(r.Device, r.Name, time.UnixMicro(r.Time), received, r.Value)
		for _, a := range evs {
			p.alert(a)
		}
	}
	return nil
}

// alert records a in the monitor and sends it on, to the webhook too
// unless an operator silenced its device or metric.
func (p *pipeline) alert(a anomaly.Alert) {
	if p.monitor.AddAlert(a) {
		p.alerts.SendSilenced(a)
		return
	}
	p.alerts.Send(a)
}

// run runs the consumer, the alert dispatcher and the missing-data sweep
// until ctx ends.
func (p *pipeline) run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() {
		if err := p.consumer.Run(ctx); err != nil {
			errc <- fmt.Errorf("cloud: monitor consumer: %w", err)
		}
	})
	if p.alerts != nil {
		wg.Go(func() { p.alerts.Run(ctx) })
		wg.Go(func() {
			t := time.NewTicker(sweepEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					for _, a := range p.detect.Sweep(now) {
						p.alert(a)
					}
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (p *pipeline) close() error {
	var errs []error
	if p.notes != nil {
		errs = append(errs, p.notes.Close())
	}
	if p.cps != nil {
		errs = append(errs, p.cps.Close())
	}
	return errors.Join(errs...)
}

// Group timings of the monitor on Kafka: a cloud that died (kill -9)
// hands its partitions over after monitorSessionTimeout (Kafka's own
// default is 45 s; 6 s is the brokers' default minimum).
const (
	monitorSessionTimeout = 10 * time.Second
	monitorHeartbeat      = time.Second
)

// kafkaMonitor is the monitor's consumer on the kafka backend: a member
// of the consumer group monitor.application (default tributary-monitor)
// with the backend's connection settings (brokers, TLS, SASL).
func (s *Server) kafkaMonitor(ctx context.Context, cfg consumer.Config, h consumer.Handler, opts consumer.Options) (*consumer.KafkaConsumer, error) {
	conn, err := s.kafka.Config().ClientOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("cloud: monitor: %w", err)
	}
	conn = append(conn, kgo.SessionTimeout(monitorSessionTimeout), kgo.HeartbeatInterval(monitorHeartbeat),
		kgo.FetchMaxWait(max(cfg.PollInterval, 100*time.Millisecond)))
	return consumer.NewKafka(conn, cfg, h, opts)
}

// shardsForMonitor lists the telemetry stream's shards for the dashboard.
func (s *Server) shardsForMonitor(ctx context.Context) ([]monitor.Shard, error) {
	if s.store == nil {
		return nil, nil // Kinesis: the monitor lists the shards it reads
	}
	info, err := s.store.DescribeStream(s.cfg.Stream.Name)
	if err != nil {
		return nil, err
	}
	lim := s.throughput
	out := make([]monitor.Shard, len(info.Shards))
	for i, sh := range info.Shards {
		out[i] = monitor.Shard{
			ID: sh.ShardID, StartingHashKey: sh.StartingHashKey.String(), EndingHashKey: sh.EndingHashKey.String(),
			Parent: sh.ParentShardID, AdjacentParent: sh.AdjacentParentShardID, Open: sh.Open(),
			StartingSequenceNumber: sh.StartingSequenceNumber, EndingSequenceNumber: sh.EndingSequenceNumber,
			LimitRecordsPerSec: float64(lim.WriteRecordsPerSec), LimitBytesPerSec: float64(lim.WriteBytesPerSec),
		}
	}
	return out, nil
}

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kafkabackend"
)

func (k KafkaConfig) isZero() bool {
	return len(k.Brokers) == 0 && k.Partitions == 0 && k.ReplicationFactor == 0 && k.ClientID == "" &&
		k.TLS == (KafkaTLS{}) && k.SASL == (KafkaSASL{}) && k.DialTimeout == 0 && k.RequestTimeout == 0 && k.MaxBufferedRecords == 0
}

// validate checks stream.kafka (the kafka backend is selected).
func (k KafkaConfig) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(k.Brokers) == 0 {
		add("stream.kafka.brokers: required with stream.backend kafka: the bootstrap brokers, host:port (MSK: the cluster's bootstrap broker string)")
	}
	for _, b := range k.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			add("stream.kafka.brokers: %q is not host:port", b)
		}
	}
	if k.Partitions < 0 || k.Partitions > 10000 {
		add("stream.kafka.partitions: %d: want 1..10000 (0 for the default, %d)", k.Partitions, kafkabackend.DefaultPartitions)
	}
	if k.ReplicationFactor < 0 || k.ReplicationFactor > 16 {
		add("stream.kafka.replication_factor: %d: want 1..16 (3 on MSK; 0 for the default, %d)", k.ReplicationFactor, kafkabackend.DefaultReplicationFactor)
	}
	if k.DialTimeout < 0 || k.RequestTimeout < 0 {
		add("stream.kafka: dial_timeout and request_timeout must not be negative")
	}
	if k.MaxBufferedRecords < 0 {
		add("stream.kafka.max_buffered_records: %d: must not be negative", k.MaxBufferedRecords)
	}
	if err := k.TLS.Validate(); err != nil {
		add("stream.kafka.tls: %v", err)
	}
	s := k.SASL
	switch s.Mechanism {
	case "":
		if s != (KafkaSASL{}) {
			add("stream.kafka.sasl.mechanism: required with a username or password: scram-sha-512 or aws-msk-iam")
		}
	case kafkabackend.MechanismSCRAMSHA512:
		if s.Username == "" {
			add("stream.kafka.sasl.username: required with mechanism scram-sha-512")
		}
		if (s.Password == "") == (s.PasswordFile == "") {
			add("stream.kafka.sasl: give password or password_file (one of them) with mechanism scram-sha-512")
		}
	case kafkabackend.MechanismAWSMSKIAM:
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
			add("stream.kafka.sasl: aws-msk-iam takes its credentials from the AWS credential chain (environment, shared files, IAM role): remove username and password")
		}
		if !k.TLS.On() {
			add("stream.kafka.tls.enabled: MSK IAM authentication needs TLS: set enabled: true")
		}
	default:
		add("stream.kafka.sasl.mechanism: %q: want scram-sha-512 or aws-msk-iam", s.Mechanism)
	}
	return errs
}

// kafkaConfig builds the kafkabackend configuration of stream.kafka: it
// loads the TLS files and the password file.
func (c Config) kafkaConfig() (kafkabackend.Config, error) {
	k := c.Stream.Kafka
	kc := kafkabackend.Config{
		Brokers: k.Brokers, ClientID: k.ClientID, Topic: c.Stream.Name,
		Partitions: k.Partitions, ReplicationFactor: k.ReplicationFactor,
		DialTimeout: k.DialTimeout, RequestTimeout: k.RequestTimeout, MaxBufferedRecords: k.MaxBufferedRecords,
		SASL: kafkabackend.SASLConfig{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: k.SASL.Password},
	}
	if k.TLS.On() {
		tc, err := k.TLS.Load()
		if err != nil {
			return kc, fmt.Errorf("cloud: stream.kafka.tls: %w", err)
		}
		kc.TLS = tc
	}
	if f := k.SASL.PasswordFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return kc, fmt.Errorf("cloud: stream.kafka.sasl.password_file: %w", err)
		}
		kc.SASL.Password = strings.TrimRight(string(b), "\r\n")
		if kc.SASL.Password == "" {
			return kc, fmt.Errorf("cloud: stream.kafka.sasl.password_file: %s is empty", f)
		}
	}
	return kc, nil
}

// openKafka builds the kafka backend and creates the topics that are
// missing. An unreachable cluster does not stop the start (uploads get 503
// until it answers); a refused topic creation does.
func (s *Server) openKafka(ctx context.Context) error {
	cfg := s.cfg
	kc, err := cfg.kafkaConfig()
	if err != nil {
		return err
	}
	kc.Registerer, kc.Logger = s.reg, s.log.With("component", "kafka")
	kc.PutTimeout = cfg.Ingest.PutTimeout
	kb, err := kafkabackend.New(ctx, kc)
	if err != nil {
		return fmt.Errorf("cloud: stream.kafka: %w", err)
	}
	s.kafka = kb
	s.backend = KafkaBackend{Backend: kb, Timeout: throttleWait(cfg)}
	topics := []string{cfg.Stream.Name}
	if a := cfg.Anomaly.AlertsStream; cfg.AnomalyOn() && a != "off" && !slices.Contains(topics, a) {
		topics = append(topics, a)
	}
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	switch err := kb.EnsureTopics(cctx, topics...); {
	case err == nil:
	case errors.Is(err, kafkabackend.ErrPartitionMismatch):
		s.log.Warn("kafka topic partition count differs from stream.kafka.partitions", "err", err)
	case ctx.Err() != nil:
		return fmt.Errorf("cloud: kafka topics: %w", ctx.Err())
	case cctx.Err() != nil:
		s.log.Warn("cannot reach the Kafka brokers to check the topics; starting anyway (uploads get 503 until they answer)", "brokers", kc.Brokers, "err", err)
	default:
		return fmt.Errorf("cloud: kafka topics %v: %w", topics, err)
	}
	return nil
}

// throttleWait is ingest.throttle_wait with its default.
func throttleWait(cfg Config) time.Duration {
	if cfg.Ingest.ThrottleWait > 0 {
		return cfg.Ingest.ThrottleWait
	}
	return ingest.DefaultThrottleWait
}

// KafkaBackend adapts cloud/kafkabackend to ingest.Backend,
// ingest.Scanner and ingest.Settler, bounding each Put by Timeout (the ingest's throttle
// wait): what the brokers did not acknowledge by then is reported as
// throttled (not written) or unknown (sent, not answered).
type KafkaBackend struct {
	Backend *kafkabackend.Backend
	Timeout time.Duration
}

var (
	_ ingest.Backend = KafkaBackend{}
	_ ingest.Scanner = KafkaBackend{}
	_ ingest.Settler = KafkaBackend{}
)

// Put writes entries with kafkabackend.Backend.Put.
func (b KafkaBackend) Put(ctx context.Context, topic string, entries []ingest.Entry) ([]ingest.Result, error) {
	if b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	return b.Backend.Put(ctx, topic, entries)
}

// Scan reads a time range of topic back (kafkabackend.Backend.Scan).
func (b KafkaBackend) Scan(ctx context.Context, topic string, from, to time.Time, fn func([]byte) error) error {
	return b.Backend.Scan(ctx, topic, from, to, fn)
}

// Settle waits for the records Put reported unknown to resolve
// (kafkabackend.Backend.Settle).
func (b KafkaBackend) Settle(ctx context.Context) error { return b.Backend.Settle(ctx) }

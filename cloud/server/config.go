package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/cloud/alerts"
	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/internal/bytesize"
	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/logging"
	"github.com/tributary-iot/tributary/internal/strictyaml"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

// Defaults. A zero field in Config means its default.
const (
	DefaultListen        = ":8080"
	DefaultAdminListen   = "127.0.0.1:8081"
	DefaultKinesisListen = "127.0.0.1:4567"
	// DefaultKinesisMaxInFlight caps the Kinesis API calls in progress on
	// kinesis_listen; beyond it, calls get LimitExceededException at once
	// (the SDKs back off and retry).
	DefaultKinesisMaxInFlight = 64
	DefaultShards             = 4
	DefaultBackend            = BackendEmbedded
	DefaultDrainTimeout       = 10 * time.Second
	DefaultTokenReload        = 2 * time.Second
	DefaultReadTimeout        = 2 * time.Minute // ingest.read_timeout
)

// Stream backends.
const (
	BackendEmbedded = "embedded" // cloud/shardstore in the data folder, with the Kinesis API on kinesis_listen
	BackendKinesis  = "kinesis"  // Amazon Kinesis Data Streams or a compatible endpoint
	BackendKafka    = "kafka"    // Apache Kafka or Amazon MSK (cloud/kafkabackend)
)

// Files in the data folder.
const (
	TokensFile = "tokens.db"
	UsersFile  = "users.db" // admin users (tributary-cloud user add)
	// DashboardFile keeps the dashboard's acknowledgements and silences.
	DashboardFile = "dashboard.db"
	AckLogFile    = "ingest.db"
	StreamsFile   = "streams.db"
)

// Config is tributary-cloud's configuration: YAML decoded strictly
// (unknown keys are errors), defaults in code (WithDefaults), one
// Validate that reports every problem.
type Config struct {
	// Data is the folder for tokens, the ack log and the embedded stream
	// store. Required.
	Data string `yaml:"data"`
	// Listen serves what gateways need: the ingest API and /healthz
	// (default :8080).
	Listen string `yaml:"listen"`
	// KinesisListen serves the Kinesis API of the embedded store (default
	// 127.0.0.1:4567; "off" disables it). A non-loopback address needs
	// kinesis_api.credentials.
	KinesisListen string `yaml:"kinesis_listen"`
	LogFormat     string `yaml:"log_format"` // text (default) or json
	LogLevel      string `yaml:"log_level"`  // debug, info (default), warn, error

	// TLS secures the Listen address. With client_ca_file, clients
	// (gateways) must present a certificate signed by that CA, in addition
	// to their bearer token.
	TLS        tlsfiles.Server  `yaml:"tls"`
	Stream     StreamConfig     `yaml:"stream"`
	Ingest     IngestConfig     `yaml:"ingest"`
	Tokens     TokensConfig     `yaml:"tokens"`
	Admin      AdminConfig      `yaml:"admin"`
	KinesisAPI KinesisAPIConfig `yaml:"kinesis_api"`
	Monitor    MonitorConfig    `yaml:"monitor"`
	Anomaly    AnomalyConfig    `yaml:"anomaly"`

	// DrainTimeout bounds the wait for requests in progress on SIGTERM
	// (default 10s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// StreamConfig selects where stream records go.
type StreamConfig struct {
	Name    string `yaml:"name"`    // default "telemetry"
	Backend string `yaml:"backend"` // embedded (default), kinesis or kafka
	// Shards is the shard count the stream is created with when missing
	// (embedded; default 4).
	Shards int `yaml:"shards"`
	// ReadsPerSec is the embedded store's GetRecords limit per shard
	// (default 40). Kinesis allows 5, shared by every consumer of a
	// shard; the embedded store allows more so that the built-in monitor
	// can poll every 50 ms (device-to-dashboard latency well under a
	// second) beside a few outside consumers. Set 5 to behave exactly like
	// Kinesis.
	ReadsPerSec int `yaml:"reads_per_sec"`
	// WriteRecordsPerSec and WriteBytesPerSec are the embedded store's
	// write limits per shard (defaults 1000 and 1MiB, as Kinesis). Lower
	// them to rehearse resharding on a small load (the autoscaling load
	// test does).
	WriteRecordsPerSec int           `yaml:"write_records_per_sec"`
	WriteBytesPerSec   bytesize.Size `yaml:"write_bytes_per_sec"`
	Kinesis            KinesisConfig `yaml:"kinesis"`
	Kafka              KafkaConfig   `yaml:"kafka"`
	// Autoscale reshards the stream to fit its load (embedded or
	// kinesis; see package autoscale).
	Autoscale autoscale.Config `yaml:"autoscale"`
}

// KafkaConfig points the kafka backend at Apache Kafka or Amazon MSK. The
// topics (stream.name and anomaly.alerts_stream) are created at start if
// missing, with Partitions and ReplicationFactor; an existing topic is
// never changed (a warning says when its partition count differs).
type KafkaConfig struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string `yaml:"brokers"`
	// Partitions of the topics created (default 4). Fix it for good at
	// the start: adding partitions later moves devices to other partitions.
	Partitions int32 `yaml:"partitions"`
	// ReplicationFactor of the topics created (default 1; 3 on MSK).
	ReplicationFactor int16 `yaml:"replication_factor"`
	// ClientID names the client to the brokers (default tributary-cloud).
	ClientID string `yaml:"client_id"`
	// TLS encrypts the connections (MSK: enabled: true, the system roots
	// verify the brokers). With only enabled set, the system roots verify.
	TLS KafkaTLS `yaml:"tls"`
	// SASL authenticates: scram-sha-512 (username and password or
	// password_file) or aws-msk-iam (the default AWS credential chain).
	SASL KafkaSASL `yaml:"sasl"`
	// DialTimeout bounds connecting to a broker (default 10s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// RequestTimeout is how long a broker may take to answer a produce
	// request with acks=all (default 10s).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxBufferedRecords bounds the records the producer holds (default
	// 10000); beyond it uploads get 429 until the brokers catch up.
	MaxBufferedRecords int `yaml:"max_buffered_records"`
}

// KafkaTLS is the TLS towards the brokers: Enabled, and the files of
// tlsfiles.Client (any of them implies Enabled).
type KafkaTLS struct {
	Enabled         bool `yaml:"enabled"`
	tlsfiles.Client `yaml:",inline"`
}

// On reports whether TLS is used.
func (t KafkaTLS) On() bool { return t.Enabled || !t.Client.IsZero() }

// KafkaSASL is SASL authentication towards the brokers.
type KafkaSASL struct {
	Mechanism    string `yaml:"mechanism"` // scram-sha-512 or aws-msk-iam; empty: none
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"` // a file holding the password (trailing newline ignored)
}

// KinesisConfig points the kinesis backend at Amazon Kinesis (Endpoint
// empty) or a compatible API. Credentials come from the default AWS chain
// unless given.
type KinesisConfig struct {
	Region          string `yaml:"region"`
	Endpoint        string `yaml:"endpoint"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
}

// IngestConfig tunes POST /v1/ingest (see package ingest).
type IngestConfig struct {
	MaxBytes     bytesize.Size `yaml:"max_bytes"`     // default and at most 8MiB
	MaxInFlight  int           `yaml:"max_in_flight"` // default 32
	ThrottleWait time.Duration `yaml:"throttle_wait"` // default 1s
	RetryAfter   time.Duration `yaml:"retry_after"`   // default 1s
	PutTimeout   time.Duration `yaml:"put_timeout"`   // default 30s
	EpochTTL     time.Duration `yaml:"epoch_ttl"`     // default 720h
	MaxRanges    int           `yaml:"max_ranges"`    // default 1024
	// ReadTimeout bounds the reading of one whole request, body included
	// (default 2m: 8MiB at ~600 kbit/s); a client that trickles its body
	// is cut off then.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// MaxInFlightPerGateway bounds one gateway's requests in progress,
	// body reading included (default 8; at least the agents'
	// uplink.max_in_flight); one more gets 429 with Retry-After.
	MaxInFlightPerGateway int `yaml:"max_in_flight_per_gateway"`
	// MaxDevicesPerGateway and MaxSeriesPerGateway bound the devices and
	// (device, metric) series one gateway may send (defaults 10000 and
	// 100000); readings beyond them are acknowledged but not stored, and
	// counted (tributary_ingest_capped_readings_total). SeriesTTL: a
	// series not sent this long stops counting (default 720h).
	MaxDevicesPerGateway int           `yaml:"max_devices_per_gateway"`
	MaxSeriesPerGateway  int           `yaml:"max_series_per_gateway"`
	SeriesTTL            time.Duration `yaml:"series_ttl"`
}

// TokensConfig: how often the server looks for tokens issued or revoked
// by `tributary-cloud token`, and admin users added, changed or removed by
// `tributary-cloud user` (default 2s).
type TokensConfig struct {
	ReloadEvery time.Duration `yaml:"reload_every"`
}

// KinesisAPIConfig secures the embedded store's Kinesis API. With
// Credentials (access key id → secret key) every request must be signed
// (AWS Signature Version 4) by one of them; without, any client is
// accepted, so kinesis_listen must then be a loopback address.
type KinesisAPIConfig struct {
	Region      string            `yaml:"region"`
	Credentials map[string]string `yaml:"credentials"`
	// MaxInFlight caps the calls in progress on kinesis_listen (default
	// 64); beyond it, a call gets LimitExceededException at once.
	MaxInFlight int `yaml:"max_in_flight"`
	// TLS secures kinesis_listen (clients then use https://;
	// client_ca_file: they need a certificate from that CA too).
	TLS tlsfiles.Server `yaml:"tls"`
}

// AdminConfig is the admin listener: the dashboard, /api/v1 (with its
// event stream), /metrics, /healthz and /debug/pprof. On a loopback
// address (the default) it needs no login until an admin user or a token
// exists; on any other, users (`tributary-cloud user add`, kept in
// users.db in the data folder) or Tokens/TokenFiles must exist. Then
// every request must carry a session cookie (from the login page, /login)
// or one of the tokens as "Authorization: Bearer TOKEN" (never in the
// URL).
type AdminConfig struct {
	// Listen is the admin listener's address (default 127.0.0.1:8081;
	// "off" disables it).
	Listen string `yaml:"listen"`
	// Tokens are the SHA-256 hashes of the accepted bearer tokens, each
	// "sha256:" and 64 hex digits (`tributary-cloud admin-token` prints a
	// new token and its entry; or printf %s "$TOKEN" | sha256sum): the
	// config holds nothing that logs in.
	Tokens []string `yaml:"tokens"`
	// TokenFiles are files that each hold one accepted token (systemd
	// credentials, Kubernetes secrets), read at start.
	TokenFiles []string `yaml:"token_files"`
	// Hosts are the Host header names accepted besides loopback names
	// and addresses and the listen address's own host: the names the
	// dashboard is reached by (cloud.example.com). Any other Host gets
	// 421, which defeats DNS rebinding.
	Hosts []string `yaml:"hosts"`
	// TLS secures the admin listener (client_ca_file: clients need a
	// certificate from that CA too). With it, the session cookie is
	// Secure (and named __Host-tributary_session).
	TLS tlsfiles.Server `yaml:"tls"`
	// SessionTTL is how long a login lasts at most (default 12h);
	// SessionIdle ends a session unused this long before (default 1h).
	SessionTTL  time.Duration `yaml:"session_ttl"`
	SessionIdle time.Duration `yaml:"session_idle"`
}

// Defaults of the admin sessions.
const (
	DefaultSessionTTL  = 12 * time.Hour
	DefaultSessionIdle = time.Hour
)

// MonitorConfig is the cloud's own consumer of the stream: it feeds the
// dashboard's fleet state and the anomaly detectors. It reads the stream
// through the Kinesis API with the SDK (in process for the embedded store),
// checkpointing in the data folder (consumers.db); with stream.backend
// kafka it is a member of the consumer group Application, committing its
// offsets to the group (cloud/consumer.KafkaConsumer).
type MonitorConfig struct {
	Enabled *bool `yaml:"enabled"` // default true
	// Application names the checkpoints (default "tributary-monitor").
	Application string `yaml:"application"`
	// StartAt is where a first start reads from: TRIM_HORIZON (default:
	// everything still in the stream) or LATEST.
	StartAt string `yaml:"start_at"`
	// PollInterval between GetRecords calls per shard (default 50ms with
	// the embedded store, 200ms with Kinesis: its limit is 5 reads/s per
	// shard).
	PollInterval time.Duration `yaml:"poll_interval"`
	// OfflineAfter: a device or gateway silent this long shows offline
	// (default 60s).
	OfflineAfter time.Duration `yaml:"offline_after"`
	// FutureMargin: a reading stamped more than this after its gateway
	// receive time (a device clock ahead) is counted
	// (tributary_monitor_future_readings_total) but neither charted nor
	// scored by the anomaly detectors, and does not advance its series'
	// clock, so one bad clock cannot blind a series. Default 10m; a
	// negative value disables the check.
	FutureMargin time.Duration `yaml:"future_margin"`
}

// AnomalyConfig tunes the live anomaly detectors (package anomaly): one
// per (device, metric), fed by the monitor consumer.
type AnomalyConfig struct {
	Enabled *bool `yaml:"enabled"` // default true (needs the monitor)
	// Threshold is the score from which an alert is raised (default 0.6,
	// the anomaly package's).
	Threshold float64 `yaml:"threshold"`
	// MaxSeries bounds the detectors kept (default 6000: at most 84 KB
	// each, so 481 MiB, within a 512 MiB budget; see anomaly.SeriesBytes).
	// A new series that finds no room takes the place of one silent for an
	// hour, or else is not scored (tributary_anomaly_unscored_points_total)
	// until a place frees: the series being scored keep their detectors.
	MaxSeries int `yaml:"max_series"`
	// AlertsStream receives every alert as a JSON record (default
	// "alerts", created if missing with the embedded store; "off"
	// disables it).
	AlertsStream string `yaml:"alerts_stream"`
	// Webhook, if set, gets every alert as a JSON POST, signed (header
	// X-Tributary-Signature, see package alerts) when a secret is set.
	// Redirects are not followed. The URL is redacted in logs (user info
	// and query values: keep secrets there if the receiver wants them).
	Webhook string `yaml:"webhook"`
	// WebhookSecret keys the payloads' HMAC-SHA256 signature; or
	// WebhookSecretFile names a file holding it (systemd credentials,
	// Kubernetes secrets); or the environment variable
	// TRIBUTARY_WEBHOOK_SECRET sets it. At most one of the three.
	WebhookSecret     string `yaml:"webhook_secret"`
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	// IncludeHealth also scores the gateways' own health readings
	// (agent.*): backlog growth, say. Default off.
	IncludeHealth bool `yaml:"include_health"`
}

// Defaults of the monitor and anomaly sections.
const (
	DefaultMonitorApplication = "tributary-monitor"
	DefaultMonitorPoll        = 50 * time.Millisecond
	DefaultMonitorPollKinesis = 200 * time.Millisecond
	DefaultReadsPerSec        = 40
	DefaultOfflineAfter       = time.Minute
	DefaultFutureMargin       = 10 * time.Minute
	DefaultAlertThreshold     = 0.6
	DefaultMaxSeries          = anomaly.DefaultMaxSeries
	DefaultAlertsStream       = "alerts"
	ConsumersFile             = "consumers.db"
)

// MonitorOn reports whether the monitor consumer runs.
func (c Config) MonitorOn() bool { return c.Monitor.Enabled == nil || *c.Monitor.Enabled }

// AnomalyOn reports whether the anomaly detectors run.
func (c Config) AnomalyOn() bool {
	return c.MonitorOn() && (c.Anomaly.Enabled == nil || *c.Anomaly.Enabled)
}

// LoadConfig reads and strictly decodes a YAML file (one document,
// unknown keys are errors). It does not validate: flags may still fill in
// fields.
func LoadConfig(path string) (Config, error) { return strictyaml.File[Config](path) }

// ParseConfig strictly decodes YAML.
func ParseConfig(b []byte) (Config, error) { return strictyaml.Bytes[Config](b) }

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	defaults.Set(&c.Listen, DefaultListen)
	defaults.Set(&c.KinesisListen, DefaultKinesisListen)
	defaults.Set(&c.KinesisAPI.MaxInFlight, DefaultKinesisMaxInFlight)
	defaults.Set(&c.Admin.Listen, DefaultAdminListen)
	defaults.Set(&c.Admin.SessionTTL, DefaultSessionTTL)
	defaults.Set(&c.Admin.SessionIdle, DefaultSessionIdle)
	defaults.Set(&c.LogFormat, "text")
	defaults.Set(&c.LogLevel, "info")
	defaults.Set(&c.Stream.Name, protocol.DefaultStream)
	defaults.Set(&c.Stream.Backend, DefaultBackend)
	defaults.Set(&c.Stream.Shards, DefaultShards)
	defaults.Set(&c.Ingest.MaxBytes, protocol.MaxBatchBytes)
	defaults.Set(&c.Ingest.ReadTimeout, DefaultReadTimeout)
	defaults.Set(&c.Tokens.ReloadEvery, DefaultTokenReload)
	defaults.Set(&c.DrainTimeout, DefaultDrainTimeout)
	defaults.Set(&c.Monitor.Application, DefaultMonitorApplication)
	defaults.Set(&c.Monitor.StartAt, "TRIM_HORIZON")
	if c.Monitor.PollInterval == 0 {
		c.Monitor.PollInterval = DefaultMonitorPoll
		if c.Stream.Backend == BackendKinesis || c.Stream.Backend == BackendKafka {
			c.Monitor.PollInterval = DefaultMonitorPollKinesis
		}
	}
	defaults.Set(&c.Stream.ReadsPerSec, DefaultReadsPerSec)
	c.Stream.Autoscale = c.Stream.Autoscale.WithDefaults()
	defaults.Set(&c.Monitor.OfflineAfter, DefaultOfflineAfter)
	defaults.Set(&c.Monitor.FutureMargin, DefaultFutureMargin)
	defaults.Set(&c.Anomaly.Threshold, DefaultAlertThreshold)
	defaults.Set(&c.Anomaly.MaxSeries, DefaultMaxSeries)
	defaults.Set(&c.Anomaly.AlertsStream, DefaultAlertsStream)
	return c
}

// Validate reports every problem at once, each saying what to fix. Call it
// on a config with defaults applied.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Data == "" {
		add("data: required: the folder for tokens, the ack log and the stream store (-data)")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port", c.Listen)
	}
	if c.KinesisListen != "off" {
		if _, _, err := net.SplitHostPort(c.KinesisListen); err != nil {
			add("kinesis_listen: %q is not host:port (or off)", c.KinesisListen)
		} else if !IsLoopback(c.KinesisListen) && len(c.KinesisAPI.Credentials) == 0 && c.Stream.Backend == BackendEmbedded {
			add("kinesis_listen: %q is not a loopback address: set kinesis_api.credentials so that every call must be signed, or listen on 127.0.0.1", c.KinesisListen)
		}
	}
	if err := c.KinesisAPI.TLS.Validate(); err != nil {
		add("kinesis_api.tls: %v", err)
	}
	if c.KinesisAPI.MaxInFlight < 1 {
		add("kinesis_api.max_in_flight: %d: want at least 1", c.KinesisAPI.MaxInFlight)
	}
	errs = append(errs, c.Admin.validate()...)
	if err := logging.Validate(c.LogFormat, c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if err := c.TLS.Validate(); err != nil {
		add("tls: %v", err)
	}
	if len(c.Stream.Name) > 128 || strings.Trim(c.Stream.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
		add("stream.name: %q: want 1-128 characters of [a-zA-Z0-9_.-]", c.Stream.Name)
	}
	if c.Stream.Backend != BackendKinesis && c.Stream.Kinesis != (KinesisConfig{}) {
		add("stream.kinesis: configures the kinesis backend, but stream.backend is %s", c.Stream.Backend)
	}
	if c.Stream.Backend != BackendKafka && !c.Stream.Kafka.isZero() {
		add("stream.kafka: configures the kafka backend, but stream.backend is %s", c.Stream.Backend)
	}
	switch c.Stream.Backend {
	case BackendEmbedded:
	case BackendKafka:
		errs = append(errs, c.Stream.Kafka.validate()...)
	case BackendKinesis:
		k := c.Stream.Kinesis
		if k.Endpoint != "" {
			if u, err := url.Parse(k.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add("stream.kinesis.endpoint: %q: want http(s)://host[:port], or leave it empty for AWS", k.Endpoint)
			}
		}
		if (k.AccessKeyID == "") != (k.SecretAccessKey == "") {
			add("stream.kinesis: access_key_id and secret_access_key go together (or leave both empty for the default AWS credential chain)")
		}
	default:
		add("stream.backend: %q: want embedded, kinesis or kafka", c.Stream.Backend)
	}
	if c.Stream.ReadsPerSec < 1 || c.Stream.ReadsPerSec > 1000 {
		add("stream.reads_per_sec: %d: want 1..1000 GetRecords per second per shard", c.Stream.ReadsPerSec)
	}
	if c.Stream.Shards < 1 || c.Stream.Shards > 1000 {
		add("stream.shards: %d: want 1..1000", c.Stream.Shards)
	}
	if c.Stream.WriteRecordsPerSec < 0 || c.Stream.WriteRecordsPerSec > 1_000_000 {
		add("stream.write_records_per_sec: %d: want 1..1000000 records per second per shard, or 0 for Kinesis's 1000", c.Stream.WriteRecordsPerSec)
	}
	if c.Stream.WriteBytesPerSec < 0 || c.Stream.WriteBytesPerSec > 1<<30 {
		add("stream.write_bytes_per_sec: %d: want up to 1GiB per second per shard, or 0 for Kinesis's 1MiB", c.Stream.WriteBytesPerSec)
	}
	if c.Stream.Autoscale.Enabled {
		if err := c.Stream.Autoscale.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Ingest.MaxBytes < 1<<10 || c.Ingest.MaxBytes > protocol.MaxBatchBytes {
		add("ingest.max_bytes: %d: want 1KiB..%d", c.Ingest.MaxBytes, protocol.MaxBatchBytes)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ingest.throttle_wait", c.Ingest.ThrottleWait}, {"ingest.retry_after", c.Ingest.RetryAfter},
		{"ingest.put_timeout", c.Ingest.PutTimeout}, {"ingest.epoch_ttl", c.Ingest.EpochTTL}, {"ingest.read_timeout", c.Ingest.ReadTimeout},
		{"ingest.series_ttl", c.Ingest.SeriesTTL},
		{"tokens.reload_every", c.Tokens.ReloadEvery}, {"drain_timeout", c.DrainTimeout},
		{"monitor.poll_interval", c.Monitor.PollInterval}, {"monitor.offline_after", c.Monitor.OfflineAfter}} {
		if d.v < 0 {
			add("%s: must not be negative", d.name)
		}
	}
	if c.Ingest.MaxInFlight < 0 || c.Ingest.MaxRanges < 0 || c.Ingest.MaxInFlightPerGateway < 0 ||
		c.Ingest.MaxDevicesPerGateway < 0 || c.Ingest.MaxSeriesPerGateway < 0 {
		add("ingest: max_in_flight, max_ranges, max_in_flight_per_gateway, max_devices_per_gateway and max_series_per_gateway must not be negative")
	}
	if c.Monitor.StartAt != "TRIM_HORIZON" && c.Monitor.StartAt != "LATEST" {
		add("monitor.start_at: %q: want TRIM_HORIZON or LATEST", c.Monitor.StartAt)
	}
	if !(c.Anomaly.Threshold > 0 && c.Anomaly.Threshold <= 1) {
		add("anomaly.threshold: %v: want a score in (0, 1]", c.Anomaly.Threshold)
	}
	if c.Anomaly.MaxSeries < 0 {
		add("anomaly.max_series: %d: must not be negative", c.Anomaly.MaxSeries)
	}
	if a := c.Anomaly.AlertsStream; a != "off" {
		if len(a) > 128 || strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
			add("anomaly.alerts_stream: %q: want 1-128 characters of [a-zA-Z0-9_.-], or off", a)
		} else if a == c.Stream.Name {
			add("anomaly.alerts_stream: %q is the telemetry stream: pick another name", a)
		}
	}
	if w := c.Anomaly.Webhook; w != "" {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("anomaly.webhook: %q: want an http:// or https:// URL", alerts.RedactURL(w))
		}
	}
	if c.Anomaly.Webhook == "" && (c.Anomaly.WebhookSecret != "" || c.Anomaly.WebhookSecretFile != "") {
		add("anomaly.webhook_secret: set, but there is no anomaly.webhook to sign for")
	}
	if s := c.Anomaly.WebhookSecret; s != "" && len(s) < 16 {
		add("anomaly.webhook_secret: %d characters: want at least 16 (openssl rand -hex 32)", len(s))
	}
	for id, secret := range c.KinesisAPI.Credentials {
		if id == "" || secret == "" {
			add("kinesis_api.credentials: access key ids and secret keys must not be empty")
		}
	}
	return errors.Join(errs...)
}

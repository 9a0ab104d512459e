package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/brokerurl"
	"github.com/tributary-iot/tributary/internal/bytesize"
	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/logging"
	"github.com/tributary-iot/tributary/internal/strictyaml"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

// Defaults. A zero field in Config means its default.
const (
	// DefaultListen is where /metrics and /healthz are served. Not 9100:
	// node_exporter holds it on many gateways, and Prometheus' list of
	// default exporter ports ("Default port allocations" on its wiki) has
	// filled the whole 9100-9999 range, so any port there belongs to some
	// exporter. 8284 is outside it and is not the default of common
	// monitoring software on gateways (Prometheus 9090, Pushgateway 9091,
	// Alertmanager 9093, Grafana 3000, Loki 3100, Promtail 9080, Telegraf
	// 8094/8125/8186, InfluxDB 8086, OTLP 4317/4318, VictoriaMetrics
	// 8428/8429, HAProxy 8404) nor one of Tributary's (1883, 8080, 8081,
	// 4567).
	DefaultListen        = ":8284"
	DefaultMQTTListen    = ":1883"
	DefaultQueueMaxBytes = 1 << 30 // 1 GiB
	DefaultPolicy        = "block"
	DefaultHealthEvery   = 10 * time.Second
	DefaultFutureMargin  = 10 * time.Minute
	DefaultCompression   = "zstd"
	DefaultDrainTimeout  = 10 * time.Second
	DefaultMemoryLimit   = 0
	DefaultCommitEvery   = 2 * time.Millisecond
)

// Where the agent looks for its bearer token when neither cloud.token nor
// cloud.token_file is set (WithEnvToken).
const (
	// CredentialName is the systemd credential read from
	// $CREDENTIALS_DIRECTORY, e.g. from the unit's
	// LoadCredential=tributary-token:/etc/tributary/token.
	CredentialName = "tributary-token"
	// TokenEnv is the environment variable holding the token.
	TokenEnv = "TRIBUTARY_TOKEN"
)

// Config is the agent's configuration: YAML decoded strictly (unknown keys
// are errors), defaults in code, one Validate that reports every problem.
type Config struct {
	// Gateway is this gateway's id (device id rules). Required.
	Gateway string `yaml:"gateway"`
	// Data is the folder for the queue database. Required.
	Data string `yaml:"data"`
	// Listen serves /metrics and /healthz. Default ":8284" (DefaultListen).
	Listen string `yaml:"listen"`
	// LogFormat is "text" (default) or "json"; LogLevel debug|info|warn|error.
	LogFormat string `yaml:"log_format"`
	LogLevel  string `yaml:"log_level"`

	MQTT   MQTTConfig   `yaml:"mqtt"`
	Queue  QueueConfig  `yaml:"queue"`
	Cloud  CloudConfig  `yaml:"cloud"`
	Local  LocalConfig  `yaml:"local"`
	Health HealthConfig `yaml:"health"`
	Clock  ClockConfig  `yaml:"clock"`

	// DrainTimeout bounds the flush on SIGTERM. Default 10s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT):
	// the garbage collector works harder near it instead of letting the
	// heap double. Default 0: none. On a small gateway with ~100 devices,
	// 32MiB keeps RSS near 45 MiB at 10,000 readings/s; do not set it
	// below the live heap (about 15 MiB + 50 KiB per connected device),
	// or the collector runs constantly.
	MemoryLimit *bytesize.Size `yaml:"memory_limit"`

	tokenFromEnv bool // WithEnvToken took cloud.token from $TRIBUTARY_TOKEN
}

// MQTTConfig selects the intake: an external broker (Broker set) or the
// embedded one (the default, listening on Listen).
type MQTTConfig struct {
	Broker   string          `yaml:"broker"`    // tcp://host:1883 or ssl://host:8883; empty = embedded broker
	ClientID string          `yaml:"client_id"` // external: default tributary-agent-{gateway}
	Username string          `yaml:"username"`
	Password string          `yaml:"password"`
	TLS      tlsfiles.Client `yaml:"tls"`
	// MaxInFlight bounds messages being committed at once. Default 1024.
	MaxInFlight int `yaml:"max_in_flight"`

	// Embedded broker. Device passwords live hashed in the data folder
	// (devices.json: `tributary-agent device add|remove|list`), read again
	// within a second when they change.
	Listen string `yaml:"listen"` // default ":1883"
	// Users held plain-text device passwords; they are refused now, with
	// how to move them to the device file (device add -password-stdin).
	Users        []UserConfig `yaml:"users"`
	ClientCAFile string       `yaml:"client_ca_file"` // require device client certificates signed by this CA
	// AllowAnonymous admits devices without credentials on a listener
	// reachable from the network (logged as a warning at every start).
	// Without device passwords or client_ca_file, anonymous devices are otherwise
	// admitted only on a loopback listen address, and any other address
	// is refused at start.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// StrictIdentity holds each device to its own id (certificate CN or
	// username), its last will included. Default: on when devices have
	// passwords or client_ca_file is set.
	StrictIdentity *bool `yaml:"strict_identity"`
	// MaxClients bounds the broker's open connections (CONNECT sent or
	// not), MaxClientsPerSource those from one address (loopback
	// excepted), and ConnectTimeout the time a new connection has to send
	// CONNECT. Defaults 10000, 256 and 10s; every connection closed by
	// them is counted in tributary_intake_connections_refused_total.
	MaxClients          int           `yaml:"max_clients"`
	MaxClientsPerSource int           `yaml:"max_clients_per_source"`
	ConnectTimeout      time.Duration `yaml:"connect_timeout"`
}

// UserConfig was a plain-text device credential (mqtt.users): refused,
// see MQTTConfig.Users.
type UserConfig struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// QueueConfig sizes the durable queue.
type QueueConfig struct {
	// MaxBytes is the quota for the queue file on disk, e.g. "1GiB".
	MaxBytes bytesize.Size `yaml:"max_bytes"`
	// Policy when full: "block" (stop acknowledging producers) or
	// "drop-oldest" (every dropped reading counted).
	Policy       string `yaml:"policy"`
	DedupeWindow int    `yaml:"dedupe_window"`
	// OnCorrupt is what the agent does when the queue file is damaged:
	// "refuse" (the default: it does not start, and says so) or
	// "quarantine" (for unattended gateways: the file is renamed aside
	// with a timestamp, never deleted, a new queue with a new epoch
	// starts, and /healthz reports "degraded" with the damaged file, as
	// does tributary_queue_damaged_files, until it is deleted).
	OnCorrupt string `yaml:"on_corrupt"`
	// CommitInterval is the least time between two fsynced commits:
	// readings arriving meanwhile share the next one. Default 2ms; it
	// adds at most that to each acknowledgement and saves most of the
	// fsyncs (CPU and flash wear) under light load.
	CommitInterval *time.Duration `yaml:"commit_interval"`
}

// CloudConfig is the uplink.
type CloudConfig struct {
	URL       string          `yaml:"url"`
	Token     string          `yaml:"token"`
	TokenFile string          `yaml:"token_file"`
	TLS       tlsfiles.Client `yaml:"tls"`
	// Insecure allows a plain http:// url to a host other than this one:
	// the token and the readings then cross the network unencrypted
	// (logged as a warning at every start). https, or http to 127.0.0.1,
	// ::1 or localhost, need nothing.
	Insecure     bool          `yaml:"insecure"`
	Compression  string        `yaml:"compression"` // zstd (default), gzip, none
	MaxReadings  int           `yaml:"batch_readings"`
	MaxBytes     bytesize.Size `yaml:"batch_bytes"`
	MaxAge       time.Duration `yaml:"batch_age"`
	BacklogShare *float64      `yaml:"backlog_share"`
	MaxInFlight  int           `yaml:"max_in_flight"`
	Timeout      time.Duration `yaml:"timeout"`
}

// LocalConfig lists sensors on the gateway's own buses.
type LocalConfig struct {
	// Device is the device id of local readings; default the gateway id.
	Device  string        `yaml:"device"`
	Sensors []sensor.Spec `yaml:"sensors"`
}

// HealthConfig controls the agent's own health readings.
type HealthConfig struct {
	// Every is how often the agent publishes its health as readings of the
	// device named after the gateway. Default 10s; negative disables.
	Every time.Duration `yaml:"every"`
}

// ClockConfig controls clock sanity checks.
type ClockConfig struct {
	// RequireNTP flags readings while the kernel reports the clock
	// unsynchronised.
	RequireNTP bool `yaml:"require_ntp"`
	// FutureMargin: readings stamped more than this after the gateway's
	// receive time (a device clock ahead) are kept but counted
	// (tributary_intake_future_readings_total) and logged; the cloud does
	// not chart or score them. Default 10m; negative disables.
	FutureMargin time.Duration `yaml:"future_margin"`
}

// LoadConfig reads and strictly decodes a YAML file (one document,
// unknown keys are errors). It does not validate: flags may still fill in
// fields; call Validate after.
func LoadConfig(path string) (Config, error) { return strictyaml.File[Config](path) }

// ParseConfig strictly decodes YAML.
func ParseConfig(b []byte) (Config, error) { return strictyaml.Bytes[Config](b) }

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	defaults.Set(&c.Listen, DefaultListen)
	defaults.Set(&c.LogFormat, "text")
	defaults.Set(&c.LogLevel, "info")
	if c.MQTT.Broker == "" && c.MQTT.Listen == "" {
		c.MQTT.Listen = DefaultMQTTListen
	}
	defaults.Set(&c.MQTT.ClientID, "tributary-agent-"+c.Gateway)
	defaults.Set(&c.MQTT.MaxInFlight, 1024)
	defaults.Set(&c.Queue.MaxBytes, DefaultQueueMaxBytes)
	defaults.Set(&c.Queue.Policy, DefaultPolicy)
	defaults.Set(&c.Queue.OnCorrupt, string(queue.Refuse))
	defaults.Set(&c.Cloud.Compression, DefaultCompression)
	defaults.Set(&c.Local.Device, c.Gateway)
	defaults.Set(&c.Health.Every, DefaultHealthEvery)
	defaults.Set(&c.Clock.FutureMargin, DefaultFutureMargin)
	defaults.Set(&c.DrainTimeout, DefaultDrainTimeout)
	if c.MemoryLimit == nil {
		m := bytesize.Size(DefaultMemoryLimit)
		c.MemoryLimit = &m
	}
	if c.Queue.CommitInterval == nil {
		d := DefaultCommitEvery
		c.Queue.CommitInterval = &d
	}
	return c
}

// Validate reports every problem at once, each saying what to fix. Call it
// on a config with defaults applied.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Gateway == "" {
		add("gateway: required (set -gateway or gateway: in the config)")
	} else if err := protocol.CheckDeviceID(c.Gateway); err != nil {
		add("gateway: %v", err)
	}
	if c.Data == "" {
		add("data: required: the folder for the queue database (-data)")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port", c.Listen)
	}
	if err := logging.Validate(c.LogFormat, c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.MQTT.validate(c.Gateway)...)
	if c.Queue.MaxBytes < 1<<20 {
		add("queue.max_bytes: %d: want at least 1MiB", c.Queue.MaxBytes)
	}
	if c.Queue.Policy != "block" && c.Queue.Policy != "drop-oldest" {
		add("queue.policy: %q: want block or drop-oldest", c.Queue.Policy)
	}
	if c.Queue.OnCorrupt != string(queue.Refuse) && c.Queue.OnCorrupt != string(queue.Quarantine) {
		add("queue.on_corrupt: %q: want refuse or quarantine", c.Queue.OnCorrupt)
	}
	if c.Queue.DedupeWindow < 0 {
		add("queue.dedupe_window: must not be negative")
	}
	if c.Cloud.URL == "" {
		add("cloud.url: required: the ingest API base URL, e.g. https://cloud.example:8080 (-cloud)")
	} else if u, err := url.Parse(c.Cloud.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("cloud.url: %q: want http(s)://host[:port]", c.Cloud.URL)
	} else if u.Scheme == "http" && !c.Cloud.Insecure && !uplink.LoopbackHost(u.Hostname()) {
		add("cloud.url: %q: plain http to a host other than this one sends the token and the readings unencrypted: "+
			"use https://, or set cloud.insecure: true to accept that", c.Cloud.URL)
	}
	if c.Cloud.Token == "" && c.Cloud.TokenFile == "" {
		gw := c.Gateway
		if gw == "" {
			gw = "GATEWAY"
		}
		add("cloud.token: required: the gateway's bearer token: cloud.token_file (-token-file), $%s, or the systemd credential %s "+
			"(cloud.token and -token work too but put the secret in the config or on the command line); issue one with `tributary-cloud -data DIR token issue %s`",
			TokenEnv, CredentialName, gw)
	}
	if c.Cloud.Token != "" && c.Cloud.TokenFile != "" {
		add("cloud: set token or token_file, not both")
	}
	switch c.Cloud.Compression {
	case "zstd", "gzip", "none":
	default:
		add("cloud.compression: %q: want zstd, gzip or none", c.Cloud.Compression)
	}
	if c.Cloud.MaxReadings < 0 || c.Cloud.MaxReadings > protocol.MaxBatchReadings {
		add("cloud.batch_readings: %d: want 1..%d", c.Cloud.MaxReadings, protocol.MaxBatchReadings)
	}
	if c.Cloud.MaxBytes < 0 || c.Cloud.MaxBytes > protocol.MaxBatchBytes {
		add("cloud.batch_bytes: %d: at most %d", c.Cloud.MaxBytes, protocol.MaxBatchBytes)
	}
	if s := c.Cloud.BacklogShare; s != nil && (*s < 0 || *s > 1) {
		add("cloud.backlog_share: %v: want 0..1", *s)
	}
	if err := c.Cloud.TLS.Validate(); err != nil {
		add("cloud.tls: %v", err)
	}
	if err := protocol.CheckDeviceID(c.Local.Device); c.Local.Device != "" && err != nil {
		add("local.device: %v", err)
	}
	if len(c.Local.Sensors) > 0 {
		if err := sensor.ValidateAll(c.Local.Sensors); err != nil {
			add("local.sensors: %v", err)
		}
	}
	if c.DrainTimeout < 0 {
		add("drain_timeout: must not be negative")
	}
	if c.MemoryLimit != nil && *c.MemoryLimit != 0 && *c.MemoryLimit < 8<<20 {
		add("memory_limit: %d: want 0 (no limit) or at least 8MiB", *c.MemoryLimit)
	}
	if d := c.Queue.CommitInterval; d != nil && (*d < 0 || *d > time.Second) {
		add("queue.commit_interval: %s: want 0..1s", *d)
	}
	return errors.Join(errs...)
}

// validate checks the mqtt section; gateway is the agent's id.
func (m MQTTConfig) validate(gateway string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.Broker != "" {
		if _, err := brokerurl.Parse(m.Broker); err != nil {
			add("mqtt.broker: %v", err)
		}
		if m.Listen != "" {
			add("mqtt: set broker (external broker) or listen (embedded broker), not both")
		}
	} else if _, _, err := net.SplitHostPort(m.Listen); err != nil {
		add("mqtt.listen: %q is not host:port", m.Listen)
	}
	if err := m.TLS.Validate(); err != nil {
		add("mqtt.tls: %v", err)
	}
	if m.MaxInFlight < 1 || m.MaxInFlight > 65535 {
		add("mqtt.max_in_flight: %d: want 1..65535", m.MaxInFlight)
	}
	for i, u := range m.Users {
		id := u.Username
		if id == "" || id == gateway {
			id = "ID"
		}
		add("mqtt.users[%d] (%q): plain-text device passwords are no longer accepted: store it hashed with "+
			"`printf %%s 'PASSWORD' | tributary-agent device add %s -password-stdin -config FILE` (the device keeps its password), "+
			"then delete mqtt.users from the config", i, u.Username, id)
	}
	if m.Broker != "" && (m.ClientCAFile != "" || m.StrictIdentity != nil || m.AllowAnonymous ||
		m.MaxClients != 0 || m.MaxClientsPerSource != 0 || m.ConnectTimeout != 0) {
		add("mqtt: client_ca_file, strict_identity, allow_anonymous, max_clients, max_clients_per_source and connect_timeout " +
			"configure the embedded broker; they do nothing with an external broker")
	}
	if m.MaxClients < 0 || m.MaxClientsPerSource < 0 || m.ConnectTimeout < 0 {
		add("mqtt: max_clients, max_clients_per_source and connect_timeout must not be negative (0 means the default)")
	}
	return errs
}

// WithEnvToken returns c with its token source taken from the
// environment when neither cloud.token nor cloud.token_file is set: the
// systemd credential CredentialName when $CREDENTIALS_DIRECTORY holds it,
// else $TRIBUTARY_TOKEN. getenv is os.Getenv outside tests.
func (c Config) WithEnvToken(getenv func(string) string) Config {
	if c.Cloud.Token != "" || c.Cloud.TokenFile != "" {
		return c
	}
	if dir := getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		if p := filepath.Join(dir, CredentialName); fileExists(p) {
			c.Cloud.TokenFile = p
			return c
		}
	}
	c.Cloud.Token = strings.TrimSpace(getenv(TokenEnv))
	c.tokenFromEnv = c.Cloud.Token != ""
	return c
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// token returns the bearer token, reading token_file if set; it warns when
// that file is readable by its group or by others.
func (c Config) token(log *slog.Logger) (string, error) {
	if c.Cloud.TokenFile == "" {
		return c.Cloud.Token, nil
	}
	f, err := os.Open(c.Cloud.TokenFile)
	if err != nil {
		return "", fmt.Errorf("agent: cloud.token_file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o044 != 0 {
		log.Warn("the token file is readable by its group or by others: make it readable by the agent's user only (chmod 600), "+
			"or pass it as the systemd credential "+CredentialName, "file", c.Cloud.TokenFile, "mode", st.Mode().Perm().String())
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("agent: cloud.token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("agent: cloud.token_file %s is empty", c.Cloud.TokenFile)
	}
	return tok, nil
}

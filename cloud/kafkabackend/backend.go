package kafkabackend

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tributary-iot/tributary/internal/loglimit"
)

// SASL mechanisms of SASLConfig.Mechanism.
const (
	MechanismSCRAMSHA512 = "scram-sha-512"
	MechanismAWSMSKIAM   = "aws-msk-iam"
)

// SASLConfig authenticates the client. The zero value means none.
type SASLConfig struct {
	// Mechanism is MechanismSCRAMSHA512 or MechanismAWSMSKIAM ("" none).
	Mechanism string
	// Username and Password are the SCRAM credentials.
	Username, Password string
}

// Config configures a Backend. The zero value of a field means its
// default; Validate checks the rest.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string
	// ClientID names the client to the brokers (default "tributary-cloud").
	ClientID string
	// Topic is the topic Put and Scan use when given "".
	Topic string
	// Partitions and ReplicationFactor are what EnsureTopics creates
	// missing topics with (defaults 4 and 1; use 3 on MSK).
	Partitions        int32
	ReplicationFactor int16
	// TLS, if set, encrypts the connections to the brokers.
	TLS *tls.Config
	// SASL authenticates to the brokers.
	SASL SASLConfig
	// DialTimeout bounds connecting to a broker (default 10s).
	DialTimeout time.Duration
	// RequestTimeout is how long a broker may take to answer a produce
	// request with acks=all (default 10s).
	RequestTimeout time.Duration
	// PutTimeout bounds a Put whose context has no deadline (default 30s).
	PutTimeout time.Duration
	// SettleTimeout is how long Put waits past its deadline for the
	// producer to fail records that were never sent, so that they are
	// reported as not written rather than as unknown (default 1s).
	SettleTimeout time.Duration
	// MaxBufferedRecords bounds the records the producer holds, across all
	// Puts (default 10000); beyond it Put answers ErrThrottled at once.
	MaxBufferedRecords int
	// RememberLate is how long a record that Put reported as unknown and
	// that the broker acknowledged later is remembered (at most
	// MaxBufferedRecords of them), so that the gateway's resend of it is
	// acknowledged without a second copy (default 10m).
	RememberLate time.Duration
	// Registerer, if set, gets the Prometheus collectors
	// (tributary_kafka_*).
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultClientID           = "tributary-cloud"
	DefaultPartitions         = 4
	DefaultReplicationFactor  = 1
	DefaultDialTimeout        = 10 * time.Second
	DefaultRequestTimeout     = 10 * time.Second
	DefaultPutTimeout         = 30 * time.Second
	DefaultSettleTimeout      = time.Second
	DefaultMaxBufferedRecords = 10000
	DefaultRememberLate       = 10 * time.Minute
	// retryBackoffMax caps the producer's pause between retries, so that
	// a record that stayed unsent is failed soon after its deadline.
	retryBackoffMax = 250 * time.Millisecond
	metadataMinAge  = 250 * time.Millisecond
)

// Kafka topic names: 1-249 of [a-zA-Z0-9._-], not "." or "..".
var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func checkTopic(t string) error {
	if t == "" {
		return errors.New("kafkabackend: no topic: give Put or Scan a topic or set Config.Topic")
	}
	if !topicRE.MatchString(t) || t == "." || t == ".." {
		return fmt.Errorf("kafkabackend: topic %q: want 1-249 characters of [a-zA-Z0-9._-]", t)
	}
	return nil
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafkabackend: no brokers: set Config.Brokers (host:port of one or more bootstrap brokers)")
	}
	for _, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return fmt.Errorf("kafkabackend: broker %q is not host:port", b)
		}
	}
	if c.Topic != "" {
		if err := checkTopic(c.Topic); err != nil {
			return err
		}
	}
	if c.Partitions < 0 {
		return fmt.Errorf("kafkabackend: Partitions %d is negative", c.Partitions)
	}
	if c.ReplicationFactor < 0 {
		return fmt.Errorf("kafkabackend: ReplicationFactor %d is negative", c.ReplicationFactor)
	}
	switch c.SASL.Mechanism {
	case "":
	case MechanismSCRAMSHA512:
		if c.SASL.Username == "" || c.SASL.Password == "" {
			return errors.New("kafkabackend: SASL scram-sha-512 needs a username and a password")
		}
	case MechanismAWSMSKIAM:
		if c.SASL.Username != "" || c.SASL.Password != "" {
			return errors.New("kafkabackend: SASL aws-msk-iam takes its credentials from the AWS credential chain: leave username and password empty")
		}
	default:
		return fmt.Errorf("kafkabackend: SASL mechanism %q: want %s or %s", c.SASL.Mechanism, MechanismSCRAMSHA512, MechanismAWSMSKIAM)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"RequestTimeout", c.RequestTimeout}, {"PutTimeout", c.PutTimeout}, {"SettleTimeout", c.SettleTimeout},
		{"RememberLate", c.RememberLate}} {
		if d.v < 0 {
			return fmt.Errorf("kafkabackend: %s is negative (%v): use 0 for the default", d.name, d.v)
		}
	}
	if c.MaxBufferedRecords < 0 {
		return fmt.Errorf("kafkabackend: MaxBufferedRecords %d is negative", c.MaxBufferedRecords)
	}
	return nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.ClientID = cmp.Or(c.ClientID, DefaultClientID)
	c.Partitions = cmp.Or(c.Partitions, DefaultPartitions)
	c.ReplicationFactor = cmp.Or(c.ReplicationFactor, DefaultReplicationFactor)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.PutTimeout = cmp.Or(c.PutTimeout, DefaultPutTimeout)
	c.SettleTimeout = cmp.Or(c.SettleTimeout, DefaultSettleTimeout)
	c.MaxBufferedRecords = cmp.Or(c.MaxBufferedRecords, DefaultMaxBufferedRecords)
	c.RememberLate = cmp.Or(c.RememberLate, DefaultRememberLate)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// ClientOpts are the franz-go options that connect to c's brokers as
// configured (seed brokers, client id, TLS, SASL, dial timeout): the
// common part of every client of the cluster, producer or consumer. With
// aws-msk-iam it loads the default AWS configuration once; credentials are
// then fetched (and refreshed) at each authentication.
func (c Config) ClientOpts(ctx context.Context) ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
		kgo.WithLogger(newKgoLogger(c.Logger)),
		// No KIP-714 metrics pushed to the brokers: one API (and IAM action)
		// less.
		kgo.DisableClientMetrics(),
	}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS.Clone()))
	}
	mech, err := c.SASL.mechanism(ctx)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

func (s SASLConfig) mechanism(ctx context.Context) (sasl.Mechanism, error) {
	switch s.Mechanism {
	case MechanismSCRAMSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	case MechanismAWSMSKIAM:
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("kafkabackend: aws-msk-iam: load AWS config: %w", err)
		}
		creds := awsCfg.Credentials
		if creds == nil {
			return nil, errors.New("kafkabackend: aws-msk-iam: no AWS credentials found (environment, shared files or an IAM role)")
		}
		return saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
			v, err := creds.Retrieve(ctx)
			if err != nil {
				return saslaws.Auth{}, fmt.Errorf("kafkabackend: aws-msk-iam: AWS credentials: %w", err)
			}
			return saslaws.Auth{AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.SessionToken,
				UserAgent: "tributary"}, nil
		}), nil
	}
	return nil, nil
}

// Backend writes records to Kafka topics and reads them back. It is safe
// for concurrent use.
type Backend struct {
	cfg    Config
	base   []kgo.Opt // ClientOpts, for the clients Scan makes
	client *kgo.Client
	log    *slog.Logger
	m      *metrics

	flights flights

	closeOnce sync.Once
}

// New builds a Backend. It makes no call to the brokers (franz-go connects
// on first use); EnsureTopics is the first one.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	base, err := cfg.ClientOpts(ctx)
	if err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	b := &Backend{cfg: cfg, base: base, log: cfg.Logger}
	b.flights.init(cfg.MaxBufferedRecords, cfg.RememberLate)
	opts := append(append([]kgo.Opt(nil), base...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // with idempotence, the default; said so
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProduceRequestTimeout(cfg.RequestTimeout),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RetryBackoffFn(retryBackoff),
		kgo.UnknownTopicRetries(3),
		// A retriable produce error waits for a metadata refresh; the
		// default 5s between refreshes would outlast most Put deadlines.
		kgo.MetadataMinAge(metadataMinAge),
	)
	if b.client, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("kafkabackend: %w", err)
	}
	b.m = newMetrics(b.client)
	if cfg.Registerer != nil {
		if err := b.m.register(cfg.Registerer); err != nil {
			b.client.Close()
			return nil, fmt.Errorf("kafkabackend: register metrics: %w", err)
		}
	}
	return b, nil
}

// retryBackoff is the producer's pause after the n-th consecutive failure:
// 25ms doubling up to retryBackoffMax.
func retryBackoff(n int) time.Duration {
	d := 25 * time.Millisecond
	for i := 1; i < n && d < retryBackoffMax; i++ {
		d *= 2
	}
	return min(d, retryBackoffMax)
}

// Client is the producing client (for administration with kadm, say).
func (b *Backend) Client() *kgo.Client { return b.client }

// Config is b's configuration with defaults applied.
func (b *Backend) Config() Config { return b.cfg }

// Close flushes what the producer still holds for up to Config.SettleTimeout
// and closes the connections. It is idempotent; Put fails after it.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.SettleTimeout)
		defer cancel()
		if err := b.client.Flush(ctx); err != nil && b.client.BufferedProduceRecords() > 0 {
			b.log.Warn("closing with records whose outcome is unknown still in the producer", "records", b.client.BufferedProduceRecords())
		}
		b.client.Close()
	})
	return nil
}

// kgoLogger sends franz-go's warnings and errors to slog, each distinct
// message at most once a minute (a broker outage makes franz-go warn at
// every retry), with the count of the ones suppressed. franz-go's messages
// are constant strings, so the limiters are bounded by its source.
type kgoLogger struct {
	l      *slog.Logger
	limits *sync.Map // message → *loglimit.Limiter
}

func newKgoLogger(l *slog.Logger) kgoLogger { return kgoLogger{l: l, limits: new(sync.Map)} }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelWarn
	if level == kgo.LogLevelError {
		lv = slog.LevelError
	}
	v, _ := k.limits.LoadOrStore(msg, new(loglimit.Limiter))
	ok, suppressed := v.(*loglimit.Limiter).Allow()
	if !ok {
		return
	}
	if suppressed > 0 {
		keyvals = append(keyvals, "suppressed", suppressed)
	}
	k.l.Log(context.Background(), lv, "kafka: "+msg, keyvals...)
}

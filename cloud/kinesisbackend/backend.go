package kinesisbackend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits of Kinesis that Put respects.
const (
	MaxEntriesPerCall  = 500     // entries in one PutRecords call
	MaxBytesPerCall    = 5 << 20 // data + partition keys in one PutRecords call
	MaxRecordBytes     = 1 << 20 // data + partition key of one entry
	MaxPartitionKeyLen = 256     // Unicode characters
)

// Kinesis's write limits per shard, the defaults of the client-side buckets.
const (
	ShardRecordsPerSec = 1000
	ShardBytesPerSec   = 1 << 20
)

var (
	// ErrThrottled is wrapped by a Result's Err when the entry was not
	// written because its shard or the stream stayed at capacity (or kept
	// failing transiently) until the deadline: retrying later may succeed.
	ErrThrottled = errors.New("kinesisbackend: throttled")
	// ErrInvalidEntry is wrapped by a Result's Err when the entry can never
	// be written: empty, too long or invalid UTF-8 partition key, or too
	// large.
	ErrInvalidEntry = errors.New("kinesisbackend: invalid entry")
	// ErrOutcomeUnknown is wrapped by Put's error when a PutRecords call
	// failed without an answer (connection lost, server error, timeout) and
	// no later attempt was acknowledged before the deadline: some entries
	// may have been written.
	ErrOutcomeUnknown = errors.New("kinesisbackend: outcome unknown")
)

// Entry is one stream record to write.
type Entry struct {
	PartitionKey string
	Data         []byte
}

// Result is the outcome of one Entry: written at ShardID and
// SequenceNumber when Err is nil, not written otherwise.
type Result struct {
	ShardID, SequenceNumber string
	Err                     error
}

// EntryError is an error Kinesis reported: the ErrorCode of one entry in a
// PutRecords result, or the error code of a whole call. It matches
// ErrThrottled (errors.Is) when the code is a throttling one.
type EntryError struct {
	Code    string // e.g. ProvisionedThroughputExceededException, InternalFailure
	Message string
}

func (e *EntryError) Error() string {
	if e.Message == "" {
		return "kinesisbackend: " + e.Code
	}
	return "kinesisbackend: " + e.Code + ": " + e.Message
}

// Is reports whether target is ErrThrottled and e a throttling error.
func (e *EntryError) Is(target error) bool { return target == ErrThrottled && throttleCode(e.Code) }

// Config configures a Backend. The zero value of a field means its
// default; Validate checks the rest.
type Config struct {
	// Stream is the stream name or ARN that Put uses when it is given "".
	Stream string
	// Region is the AWS region; "" takes it from the default chain
	// (AWS_REGION, shared config), and when that has none either it is
	// required for real AWS and "us-east-1" with an Endpoint.
	Region string
	// Endpoint is the base URL of a Kinesis-compatible API (cloud/kinesisapi,
	// kinesalite, LocalStack), e.g. http://127.0.0.1:4567. "" means AWS.
	Endpoint string
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials;
	// empty means the default chain (environment, shared files, IAM role).
	AccessKeyID, SecretAccessKey, SessionToken string
	// MaxRetries is how many times the SDK retries one PutRecords or
	// ListShards call that failed as a whole (throttled call, server or
	// network error): default 2, negative for none. Failed entries of a
	// successful call are retried by Put itself, until the deadline.
	MaxRetries int
	// RequestTimeout bounds one call, its SDK retries included (default
	// 10s). A call in flight when Put's deadline passes may run this long.
	RequestTimeout time.Duration
	// PutTimeout bounds a Put whose context has no deadline (default 30s).
	PutTimeout time.Duration
	// RetryBase and RetryMax shape the backoff after throttling: the n-th
	// consecutive failure of a shard waits about RetryBase·2^(n-1), at most
	// RetryMax, with jitter (defaults 100ms and 2s).
	RetryBase, RetryMax time.Duration
	// Concurrency is how many PutRecords calls one Put has in flight at
	// once (default 4, at most 64).
	Concurrency int
	// ShardRecordsPerSec and ShardBytesPerSec (data + partition key) are the
	// client-side per-shard limits: 0 means Kinesis's (1,000 and 1 MiB),
	// negative turns that limit off.
	ShardRecordsPerSec, ShardBytesPerSec int
	// HTTPClient, if set, sends the requests (proxies, custom TLS, tests).
	HTTPClient *http.Client
	// Registerer, if set, gets the Prometheus collectors
	// (tributary_kinesis_*).
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxRetries     = 2
	DefaultRequestTimeout = 10 * time.Second
	DefaultPutTimeout     = 30 * time.Second
	DefaultRetryBase      = 100 * time.Millisecond
	DefaultRetryMax       = 2 * time.Second
	DefaultConcurrency    = 4
	maxConcurrency        = 64
)

var (
	streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)
	streamARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/([a-zA-Z0-9_.-]{1,128})$`)
)

// checkStream validates a stream name or ARN.
func checkStream(s string) error {
	if s == "" {
		return errors.New("kinesisbackend: no stream: give Put a stream name or set Config.Stream")
	}
	if streamNameRE.MatchString(s) || streamARNRE.MatchString(s) {
		return nil
	}
	return fmt.Errorf("kinesisbackend: stream %q is neither a stream name (1-128 of [a-zA-Z0-9_.-]) nor a Kinesis stream ARN", s)
}

// streamRef splits a stream name or ARN into the API's two fields; for an
// ARN both are set (the name parsed from it), which AWS accepts and which
// emulators that know only StreamName need.
func streamRef(s string) (name, arn *string) {
	if m := streamARNRE.FindStringSubmatch(s); m != nil {
		return aws.String(m[1]), aws.String(s)
	}
	return aws.String(s), nil
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if c.Stream != "" {
		if err := checkStream(c.Stream); err != nil {
			return err
		}
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("kinesisbackend: endpoint %q is not an http(s) URL such as http://127.0.0.1:4567", c.Endpoint)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("kinesisbackend: give both AccessKeyID and SecretAccessKey, or neither (default credential chain)")
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		return errors.New("kinesisbackend: SessionToken needs AccessKeyID and SecretAccessKey")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"RequestTimeout", c.RequestTimeout}, {"PutTimeout", c.PutTimeout}, {"RetryBase", c.RetryBase}, {"RetryMax", c.RetryMax}} {
		if d.v < 0 {
			return fmt.Errorf("kinesisbackend: %s is negative (%v): use 0 for the default", d.name, d.v)
		}
	}
	if c.RetryBase > 0 && c.RetryMax > 0 && c.RetryMax < c.RetryBase {
		return fmt.Errorf("kinesisbackend: RetryMax (%v) is below RetryBase (%v)", c.RetryMax, c.RetryBase)
	}
	if c.Concurrency < 0 || c.Concurrency > maxConcurrency {
		return fmt.Errorf("kinesisbackend: Concurrency %d is outside 0..%d", c.Concurrency, maxConcurrency)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.PutTimeout = cmp.Or(c.PutTimeout, DefaultPutTimeout)
	c.RetryBase = cmp.Or(c.RetryBase, DefaultRetryBase)
	c.RetryMax = cmp.Or(c.RetryMax, max(DefaultRetryMax, c.RetryBase))
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.ShardRecordsPerSec = cmp.Or(c.ShardRecordsPerSec, ShardRecordsPerSec)
	c.ShardBytesPerSec = cmp.Or(c.ShardBytesPerSec, ShardBytesPerSec)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Backend writes entries to Kinesis streams. It is safe for concurrent use.
type Backend struct {
	cfg       Config
	client    *kinesis.Client
	transport *http.Transport // ours, closed by Close; nil with Config.HTTPClient
	log       *slog.Logger
	m         *metrics

	mu      sync.Mutex
	streams map[string]*streamState
}

// maxStreams bounds the per-stream state Backend keeps (shard maps and
// buckets); beyond it an arbitrary stream's state is dropped and rebuilt
// when next used.
const maxStreams = 256

// New builds a Backend. It loads the AWS configuration (region,
// credentials) but makes no call to Kinesis.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Backend{cfg: cfg, log: cfg.Logger, streams: make(map[string]*streamState)}

	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxRetries + 1
				o.MaxBackoff = cfg.RetryMax
				// Put paces itself per shard; the SDK's retry quota would
				// only turn throttling into opaque "quota exceeded" errors.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("kinesisbackend: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, errors.New("kinesisbackend: no AWS region: set Config.Region or AWS_REGION")
		}
		awsCfg.Region = "us-east-1"
	}
	// Our own client, so that Close can drop its connections. It starts
	// from the SDK's transport, which carries a custom CA bundle
	// (AWS_CA_BUNDLE) if one is configured.
	hc := cfg.HTTPClient
	if hc == nil {
		if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
			b.transport = bc.GetTransport()
		} else {
			b.transport = http.DefaultTransport.(*http.Transport).Clone()
		}
		b.transport.MaxIdleConnsPerHost = maxConcurrency
		hc = &http.Client{Transport: b.transport, Timeout: cfg.RequestTimeout}
	}
	b.client = kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
		o.HTTPClient = hc
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(strings.TrimSuffix(cfg.Endpoint, "/"))
		}
	})
	b.m = newMetrics()
	if cfg.Registerer != nil {
		if err := b.m.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("kinesisbackend: register metrics: %w", err)
		}
	}
	return b, nil
}

// Client is the Kinesis client Backend uses (for stream administration or
// reads with the same configuration).
func (b *Backend) Client() *kinesis.Client { return b.client }

// Close releases idle connections. It is idempotent; a Backend still works
// after Close (it reconnects), so closing early loses nothing.
func (b *Backend) Close() error {
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	return nil
}

// stream returns the state of stream s, creating it.
func (b *Backend) stream(s string) *streamState {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.streams[s]
	if st == nil {
		if len(b.streams) >= maxStreams {
			for k := range b.streams {
				delete(b.streams, k)
				break
			}
		}
		st = newStreamState(s, b.cfg)
		b.streams[s] = st
	}
	return st
}

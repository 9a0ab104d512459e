package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// StartPosition is where a shard without a checkpoint is first read.
type StartPosition string

// Start positions (the Kinesis shard iterator types of the same names).
const (
	TrimHorizon StartPosition = "TRIM_HORIZON" // the oldest record kept (default)
	Latest      StartPosition = "LATEST"       // only records stored from now on
)

// Defaults of Config.
const (
	DefaultPollInterval    = 200 * time.Millisecond // Kinesis allows 5 GetRecords/s per shard
	DefaultMaxPollInterval = time.Second
	DefaultLimit           = 10_000 // Kinesis's default and maximum
	DefaultListInterval    = 30 * time.Second
	DefaultMaxBackoff      = 5 * time.Second
)

// Config is what a consumer reads and where it keeps its checkpoints.
// Zero fields take the defaults above; Validate checks the rest.
type Config struct {
	// Stream to read (required).
	Stream string `yaml:"stream"`
	// Application names the checkpoint namespace (required): consumers of
	// the same application resume from each other's checkpoints,
	// different applications read the stream independently.
	Application string `yaml:"application"`
	// StartAt applies to shards without a checkpoint whose parents this
	// application never read: TRIM_HORIZON (default) or LATEST. The
	// children of a shard this application finished are always read from
	// their beginning, so nothing falls between parent and child.
	StartAt StartPosition `yaml:"start_at"`
	// PollInterval is the pause between GetRecords calls on one shard
	// (default 200 ms). After an empty read the pause doubles, up to
	// MaxPollInterval (default 1 s); a non-empty read resets it.
	PollInterval    time.Duration `yaml:"poll_interval"`
	MaxPollInterval time.Duration `yaml:"max_poll_interval"`
	// Limit is the most records one GetRecords returns (1..10,000,
	// default 10,000): the largest batch the handler sees.
	Limit int `yaml:"limit"`
	// ListInterval is how often shards are listed to discover new ones
	// (default 30 s); a shard reaching its end lists them at once.
	ListInterval time.Duration `yaml:"list_interval"`
	// MaxBackoff caps the backoff after throttling, handler errors and
	// failed calls (default 5 s). Backoff starts at PollInterval, doubles,
	// and is jittered.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// CheckpointPath is the bbolt file holding checkpoints (required
	// unless Options.Checkpoints is set).
	CheckpointPath string `yaml:"checkpoint_path"`
}

// Validate checks c (after defaults) and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("consumer: "+format, args...)) }
	if !shardstore.ValidStreamName(c.Stream) {
		bad("stream %q: want 1..128 characters of [a-zA-Z0-9_.-]", c.Stream)
	}
	if c.Application == "" || len(c.Application) > 256 {
		bad("application %q: want a name of 1..256 bytes (it namespaces the checkpoints)", c.Application)
	}
	switch c.StartAt {
	case "", TrimHorizon, Latest:
	default:
		bad("start_at %q: want %s or %s", c.StartAt, TrimHorizon, Latest)
	}
	if c.Limit < 0 || c.Limit > DefaultLimit {
		bad("limit %d: want 1..%d (0 for the default)", c.Limit, DefaultLimit)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"poll_interval", c.PollInterval}, {"max_poll_interval", c.MaxPollInterval}, {"list_interval", c.ListInterval}, {"max_backoff", c.MaxBackoff}} {
		if d.v < 0 {
			bad("%s %v: must not be negative (0 for the default)", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.StartAt == "" {
		c.StartAt = TrimHorizon
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxPollInterval == 0 {
		c.MaxPollInterval = max(DefaultMaxPollInterval, c.PollInterval)
	}
	c.MaxPollInterval = max(c.MaxPollInterval, c.PollInterval)
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	if c.ListInterval == 0 {
		c.ListInterval = DefaultListInterval
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.PollInterval)
	}
	return c
}

// Options are the consumer's collaborators. The zero value is valid.
type Options struct {
	// Logger gets shard starts and ends, bad records, throttling and
	// errors; nil discards.
	Logger *slog.Logger
	// Registerer, if set, gets the Prometheus collectors, labelled with
	// the application and stream.
	Registerer prometheus.Registerer
	// OnBadRecord, if set, is called (from the shard's goroutine) with
	// every record that does not decode, before the batch it came in is
	// checkpointed. Such records are counted, logged and skipped.
	OnBadRecord func(shard string, rec Record, err error)
	// Checkpoints, if set, is used instead of opening
	// Config.CheckpointPath, and is not closed by the consumer: several
	// consumers of one process share one file this way.
	Checkpoints *Checkpoints
}

package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tributary-iot/tributary/internal/defaults"
)

// Config is one verification.
type Config struct {
	Stream string // default "telemetry"
	// AlertsStream, if set, is read after Stream and scored against the
	// truth's anomalies.
	AlertsStream   string
	AlertTolerance time.Duration // default 30s
	From           time.Time     // zero: from each shard's trim horizon
	Settle         time.Duration // default 10s
	Poll           time.Duration // default 200ms
	// Timeout bounds the whole read (both streams); default 10m.
	Timeout time.Duration
	// Stamp is the latency's end (default ArrivalStamp).
	Stamp Stamper
	// Progress, if set, gets a progress line every ProgressEvery (default 5s).
	Progress      func(ReadStats)
	ProgressEvery time.Duration
}

// Defaults of Config.
const (
	DefaultStream         = "telemetry"
	DefaultAlertTolerance = 30 * time.Second
	DefaultSettle         = 10 * time.Second
	DefaultTimeout        = 10 * time.Minute
)

func (c Config) withDefaults() Config {
	defaults.Set(&c.Stream, DefaultStream)
	defaults.Set(&c.AlertTolerance, DefaultAlertTolerance)
	defaults.Set(&c.Settle, DefaultSettle)
	defaults.Set(&c.Timeout, DefaultTimeout)
	if c.Stamp == nil {
		c.Stamp = ArrivalStamp{}
	}
	return c
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.AlertTolerance < 0 || c.Settle < 0 || c.Poll < 0 || c.Timeout < 0 || c.ProgressEvery < 0 {
		errs = append(errs, fmt.Errorf("%w: durations must not be negative", ErrConfig))
	}
	if c.AlertsStream != "" && c.AlertsStream == c.Stream {
		errs = append(errs, fmt.Errorf("%w: the alerts stream %q is the telemetry stream", ErrConfig, c.AlertsStream))
	}
	return errors.Join(errs...)
}

// Report is the outcome of a verification.
type Report struct {
	OK bool `json:"ok"` // nothing lost, duplicated or out of order
	// Complete is false when the deadline came before the streams were
	// read to the end: losses may then be readings not read yet.
	Complete bool      `json:"complete"`
	Read     ReadStats `json:"read"`
	Result
	TruthDevices int          `json:"truth_devices"`
	Alerts       *AlertReport `json:"alerts,omitempty"`
	AlertsRead   *ReadStats   `json:"alerts_read,omitempty"`
}

// Run reads cfg.Stream (and cfg.AlertsStream) through api and compares
// them with t. An error means the verification could not be done; a
// Report with OK false means it was, and found problems.
func Run(ctx context.Context, api KinesisAPI, t *Truth, cfg Config) (*Report, error) {
	return RunSource(ctx, KinesisSource{API: api}, t, cfg)
}

// RunSource is Run reading from src: Kinesis or Kafka.
func RunSource(ctx context.Context, src Source, t *Truth, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	chk := NewChecker(t, cfg.Stamp)
	ro := ReadOptions{Stream: cfg.Stream, From: cfg.From, Settle: cfg.Settle, Poll: cfg.Poll,
		Progress: cfg.Progress, ProgressEvery: cfg.ProgressEvery}
	st, err := src.ReadStream(ctx, ro, chk.Add)
	if err != nil {
		return nil, err
	}
	rep := &Report{Read: st, Complete: st.CaughtUp, Result: *chk.Result(), TruthDevices: len(t.Devices)}
	if cfg.AlertsStream != "" {
		sc := NewAlertScorer(t, cfg.AlertTolerance)
		ro.Stream = cfg.AlertsStream
		ast, err := src.ReadStream(ctx, ro, sc.Add)
		if err != nil {
			return nil, err
		}
		rep.Alerts, rep.AlertsRead = sc.Report(cfg.AlertsStream), &ast
		rep.Complete = rep.Complete && ast.CaughtUp
	}
	rep.OK = !rep.Totals.Bad()
	return rep, nil
}

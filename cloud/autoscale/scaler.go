package autoscale

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Source measures the stream: every open shard's counters.
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Resharder changes the stream's shards.
type Resharder interface {
	UpdateShardCount(ctx context.Context, target int) error
	SplitShard(ctx context.Context, shardID, newStartingHashKey string) error
}

// Backends the autoscaler works on (stream.backend).
const (
	BackendEmbedded = "embedded"
	BackendKinesis  = "kinesis"
)

// Explain says why the autoscaler does not work on backend ("" when it
// does).
func Explain(backend string) string {
	switch backend {
	case BackendEmbedded, BackendKinesis:
		return ""
	case "kafka":
		return "the autoscaler does not repartition Kafka topics: adding partitions changes which partition a key hashes to, " +
			"so a device's new records would land in another partition than its old ones and per-device order would break " +
			"(and Kafka cannot remove partitions); size the topic's partitions for the fleet up front (tributary-cloud plan)"
	}
	return fmt.Sprintf("the autoscaler works on the embedded and kinesis backends, not on %q", backend)
}

// Options are the Scaler's dependencies.
type Options struct {
	Stream    string
	Backend   string // stream.backend; any but embedded or kinesis makes a Scaler that only explains (see Explain)
	Source    Source
	Resharder Resharder
	// Limits are one shard's limits (default KinesisLimits).
	Limits Limits
	// Lag is how far behind the slowest consumer of the stream is (its
	// MillisBehindLatest); nil: no consumer is watched. While it is above
	// MaxLag (default 10s) the stream is not scaled down.
	Lag    func() time.Duration
	MaxLag time.Duration
	// History bounds the decisions kept for the admin API (default 100).
	History int
	// Now is the clock (default time.Now); tests inject one.
	Now    func() time.Time
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultMaxLag  = 10 * time.Second
	DefaultHistory = 100
	// callTimeout bounds one measurement or reshard call.
	callTimeout = 30 * time.Second
)

// Scaler measures a stream every Config.Interval and reshards it.
type Scaler struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	refused string // why it does not run ("" when it does)

	mu       sync.Mutex // guards everything below and the planner
	p        planner
	prev     *Snapshot
	last     []ShardLoad
	lastHold string
	history  []Decision // oldest first, at most opts.History
	lastSeen Decision
}

// New checks cfg (with defaults applied) and builds a Scaler. With a
// backend it does not work on, the Scaler only explains why (Run logs it,
// the handler shows it).
func New(cfg Config, opts Options) (*Scaler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scaler{cfg: cfg, opts: opts, p: planner{cfg: cfg}, refused: Explain(opts.Backend)}
	s.log = cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)).With("component", "autoscale", "stream", opts.Stream)
	if s.opts.Limits == (Limits{}) {
		s.opts.Limits = KinesisLimits
	}
	s.opts.MaxLag = cmp.Or(s.opts.MaxLag, DefaultMaxLag)
	s.opts.History = cmp.Or(s.opts.History, DefaultHistory)
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	if s.refused == "" && (opts.Source == nil || opts.Resharder == nil) {
		return nil, errors.New("autoscale: Options.Source and Options.Resharder are required")
	}
	return s, nil
}

// Run measures and decides every Config.Interval until ctx ends.
func (s *Scaler) Run(ctx context.Context) error {
	if s.refused != "" {
		s.log.Warn("stream.autoscale is enabled but does nothing here", "backend", s.opts.Backend, "reason", s.refused)
		return nil
	}
	s.log.Info("autoscaler started", "min_shards", s.cfg.MinShards, "max_shards", s.cfg.MaxShards,
		"target_utilisation", s.cfg.TargetUtilisation, "scale_down_delay", s.cfg.ScaleDownDelay, "cooldown", s.cfg.Cooldown, "interval", s.cfg.Interval)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		s.Step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step takes one measurement and acts on it: the first measurement, and
// the first after a reshard, only set the baseline. It returns the
// decision (ActionNone when there was nothing to compare). Run calls it;
// calls must not overlap. The reshard call is made without holding the
// lock that Status takes, so the admin API answers meanwhile.
func (s *Scaler) Step(ctx context.Context) Decision {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	snap, err := s.opts.Source.Snapshot(cctx)
	cancel()
	d, act := s.decide(ctx, snap, err)
	if !act {
		return d
	}
	cctx, cancel = context.WithTimeout(ctx, callTimeout)
	if d.Action == ActionSplitShard {
		err = s.opts.Resharder.SplitShard(cctx, d.Shard, d.SplitAt)
	} else {
		err = s.opts.Resharder.UpdateShardCount(cctx, d.To)
	}
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.acted(d.Time, d, err == nil)
	if err != nil {
		d.Error = err.Error()
		s.log.Warn("autoscale: reshard failed", "action", d.Action, "from", d.From, "to", d.To, "shard", d.Shard, "reason", d.Reason, "err", err)
	} else {
		s.log.Info("autoscale: resharded", "action", d.Action, "from", d.From, "to", d.To, "shard", d.Shard, "reason", d.Reason)
	}
	s.record(d)
	s.lastSeen = d
	return d
}

// decide turns a measurement into a decision, and reports whether it is a
// reshard to make.
func (s *Scaler) decide(ctx context.Context, snap Snapshot, err error) (Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("autoscale: cannot measure the stream", "err", err)
		}
		return Decision{Time: now, Action: ActionNone, Reason: "cannot measure the stream: " + err.Error()}, false
	}
	snap.At = now
	prev := s.prev
	s.prev = &snap
	if prev == nil {
		return Decision{Time: now, Action: ActionNone, From: len(snap.Shards), To: len(snap.Shards), Reason: "first measurement"}, false
	}
	ls, ok := Loads(*prev, snap, s.opts.Limits)
	if !ok {
		return Decision{Time: now, Action: ActionNone, From: len(snap.Shards), To: len(snap.Shards), Reason: "the shards changed: new baseline"}, false
	}
	s.last = ls
	var lag time.Duration
	if s.opts.Lag != nil {
		lag = s.opts.Lag()
	}
	d := s.p.decide(now, ls, snap.Shards, lag, s.opts.MaxLag)
	s.lastSeen = d
	switch d.Action {
	case ActionNone:
		s.lastHold = ""
		if d.Reason != "" {
			s.log.Debug("autoscale: no change", "shards", d.From, "reason", d.Reason)
		}
		return d, false
	case ActionHold:
		if d.Reason != s.lastHold { // a hold is recorded when its reason changes
			s.lastHold = d.Reason
			s.record(d)
			s.log.Info("autoscale: hold", "shards", d.From, "reason", d.Reason)
		}
		return d, false
	}
	s.lastHold = ""
	return d, true
}

func (s *Scaler) record(d Decision) {
	if len(s.history) == s.opts.History {
		copy(s.history, s.history[1:])
		s.history = s.history[:len(s.history)-1]
	}
	s.history = append(s.history, d)
}

// History returns the decisions kept (reshards, failed ones included, and
// holds), oldest first.
func (s *Scaler) History() []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Decision(nil), s.history...)
}

// Status is what the admin API shows.
type Status struct {
	Stream  string `json:"stream"`
	Backend string `json:"backend"`
	Enabled bool   `json:"enabled"`
	// Refused says why the autoscaler does nothing on this backend.
	Refused string `json:"refused,omitempty"`
	Config  struct {
		MinShards         int     `json:"min_shards"`
		MaxShards         int     `json:"max_shards"`
		TargetUtilisation float64 `json:"target_utilisation"`
		ScaleDownDelay    string  `json:"scale_down_delay"`
		Cooldown          string  `json:"cooldown"`
		Interval          string  `json:"interval"`
	} `json:"config"`
	Limits Limits `json:"limits"`
	// Shards are the last interval's loads (empty before two measurements).
	Shards []ShardLoad `json:"shards"`
	// Last is the latest decision, Decisions the kept history.
	Last                *Decision  `json:"last,omitempty"`
	UpdatesLast24h      int        `json:"update_shard_count_calls_last_24h"`
	Decisions           []Decision `json:"decisions"`
	MaxDecisionsHistory int        `json:"max_decisions"`
}

// Status returns the current state.
func (s *Scaler) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Stream: s.opts.Stream, Backend: s.opts.Backend, Enabled: s.refused == "", Refused: s.refused, Limits: s.opts.Limits,
		Shards: append([]ShardLoad{}, s.last...), Decisions: append([]Decision{}, s.history...), MaxDecisionsHistory: s.opts.History}
	st.Config.MinShards, st.Config.MaxShards, st.Config.TargetUtilisation = s.cfg.MinShards, s.cfg.MaxShards, s.cfg.TargetUtilisation
	st.Config.ScaleDownDelay, st.Config.Cooldown, st.Config.Interval = s.cfg.ScaleDownDelay.String(), s.cfg.Cooldown.String(), s.cfg.Interval.String()
	s.p.pruneUpdates(s.opts.Now())
	st.UpdatesLast24h = len(s.p.updates)
	if s.lastSeen.Action != "" {
		d := s.lastSeen
		st.Last = &d
	}
	return st
}

// Path is where the server mounts Handler on the admin listener.
const Path = "GET /api/v1/autoscale"

// Handler serves Status as JSON.
func (s *Scaler) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(s.Status())
	})
}

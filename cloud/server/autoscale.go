package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/plan"
)

// openAutoscaler builds the autoscaler of stream.autoscale (when on) and
// serves the stream's capacity on the admin listener: GET
// /api/v1/autoscale (per-shard utilisation against the limits, the
// autoscaler's decisions, or on Kafka the partition headroom) and GET
// /api/v1/plan (plan.go). On the embedded store the autoscaler measures
// the store itself and reshards through the Kinesis API in process; on
// Kinesis it measures what the writes saw and reshards with the backend's
// client. It watches the monitor consumer's lag. With autoscaling off, a
// meter measures the shards every stream.autoscale.interval all the same,
// for the dashboard.
func (s *Server) openAutoscaler(api *kinesisapi.Server) error {
	cfg := s.cfg
	s.Handle(planPath, http.HandlerFunc(s.servePlan))
	s.Handle(autoscale.Path, http.HandlerFunc(s.serveCapacity))
	opts := autoscale.Options{Stream: cfg.Stream.Name, Backend: cfg.Stream.Backend, Logger: s.log, Limits: autoscale.KinesisLimits}
	switch {
	case s.store != nil:
		opts.Source = autoscale.StoreSource{Store: s.store, Stream: cfg.Stream.Name}
		opts.Resharder = autoscale.KinesisResharder{Client: inProcessClient(api, cfg.KinesisAPI.Region, cfg.KinesisAPI.Credentials), Stream: cfg.Stream.Name}
		t := s.throughput
		opts.Limits = autoscale.Limits{WriteBytesPerSec: float64(t.WriteBytesPerSec), WriteRecordsPerSec: float64(t.WriteRecordsPerSec), ReadBytesPerSec: float64(t.ReadBytesPerSec)}
	case s.kinesis != nil:
		opts.Source = autoscale.BackendSource{Backend: s.kinesis, Stream: cfg.Stream.Name}
		opts.Resharder = autoscale.KinesisResharder{Client: s.kinesis.Client(), Stream: cfg.Stream.Name}
	}
	if !cfg.Stream.Autoscale.Enabled {
		if opts.Source != nil {
			s.meter = &shardMeter{src: opts.Source, lim: opts.Limits, every: cfg.Stream.Autoscale.WithDefaults().Interval}
		}
		return nil
	}
	if s.pipe != nil {
		opts.Lag = s.pipe.lag
	}
	sc, err := autoscale.New(cfg.Stream.Autoscale, opts)
	if err != nil {
		return err
	}
	s.scaler = sc
	return nil
}

// lag is how far behind the monitor consumer is: the largest
// MillisBehindLatest of the shards it reads.
func (p *pipeline) lag() time.Duration {
	var ms int64
	for _, sh := range p.consumer.Stats().Shards {
		ms = max(ms, sh.MillisBehindLatest)
	}
	return time.Duration(ms) * time.Millisecond
}

// shardMeter measures the shards' loads while the autoscaler is off, so
// that the dashboard shows the utilisation all the same.
type shardMeter struct {
	src   autoscale.Source
	lim   autoscale.Limits
	every time.Duration

	mu   sync.Mutex
	prev *autoscale.Snapshot
	last []autoscale.ShardLoad
	err  string
}

// run measures every m.every until ctx ends.
func (m *shardMeter) run(ctx context.Context) {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		m.measure(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *shardMeter) measure(ctx context.Context, now time.Time) {
	cctx, cancel := context.WithTimeout(ctx, m.every+10*time.Second)
	snap, err := m.src.Snapshot(cctx)
	cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.err = "cannot measure the stream: " + err.Error()
		return
	}
	m.err = ""
	snap.At = now
	if m.prev != nil {
		ls, ok := autoscale.Loads(*m.prev, snap, m.lim)
		if ok || len(snap.Shards) != len(m.last) {
			m.last = ls // a reshard: nothing to show until the next measurement
		}
	}
	m.prev = &snap
}

func (m *shardMeter) loads() ([]autoscale.ShardLoad, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]autoscale.ShardLoad{}, m.last...), m.err
}

// CapacityStatus is GET /api/v1/autoscale: the autoscaler's status (see
// autoscale.Status), or with autoscaling off the shards' loads measured
// all the same and a note on how to turn it on; on Kafka, why nothing is
// repartitioned and the partitions' headroom.
type CapacityStatus struct {
	autoscale.Status
	// Note says why the loads or decisions are missing, and what to set.
	Note string `json:"note,omitempty"`
	// Partitions is the Kafka topic's headroom (kafka backend only).
	Partitions *PartitionHeadroom `json:"partitions,omitempty"`
}

// PartitionHeadroom is how far a Kafka topic's load can grow before its
// busiest partition reaches MSK Serverless's per-partition write quota
// (the price file's partition_ingress_mib_s): Kafka has no per-partition
// limit of its own, but a partition is one broker's log and one
// consumer's work.
type PartitionHeadroom struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"` // the topic's (0 if it could not be listed)
	Error      string `json:"error,omitempty"`
	// The monitor's view of the partitions it reads (last 10 s).
	BytesPerSec        float64 `json:"bytes_per_sec"`
	BusiestPartition   string  `json:"busiest_partition,omitempty"`
	BusiestBytesPerSec float64 `json:"busiest_bytes_per_sec"`
	// QuotaBytesPerSec is the per-partition write quota used.
	QuotaBytesPerSec float64 `json:"quota_bytes_per_sec"`
	// Utilisation is the busiest partition's share of the quota; Headroom
	// the factor by which the load may grow (0 without traffic).
	Utilisation float64 `json:"utilisation"`
	Headroom    float64 `json:"headroom"`
	Note        string  `json:"note"`
}

func (s *Server) serveCapacity(w http.ResponseWriter, r *http.Request) {
	var st CapacityStatus
	if s.scaler != nil {
		st.Status = s.scaler.Status()
	} else {
		st.Status, st.Note = s.meteredStatus()
	}
	if s.kafka != nil {
		st.Partitions = s.partitionHeadroom(r.Context())
	}
	writeJSON(w, http.StatusOK, st)
}

// meteredStatus is the status without an autoscaler, and a note on it.
func (s *Server) meteredStatus() (autoscale.Status, string) {
	cfg := s.cfg
	a := cfg.Stream.Autoscale.WithDefaults()
	st := autoscale.Status{Stream: cfg.Stream.Name, Backend: cfg.Stream.Backend, Refused: autoscale.Explain(cfg.Stream.Backend),
		Shards: []autoscale.ShardLoad{}, Decisions: []autoscale.Decision{}, Limits: autoscale.KinesisLimits}
	st.Config.MinShards, st.Config.MaxShards, st.Config.TargetUtilisation = a.MinShards, a.MaxShards, a.TargetUtilisation
	st.Config.ScaleDownDelay, st.Config.Cooldown, st.Config.Interval = a.ScaleDownDelay.String(), a.Cooldown.String(), a.Interval.String()
	if st.Refused != "" {
		return st, ""
	}
	note := "autoscaling is off: set stream.autoscale.enabled: true to reshard the stream to fit its load"
	if m := s.meter; m != nil {
		var err string
		st.Limits = m.lim
		st.Shards, err = m.loads()
		note += "; the loads below are measured every stream.autoscale.interval (" + st.Config.Interval + ")"
		if err != "" {
			note += "; " + err
		}
	}
	return st, note
}

// headroomTimeout bounds asking the brokers for the topic's partitions
// (the dashboard asks every 2 s).
const headroomTimeout = 3 * time.Second

// partitionHeadroom reads the topic's partition count and the monitor's
// per-partition rates.
func (s *Server) partitionHeadroom(ctx context.Context) *PartitionHeadroom {
	h := &PartitionHeadroom{Topic: s.cfg.Stream.Name}
	if p, err := plan.EmbeddedPrices(plan.DefaultRegion); err == nil {
		h.QuotaBytesPerSec = p.MSK.Serverless.PartitionIngressMiBs.Value * (1 << 20)
	}
	ctx, cancel := context.WithTimeout(ctx, headroomTimeout)
	defer cancel()
	details, err := kadm.NewClient(s.kafka.Client()).ListTopics(ctx, h.Topic)
	switch d, ok := details[h.Topic]; {
	case err != nil:
		h.Error = fmt.Sprintf("listing topic %s: %v", h.Topic, err)
	case !ok:
		h.Error = fmt.Sprintf("topic %s is not listed by the brokers", h.Topic)
	case d.Err != nil:
		h.Error = fmt.Sprintf("topic %s: %v", h.Topic, d.Err)
	default:
		h.Partitions = len(d.Partitions)
	}
	if s.pipe != nil {
		for _, sh := range s.pipe.monitor.Stream(ctx).Shards {
			h.BytesPerSec += sh.BytesPerSec
			if sh.BytesPerSec > h.BusiestBytesPerSec {
				h.BusiestPartition, h.BusiestBytesPerSec = sh.ID, sh.BytesPerSec
			}
		}
	}
	if h.QuotaBytesPerSec > 0 && h.BusiestBytesPerSec > 0 {
		h.Utilisation = h.BusiestBytesPerSec / h.QuotaBytesPerSec
		h.Headroom = 1 / h.Utilisation
	}
	h.Note = "partitions are not added as the load grows (that would move devices to other partitions and break their order); "
	if h.Headroom > 0 {
		h.Note += fmt.Sprintf("the busiest partition may carry %.3g× its load before it reaches the %.3g MiB/s per-partition write quota of MSK Serverless; ",
			h.Headroom, h.QuotaBytesPerSec/(1<<20))
	} else {
		h.Note += "no traffic measured in the last 10 s; "
	}
	h.Note += "size a new topic's partitions (stream.kafka.partitions) with tributary-cloud plan"
	return h
}

// writeJSON answers v as JSON, not to be cached.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
